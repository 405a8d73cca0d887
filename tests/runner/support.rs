//! Loopback ISO server (counts GETs), the gated builder command, secret scans and process scans.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves one file at `/vyos.iso` on 127.0.0.1 and counts the GETs.
pub struct IsoServer {
    pub port: u16,
    gets: Arc<AtomicUsize>,
}

impl IsoServer {
    pub fn start(file: &Path) -> IsoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = Arc::new(std::fs::read(file).unwrap());
        let gets = Arc::new(AtomicUsize::new(0));
        let counter = gets.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let data = data.clone();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request = String::new();
                    if reader.read_line(&mut request).is_err() {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let ok = request.starts_with("GET /vyos.iso ");
                    if ok {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            data.len()
                        );
                        let _ = stream.write_all(&data);
                    } else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                });
            }
        });
        IsoServer { port, gets }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/vyos.iso", self.port)
    }

    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

/// A build command that records its start in `gate/started`, waits for `gate/go` (when `wait`),
/// then writes a 2 GiB (virtual) qcow2 from the ISO with qemu-img.
pub fn gated_builder(gate: &Path, wait: bool) -> String {
    let g = gate.display();
    let wait = if wait {
        format!("while [ ! -e '{g}/go' ]; do sleep 0.1; done; ")
    } else {
        String::new()
    };
    format!(
        "echo $$ >> '{g}/started'; {wait}qemu-img convert -f raw -O qcow2 \
         \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" && \
         qemu-img resize -q \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G"
    )
}

/// Waits (bounded) until `path` exists.
pub fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Processes whose environ or cmdline contains `needle` (pid, which file).
pub fn procs_containing(needle: &str) -> Vec<(u32, &'static str)> {
    let me = std::process::id();
    let mut hits = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return hits;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        for what in ["environ", "cmdline"] {
            if let Ok(bytes) = std::fs::read(e.path().join(what)) {
                if contains(&bytes, needle.as_bytes()) {
                    hits.push((pid, what));
                }
            }
        }
    }
    hits
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Regular files under `roots` (skipping `exclude` subtrees, files over 16 MiB and /proc-like
/// trees) whose content contains `needle`.
pub fn files_containing(roots: &[PathBuf], exclude: &[PathBuf], needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = roots.iter().map(|r| (r.clone(), 0)).collect();
    while let Some((d, depth)) = stack.pop() {
        if exclude.iter().any(|x| d.starts_with(x)) || depth > 12 {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push((p, depth + 1));
            } else if ft.is_file() && !exclude.iter().any(|x| p.starts_with(x)) {
                let small = e.metadata().map(|m| m.len() <= 16 << 20).unwrap_or(false);
                if small {
                    if let Ok(bytes) = std::fs::read(&p) {
                        if contains(&bytes, needle.as_bytes()) {
                            hits.push(p);
                        }
                    }
                }
            }
        }
    }
    hits.sort();
    hits.dedup();
    hits
}

/// Mode bits of a path.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

/// Inode of a path.
pub fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0)
}

/// The shipped binaries under `remote_dir/bin/*/`.
pub fn shipped_binaries(remote_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(remote_dir.join("bin")) {
        for e in rd.flatten() {
            let p = e.path().join("terraform-provider-hyops");
            if p.exists() {
                out.push(p);
            }
        }
    }
    out
}
