//! Shared helpers: deterministic files, log capture, the GCS stack.

#![allow(dead_code, unused_imports)]

pub(crate) use std::collections::BTreeMap;
pub(crate) use std::io::Write;
pub(crate) use std::os::unix::fs::PermissionsExt;
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::Stdio;
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::Duration;

pub(crate) use hyops::engine::contract::{
    ArtifactContract, ArtifactEntry, Compression, SourceIso, VyosMetadata,
};
pub(crate) use hyops::engine::credentials::{
    CredentialError, CredentialInputs, CredentialSource, GcsServiceAccount, SecretString,
};
pub(crate) use hyops::engine::hyops_state::{self, HyopsStateError};
pub(crate) use hyops::engine::publish::layout::ObjectLayout;
pub(crate) use hyops::engine::publish::{
    delete_published, fetch_manifest, publish, store_for_uri, verify_published, LocalFile,
    ManifestMeta, PublishError, PublishTarget, RetryConfig, StoreSettings, UploadSource,
    Verification,
};
pub(crate) use hyops::engine::spec::{Backend, PublishSpec};
pub(crate) use sha2::{Digest, Sha256};
pub(crate) use tokio::io::{AsyncBufReadExt, BufReader};
pub(crate) use tokio_util::sync::CancellationToken;

pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(180);

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-fixtures")
}

/// Whether an emulator test should run: the tool is there, or the gate env demands it.
pub(crate) fn wanted(gate: &str, probe: &mut std::process::Command) -> bool {
    let available = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let forced = std::env::var(gate).map(|v| v == "1").unwrap_or(false);
    if !available && forced {
        panic!("{gate}=1 but the emulator is not installed");
    }
    if !available {
        eprintln!("skipped: emulator for {gate} not installed");
    }
    available
}

/// A file of `len` deterministic pseudo-random bytes, hashed as the artifact stage would.
pub(crate) fn make_file(dir: &Path, name: &str, format: &str, len: usize, seed: u64) -> LocalFile {
    let path = dir.join(name);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(&path, &data).unwrap();
    local_file(&path, format)
}

pub(crate) fn local_file(path: &Path, format: &str) -> LocalFile {
    let data = std::fs::read(path).unwrap();
    let md5: [u8; 16] = {
        use md5::Digest as _;
        md5::Md5::digest(&data).into()
    };
    LocalFile {
        path: path.to_path_buf(),
        format: format.to_owned(),
        compression: Compression::from_format(format),
        sha256: hex::encode(Sha256::digest(&data)),
        crc32c: crc32c::crc32c(&data),
        md5: Some(md5),
        size: data.len() as u64,
        virtual_size: 10 * 1024 * 1024 * 1024,
    }
}

pub(crate) fn meta(version: &str) -> ManifestMeta {
    ManifestMeta {
        artifact_key: "vyos-test".into(),
        artifact_version: version.into(),
        build_id: "b-0001".into(),
        built_at: "2026-01-01T00:00:00Z".into(),
        vyos: VyosMetadata {
            version: version.into(),
            flavor: "generic".into(),
            architecture: "amd64".into(),
            ..Default::default()
        },
        source_iso: SourceIso {
            url: "https://example.invalid/vyos.iso".into(),
            sha256: "0".repeat(64),
        },
        notes: None,
        normalization: None,
        verification: None,
    }
}

pub(crate) fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// Publish commands run via `bash -lc`; give them an empty HOME so the machine's login files
/// (pyenv rehash and friends) neither slow them down nor get interrupted by cancellation tests.
pub(crate) fn isolate_home(t: &mut PublishTarget, home: &Path) {
    t.command_env
        .insert("HOME".into(), home.to_string_lossy().into_owned());
    t.command_log_dir = Some(home.to_path_buf());
}

/// Captures every tracing event (TRACE and up) of the current thread.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

