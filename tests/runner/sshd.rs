//! A real OpenSSH server (Debian's openssh-server) on 127.0.0.1, per test: its own config, a
//! host key and an authorized client key generated at test time, `UsePAM no`, `StrictModes no`,
//! root login by key (the tests run as root), `LogLevel VERBOSE` into a log the tests count
//! connections in. `SetEnv` gives the runner's sessions their own ISO cache directory.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the SSH tests run: `HYOPS_TEST_SSH=1` (and then sshd/ssh must exist and we must be
/// root), else they are skipped.
pub fn enabled() -> bool {
    if std::env::var("HYOPS_TEST_SSH").as_deref() != Ok("1") {
        eprintln!("skipped: set HYOPS_TEST_SSH=1 to run the build-runner tests (real sshd)");
        return false;
    }
    assert!(
        Path::new("/usr/sbin/sshd").exists() && which("ssh") && which("ssh-keygen"),
        "HYOPS_TEST_SSH=1 but openssh-server/openssh-client are missing (scripts/install-tools.sh)"
    );
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "the sshd tests run as root");
    true
}

fn which(exe: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {exe}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Generates an ed25519 key pair at `path` (+ `.pub`).
pub fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hyops-test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

/// `SHA256:…` fingerprint of a public key file.
pub fn fingerprint(pub_path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_path)
        .output()
        .expect("ssh-keygen -l");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .expect("fingerprint")
        .to_owned()
}

/// A running sshd.
pub struct Sshd {
    child: Child,
    /// its port on 127.0.0.1
    pub port: u16,
    /// everything of this server (keys, config, log, runner dirs)
    pub dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// Starts sshd with fresh keys; waits until it sends its banner.
    pub fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("hyops-sshd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_ed25519"));
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all(d.join("runner-cache")).unwrap();
        // privilege separation directory
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
             StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nLogLevel VERBOSE\nMaxStartups 50\nMaxSessions 50\n\
             SetEnv HYOPS_VYOS_ISO_CACHE_DIR={d}/runner-cache\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "sshd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { child, port, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn identity(&self) -> PathBuf {
        self.path().join("client_ed25519")
    }

    /// The host key line (`ssh-ed25519 AAAA…`).
    pub fn host_key(&self) -> String {
        let text = std::fs::read_to_string(self.path().join("host_ed25519.pub")).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.path().join("host_ed25519.pub"))
    }

    /// The runner's ISO cache (`SetEnv` for every session).
    pub fn runner_cache(&self) -> PathBuf {
        self.path().join("runner-cache")
    }

    /// A fresh runner directory.
    pub fn remote_dir(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Authenticated connections so far.
    pub fn accepted(&self) -> usize {
        std::fs::read_to_string(self.path().join("sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    }

    /// The `build_runner` block for this server.
    pub fn runner_block(&self, remote_dir: &Path, host_key: &str) -> String {
        format!(
            "  build_runner {{\n    host = \"127.0.0.1\"\n    port = {}\n    user = \"root\"\n    \
             identity_file = \"{}\"\n    host_key = \"{host_key}\"\n    remote_dir = \"{}\"\n    \
             connect_timeout = \"10s\"\n  }}\n",
            self.port,
            self.identity().display(),
            remote_dir.display()
        )
    }

    /// `HYOPS_VYOS_BUILD_RUNNER_*` for the operator CLI.
    pub fn runner_env(&self, remote_dir: &Path) -> Vec<(String, String)> {
        [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", self.port.to_string()),
            ("USER", "root".to_owned()),
            ("IDENTITY_FILE", self.identity().display().to_string()),
            ("HOST_KEY", self.host_key()),
            ("REMOTE_DIR", remote_dir.display().to_string()),
            ("CONNECT_TIMEOUT", "10s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("HYOPS_VYOS_BUILD_RUNNER_{k}"), v))
        .collect()
    }
}
