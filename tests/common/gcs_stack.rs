//! Launcher for the loopback GCS test stack (`test-fixtures/gcs/gcs_stack.py`: a token endpoint
//! that verifies RS256 JWTs, an auth-checking proxy with request counters, gcp-storage-emulator
//! behind it). Blocking std code so any test binary can `#[path]`-include it
//! (`#[path = "common/gcs_stack.rs"] mod gcs_stack;`).
//!
//! The RSA key is generated at start with `openssl` (never committed); the stack stops when its
//! stdin closes, i.e. when the test process exits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The bucket the emulator creates.
pub const BUCKET: &str = "hyops-test";
/// The service account's `client_email` the token endpoint expects.
pub const EMAIL: &str = "publisher@hyops-test.iam.gserviceaccount.com";

/// A running stack.
pub struct GcsStack {
    _child: Child,
    _stdin: ChildStdin,
    /// the front (proxy + token endpoint) port
    pub port: u16,
    /// the emulator's own port (for out-of-band changes that bypass auth and counters)
    pub emulator_port: u16,
    /// the private key PEM (PKCS#8)
    pub private_pem: String,
    _dir: tempfile::TempDir,
}

/// Whether the stack can run here: python3 with gcp_storage_emulator and cryptography, and
/// openssl. With `HYOPS_TEST_GCS=1` a missing tool is a panic instead of a skip.
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import gcp_storage_emulator, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ok && std::env::var("HYOPS_TEST_GCS").as_deref() == Ok("1") {
        panic!(
            "HYOPS_TEST_GCS=1 but python3 gcp_storage_emulator/cryptography or openssl is missing"
        );
    }
    if !ok {
        eprintln!("skipped: GCS emulator stack not installed");
    }
    ok
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-fixtures/gcs/gcs_stack.py")
}

/// A freshly generated RSA service-account key: the private PEM in memory (its file is removed at
/// once) and the public half on disk for the token endpoint.
pub struct TestKey {
    /// PKCS#8 PEM of the private key
    pub pem: String,
    /// path of the public key PEM
    pub public_pem_path: PathBuf,
}

/// Generates a 2048-bit RSA key named `name` in `dir` with `openssl` (test keys are never committed).
pub fn gen_key(dir: &Path, name: &str) -> TestKey {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(Stdio::null())
        .status()
        .expect("openssl genpkey")
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl pkey")
        .success();
    assert!(ok, "openssl pkey failed");
    let pem = std::fs::read_to_string(&key).expect("read key");
    std::fs::remove_file(&key).expect("remove key file");
    TestKey {
        pem,
        public_pem_path: public,
    }
}

impl GcsStack {
    /// Starts the stack (bounded wait of 90 s for its ready line).
    pub fn start() -> GcsStack {
        let dir = tempfile::tempdir().expect("tempdir");
        let TestKey {
            pem: private_pem,
            public_pem_path: public,
        } = gen_key(dir.path(), "sa");
        let mut child = Command::new("python3")
            .arg(fixture())
            .arg("--public-key")
            .arg(&public)
            .args(["--bucket", BUCKET, "--client-email", EMAIL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 gcs_stack.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("gcs stack did not start within 90 s");
        let v: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        GcsStack {
            _child: child,
            _stdin: stdin,
            port: v["port"].as_u64().expect("port") as u16,
            emulator_port: v["emulator_port"].as_u64().expect("emulator_port") as u16,
            private_pem,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT` of the front.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A service-account JSON whose `token_uri` is the loopback token endpoint.
    pub fn sa_json(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "hyops-test",
            "private_key_id": "k1",
            "private_key": self.private_pem,
            "client_email": EMAIL,
            "token_uri": format!("{}/token", self.base()),
        })
        .to_string()
    }

    /// The line of the key's base64 body that must never leak anywhere.
    pub fn key_marker(&self) -> String {
        self.private_pem
            .lines()
            .nth(1)
            .expect("PEM body line")
            .to_owned()
    }

    /// Configures the stack's credential fakes (`POST /__control {"fakes": …}`).
    pub fn fakes(&self, fakes: serde_json::Value) {
        let body = serde_json::json!({ "fakes": fakes }).to_string();
        let (status, _) = http_body(self.port, "POST", "/__control", body.as_bytes());
        assert_eq!(status, 200);
    }

    /// Every token the stack has issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        let (status, body) = http(self.port, "GET", "/__tokens");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("tokens JSON")
    }

    /// The proxy's counters.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = http(self.port, "GET", "/__stats");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("stats JSON")
    }

    /// One counter (0 when never bumped).
    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().unwrap_or(0)
    }

    /// Object names in the bucket under `prefix`, read straight from the emulator.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let (status, body) = http(
            self.emulator_port,
            "GET",
            &format!("/storage/v1/b/{BUCKET}/o?prefix={}", encode(prefix)),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("list JSON");
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An object's bytes (`None` when absent), read straight from the emulator.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        let (status, body) = http(
            self.emulator_port,
            "GET",
            &format!("/storage/v1/b/{BUCKET}/o/{}?alt=media", encode(name)),
        );
        (status == 200).then_some(body)
    }

    /// Deletes an object out of band (straight at the emulator).
    pub fn delete(&self, name: &str) {
        let (status, body) = http(
            self.emulator_port,
            "DELETE",
            &format!("/storage/v1/b/{BUCKET}/o/{}", encode(name)),
        );
        assert!(
            status == 204 || status == 200,
            "delete {name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal HTTP/1.1 request on loopback (Connection: close), bounded by a 30 s timeout.
fn http(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    http_body(port, method, path, b"")
}

fn http_body(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write request");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}