pub(crate) struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        let buf = self.0.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(buf.clone()))
            .finish();
        tracing::subscriber::set_default(sub)
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub(crate) use crate::gcs_stack_common::{gen_key, TestKey};

pub(crate) const BUCKET: &str = "hyops-test";
pub(crate) const EMAIL: &str = "publisher@hyops-test.iam.gserviceaccount.com";

pub(crate) struct GcsStack {
    pub(crate) _child: tokio::process::Child,
    pub(crate) _stdin: tokio::process::ChildStdin,
    pub(crate) port: u16,
    pub(crate) emulator_port: u16,
    pub(crate) key: TestKey,
    pub(crate) dir: tempfile::TempDir,
}

impl GcsStack {
    pub(crate) async fn start() -> Option<GcsStack> {
        if !wanted(
            "HYOPS_TEST_GCS",
            std::process::Command::new("python3")
                .args(["-c", "import gcp_storage_emulator, cryptography"]),
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = gen_key(dir.path(), "good");
        let mut child = tokio::process::Command::new("python3")
            .arg(fixtures().join("gcs/gcs_stack.py"))
            .arg("--public-key")
            .arg(&key.public_pem_path)
            .args(["--bucket", BUCKET, "--client-email", EMAIL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 gcs_stack.py");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("gcs stack did not start in time")
            .unwrap()
            .expect("gcs stack printed nothing");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let port = v["port"].as_u64().unwrap() as u16;
        let emulator_port = v["emulator_port"].as_u64().unwrap() as u16;
        Some(GcsStack {
            _child: child,
            _stdin: stdin,
            port,
            emulator_port,
            key,
            dir,
        })
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn sa_json(&self, pem: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "hyops-test",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": EMAIL,
            "token_uri": format!("{}/token", self.base()),
        })
        .to_string()
    }

    pub(crate) fn settings_with(&self, pem: &str) -> StoreSettings {
        StoreSettings {
            credentials: CredentialInputs {
                inline: Some(SecretString::from(self.sa_json(pem))),
                ..Default::default()
            },
            gcs_endpoint: Some(self.base()),
            retry: fast_retry(),
            ..Default::default()
        }
    }

    pub(crate) fn settings(&self) -> StoreSettings {
        self.settings_with(&self.key.pem)
    }

    pub(crate) fn spec(&self, prefix: &str) -> PublishSpec {
        PublishSpec {
            backend: Some(Backend::Gcs),
            bucket: Some(BUCKET.into()),
            prefix: Some(prefix.into()),
            public_base_url: Some(format!("{}/{}", self.base(), BUCKET)),
            ..Default::default()
        }
    }

    pub(crate) async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/__stats", self.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn stat(&self, name: &str) -> u64 {
        self.stats().await[name].as_u64().unwrap_or(0)
    }

    /// An object's bytes, read through the front with the stack's own token-free public path.
    pub(crate) async fn read_object(&self, name: &str) -> Vec<u8> {
        let r = reqwest::get(format!("{}/{BUCKET}/{name}", self.base()))
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    }

    /// An object's bytes straight from the emulator (no token, no counters); `None` when absent.
    pub(crate) async fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let enc: String = name
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let r = reqwest::get(format!(
            "http://127.0.0.1:{}/storage/v1/b/{BUCKET}/o/{enc}?alt=media",
            self.emulator_port
        ))
        .await
        .unwrap();
        if r.status() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "{}", r.status());
        Some(r.bytes().await.unwrap().to_vec())
    }

    /// Arms one fault of the stack's resumable endpoint (see test-fixtures/gcs/resumable.py).
    pub(crate) async fn arm(&self, fault: serde_json::Value) {
        self.control(serde_json::json!({ "upload_fault": fault }))
            .await;
    }

    pub(crate) async fn control(&self, v: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/__control", self.base()))
            .json(&v)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

/// The base64 body of a PEM key (what must never leak), first line of it.
pub(crate) fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap()
}
