//! Publish engine against real stores on 127.0.0.1: GCS (gcp-storage-emulator behind a JWT-checking
//! token endpoint and auth/fault proxy, `test-fixtures/gcs/gcs_stack.py`), S3 (moto_server), Azure
//! (azurite-blob), the file backend, the publish command, credentials and HyOps state.
//!
//! Emulator tests run when their tool is installed; set `HYOPS_TEST_GCS=1`, `HYOPS_TEST_S3=1`,
//! `HYOPS_TEST_AZURE=1` to make a missing tool a failure instead of a skip (CI does).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyops::engine::contract::{
    ArtifactContract, ArtifactEntry, Compression, SourceIso, VyosMetadata,
};
use hyops::engine::credentials::{
    CredentialError, CredentialInputs, CredentialSource, GcsServiceAccount, SecretString,
};
use hyops::engine::hyops_state::{self, HyopsStateError};
use hyops::engine::publish::layout::ObjectLayout;
use hyops::engine::publish::{
    delete_published, fetch_manifest, publish, store_for_uri, verify_published, LocalFile,
    ManifestMeta, PublishError, PublishTarget, RetryConfig, StoreSettings, UploadSource,
    Verification,
};
use hyops::engine::spec::{Backend, PublishSpec};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

const TEST_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// helpers

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-fixtures")
}

/// Whether an emulator test should run: the tool is there, or the gate env demands it.
fn wanted(gate: &str, probe: &mut std::process::Command) -> bool {
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
fn make_file(dir: &Path, name: &str, format: &str, len: usize, seed: u64) -> LocalFile {
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

fn local_file(path: &Path, format: &str) -> LocalFile {
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

fn meta(version: &str) -> ManifestMeta {
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
    }
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
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
fn isolate_home(t: &mut PublishTarget, home: &Path) {
    t.command_env
        .insert("HOME".into(), home.to_string_lossy().into_owned());
}

/// Captures every tracing event (TRACE and up) of the current thread.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

struct LogWriter(Arc<Mutex<Vec<u8>>>);

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
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let buf = self.0.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(buf.clone()))
            .finish();
        tracing::subscriber::set_default(sub)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// GCS stack

struct TestKey {
    pem: String,
    public_pem_path: PathBuf,
}

fn gen_key(dir: &Path, name: &str) -> TestKey {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = std::process::Command::new("openssl")
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
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey failed");
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    TestKey {
        pem,
        public_pem_path: public,
    }
}

const BUCKET: &str = "hyops-test";
const EMAIL: &str = "publisher@hyops-test.iam.gserviceaccount.com";

struct GcsStack {
    _child: tokio::process::Child,
    _stdin: tokio::process::ChildStdin,
    port: u16,
    key: TestKey,
    dir: tempfile::TempDir,
}

impl GcsStack {
    async fn start() -> Option<GcsStack> {
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
        Some(GcsStack {
            _child: child,
            _stdin: stdin,
            port,
            key,
            dir,
        })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn sa_json(&self, pem: &str) -> String {
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

    fn settings_with(&self, pem: &str) -> StoreSettings {
        StoreSettings {
            credentials: CredentialInputs {
                inline: Some(SecretString::from(self.sa_json(pem))),
                ..Default::default()
            },
            gcs_endpoint: Some(self.base()),
            retry: fast_retry(),
            gcs_chunk_size: Some(256 * 1024),
            ..Default::default()
        }
    }

    fn settings(&self) -> StoreSettings {
        self.settings_with(&self.key.pem)
    }

    fn spec(&self, prefix: &str) -> PublishSpec {
        PublishSpec {
            backend: Some(Backend::Gcs),
            bucket: Some(BUCKET.into()),
            prefix: Some(prefix.into()),
            public_base_url: Some(format!("{}/{}", self.base(), BUCKET)),
            ..Default::default()
        }
    }

    async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/__stats", self.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stat(&self, name: &str) -> u64 {
        self.stats().await[name].as_u64().unwrap_or(0)
    }

    async fn control(&self, v: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/__control", self.base()))
            .json(&v)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

// ---------------------------------------------------------------------------------------------
// GCS

#[tokio::test]
async fn gcs_publish_matches_local_digests_and_republish_uploads_nothing() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![
            make_file(work.path(), "a.qcow2", "qcow2", 1_300_000, 1),
            make_file(work.path(), "a.raw.xz", "raw.xz", 300_001, 2),
        ];
        let target =
            PublishTarget::resolve(&stack.spec("images/"), &stack.settings(), None).unwrap();
        let cancel = CancellationToken::new();
        let set = publish(&target, &files, &meta("1.5.0"), &cancel)
            .await
            .unwrap();
        assert_eq!((set.uploaded, set.skipped), (2, 0));
        assert_eq!(
            stack.stat("upload_initiations").await,
            3,
            "two files + manifest"
        );

        let store = target.store().unwrap();
        for (f, p) in files.iter().zip(&set.files) {
            assert!(
                p.object.starts_with("images/vyos-test/1.5.0/"),
                "{}",
                p.object
            );
            assert!(p.object.contains(&files[0].sha256[..16]));
            let head = store.head(&p.object).await.unwrap();
            assert_eq!(head.size, f.size);
            assert_eq!(head.crc32c, Some(f.crc32c), "server crc32c");
            assert_eq!(head.md5, f.md5, "server md5");
            assert_eq!(p.storage_uri, format!("gs://{BUCKET}/{}", p.object));
            assert!(p.remote_checksum.starts_with("crc32c:"));
            assert!(!p.remote_generation.is_empty());
        }
        let m = &set.manifest;
        assert_eq!(m.files[0].proxmox.checksum_algorithm, "sha256");
        assert_eq!(m.files[0].proxmox.content_type, "import");
        assert_eq!(m.files[1].hetzner.compression.as_deref(), Some("xz"));

        // The manifest reads back the same through gs:// and through the public URL.
        let via_gs = fetch_manifest(&set.manifest_storage_uri, &stack.settings())
            .await
            .unwrap();
        assert_eq!(&via_gs, m);
        assert!(set.manifest_url.starts_with(&stack.base()));
        let via_http = fetch_manifest(&set.manifest_url, &stack.settings())
            .await
            .unwrap();
        assert_eq!(&via_http, m);
        assert_eq!(
            verify_published(m, Some(&set.manifest_storage_uri), &stack.settings())
                .await
                .unwrap(),
            Verification::Present
        );

        // Re-publishing the same build uploads nothing and keeps the first manifest.
        let again = publish(&target, &files, &meta("1.5.0"), &cancel)
            .await
            .unwrap();
        assert_eq!((again.uploaded, again.skipped), (0, 2));
        assert_eq!(
            stack.stat("upload_initiations").await,
            3,
            "no new upload sessions"
        );
        assert_eq!(again.manifest, set.manifest);

        // Destroy removes the objects; refresh then sees them gone.
        let n = delete_published(m, Some(&set.manifest_storage_uri), &stack.settings())
            .await
            .unwrap();
        assert_eq!(n, 3);
        let v = verify_published(m, Some(&set.manifest_storage_uri), &stack.settings())
            .await
            .unwrap();
        assert!(matches!(v, Verification::Gone { .. }), "{v:?}");
        assert!(matches!(
            store.head(&set.files[0].object).await,
            Err(PublishError::NotFound { .. })
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_upload_resumes_after_a_cut_and_a_503_burst() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![make_file(
            work.path(),
            "big.qcow2",
            "qcow2",
            3 * 1024 * 1024 + 12_345,
            7,
        )];
        let mut settings = stack.settings();
        settings.gcs_chunk_size = Some(1024 * 1024);
        let target = PublishTarget::resolve(&stack.spec("resume/"), &settings, None).unwrap();
        stack
            .control(serde_json::json!({"cut_next_chunk": true, "fail_503": 3}))
            .await;
        let set = publish(&target, &files, &meta("1.5.1"), &CancellationToken::new())
            .await
            .unwrap();
        let stats = stack.stats().await;
        assert_eq!(stats["injected_503"], 3, "{stats}");
        assert_eq!(stats["cuts"], 1, "{stats}");
        let head = target
            .store()
            .unwrap()
            .head(&set.files[0].object)
            .await
            .unwrap();
        assert_eq!(head.size, files[0].size);
        assert_eq!(head.crc32c, Some(files[0].crc32c));
        assert_eq!(head.md5, files[0].md5);
        // Chunks after the cut resumed from the server's offset: fewer than a restart would need.
        assert!(stats["chunk_puts"].as_u64().unwrap() <= 8, "{stats}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_wrong_key_is_refused_by_the_token_endpoint_with_a_clear_error() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let wrong = gen_key(stack.dir.path(), "wrong");
        let files = vec![make_file(work.path(), "w.qcow2", "qcow2", 70_000, 3)];
        let settings = stack.settings_with(&wrong.pem);
        let target = PublishTarget::resolve(&stack.spec("wrong/"), &settings, None).unwrap();
        let err = publish(&target, &files, &meta("1.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PublishError::Auth { .. }), "{err:?}");
        assert!(msg.contains("invalid_grant"), "{msg}");
        assert!(msg.contains("Invalid JWT Signature"), "{msg}");
        assert!(!msg.contains(key_body(&wrong.pem)), "{msg}");
        assert_eq!(stack.stat("upload_initiations").await, 0);
        assert!(stack.stat("token_denied").await >= 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_existing_different_object_is_not_overwritten() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let ours = make_file(work.path(), "ours.qcow2", "qcow2", 600_000, 11);
        let theirs = make_file(work.path(), "theirs.bin", "qcow2", 600_000, 12);
        let target =
            PublishTarget::resolve(&stack.spec("clash/"), &stack.settings(), None).unwrap();
        let store = target.store().unwrap();
        // Someone else's object sits exactly where ours would go.
        let name = ObjectLayout::new("clash/", "vyos-test", "2.0", &ours.sha256)
            .unwrap()
            .artifact("qcow2")
            .unwrap();
        let src = UploadSource {
            path: &theirs.path,
            size: theirs.size,
            sha256: &theirs.sha256,
            crc32c: theirs.crc32c,
            md5: theirs.md5,
            content_type: "application/octet-stream",
        };
        store
            .put_file_if_absent(&name, &src, &CancellationToken::new())
            .await
            .unwrap();
        let before = stack.stat("upload_initiations").await;
        let err = publish(&target, &[ours], &meta("2.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PublishError::AlreadyExistsDifferent { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&name), "{err}");
        assert_eq!(
            stack.stat("upload_initiations").await,
            before,
            "no upload attempted"
        );
        let head = store.head(&name).await.unwrap();
        assert_eq!(
            head.crc32c,
            Some(theirs.crc32c),
            "existing object untouched"
        );
        // No manifest was written for the failed publish.
        let manifest = ObjectLayout::new("clash/", "vyos-test", "2.0", &theirs.sha256)
            .unwrap()
            .manifest();
        let other_manifest = name.replace("vyos-test.qcow2", "manifest.json");
        assert!(store.head(&other_manifest).await.is_err());
        drop(manifest);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_server_refuses_data_that_does_not_match_the_declared_checksums() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let f = make_file(work.path(), "c.qcow2", "qcow2", 700_000, 51);
        let target = PublishTarget::resolve(&stack.spec("crc/"), &stack.settings(), None).unwrap();
        let store = target.store().unwrap();
        let src = UploadSource {
            path: &f.path,
            size: f.size,
            sha256: &f.sha256,
            crc32c: f.crc32c ^ 1,
            md5: None,
            content_type: "application/octet-stream",
        };
        let err = store
            .put_file_if_absent("crc/x.qcow2", &src, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Refused { .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("crc32c"), "{err}");
        assert!(matches!(
            store.head("crc/x.qcow2").await,
            Err(PublishError::NotFound { .. })
        ));
    })
    .await
    .expect("test timed out");
}

/// The base64 body of a PEM key (what must never leak), first line of it.
fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap()
}

// ---------------------------------------------------------------------------------------------
// credentials and secrets

#[test]
fn gcs_target_without_credential_fails_before_claiming_and_names_every_source() {
    let spec = PublishSpec {
        backend: Some(Backend::Gcs),
        bucket: Some("some-bucket".into()),
        ..Default::default()
    };
    let err = PublishTarget::resolve(&spec, &StoreSettings::default(), None).unwrap_err();
    let msg = err.to_string();
    for name in [
        "HYOPS_VYOS_GCS_SA_JSON",
        "HYOPS_VYOS_GCS_SA_JSON_FILE",
        "gcs_credentials",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn credential_precedence_and_errors_name_the_source_never_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let key = gen_key(dir.path(), "k");
    let good = serde_json::json!({
        "type": "service_account", "client_email": "a@b.iam", "private_key": key.pem,
        "token_uri": "http://127.0.0.1:9/token"
    })
    .to_string();
    let file = dir.path().join("sa.json");
    std::fs::write(&file, "{\n  \"client_email\": \"x\",\n  oops").unwrap();
    // Inline wins over the (broken) file.
    let inputs = CredentialInputs {
        inline: Some(SecretString::from(good.clone())),
        file: Some(file.clone()),
        ..Default::default()
    };
    let sa = inputs.resolve().unwrap();
    assert_eq!(sa.source(), &CredentialSource::Inline);
    let shown = format!("{sa:?} {sa}");
    assert!(!shown.contains(key_body(&key.pem)), "{shown}");
    // The file is next in line and is reported by position.
    let inputs = CredentialInputs {
        file: Some(file.clone()),
        env_json: Some(SecretString::from(good)),
        ..Default::default()
    };
    let err = inputs.resolve().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gcs_credentials_file"), "{msg}");
    assert!(msg.contains("not JSON at line 3"), "{msg}");
    assert!(!msg.contains("oops"), "{msg}");
    // A PKCS#1 key cannot sign as a service-account key: clear error, no key text.
    let pkcs1 = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "1024"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let pkcs1 = String::from_utf8(pkcs1.stdout).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    let err = GcsServiceAccount::parse(
        SecretString::from(
            serde_json::json!({"client_email": "a@b", "private_key": pkcs1}).to_string(),
        ),
        CredentialSource::Env,
    )
    .unwrap_err();
    assert!(matches!(err, CredentialError::BadKey { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("PKCS#1") && msg.contains("HYOPS_VYOS_GCS_SA_JSON"),
        "{msg}"
    );
    assert!(!msg.contains(key_body(&pkcs1)), "{msg}");
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_argv_or_child_environment() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    let capture = LogCapture::default();
    let _guard = capture.install();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let secret_marker = key_body(&stack.key.pem).to_owned();
        let files = vec![make_file(work.path(), "s.qcow2", "qcow2", 400_000, 5)];

        // A successful GCS publish and a refused one, both logged at TRACE.
        let target =
            PublishTarget::resolve(&stack.spec("secret/"), &stack.settings(), None).unwrap();
        publish(&target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap();
        let wrong = gen_key(stack.dir.path(), "w2");
        let bad_target = PublishTarget::resolve(
            &stack.spec("secret2/"),
            &stack.settings_with(&wrong.pem),
            None,
        )
        .unwrap();
        let err = publish(&bad_target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(key_body(&wrong.pem)));

        // A publish command gets the credential only as a 0600 file path.
        let out = work.path().join("cmd-out");
        std::fs::create_dir(&out).unwrap();
        let command = format!(
            r#"set -e
O={out}
cp /proc/$$/cmdline "$O/cmdline"
cp /proc/$$/environ "$O/environ"
stat -c %a "$HYOPS_VYOS_GCS_SA_JSON_FILE" > "$O/mode"
stat -c %a "$(dirname "$HYOPS_VYOS_GCS_SA_JSON_FILE")" > "$O/dirmode"
printf %s "$HYOPS_VYOS_GCS_SA_JSON_FILE" > "$O/path"
sha256sum < "$HYOPS_VYOS_GCS_SA_JSON_FILE" | cut -d' ' -f1 > "$O/sha"
printf %s "${{HYOPS_VYOS_GCS_SA_JSON:-unset}}" > "$O/inline"
cp "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" "$O/published.qcow2"
echo "log line on stderr" >&2
echo "file://$O/published.qcow2""#,
            out = out.display()
        );
        let spec = PublishSpec {
            command: Some(command),
            ..Default::default()
        };
        let mut cmd_target = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap();
        isolate_home(&mut cmd_target, work.path());
        // Even if a caller put the JSON into the command environment, it is filtered out.
        cmd_target.command_env.insert(
            "HYOPS_VYOS_GCS_SA_JSON".into(),
            stack.sa_json(&stack.key.pem),
        );
        let set = publish(&cmd_target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            set.files[0].url,
            format!("file://{}/published.qcow2", out.display())
        );

        let read = |n: &str| std::fs::read(out.join(n)).unwrap();
        let contains =
            |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!contains(&read("cmdline"), &secret_marker), "key in argv");
        assert!(
            !contains(&read("environ"), &secret_marker),
            "key in child env"
        );
        assert!(
            !contains(&read("environ"), "PRIVATE KEY"),
            "key in child env"
        );
        assert_eq!(String::from_utf8(read("inline")).unwrap(), "unset");
        assert_eq!(String::from_utf8(read("mode")).unwrap().trim(), "600");
        assert_eq!(String::from_utf8(read("dirmode")).unwrap().trim(), "700");
        let expected_sha = hex::encode(Sha256::digest(stack.sa_json(&stack.key.pem)));
        assert_eq!(String::from_utf8(read("sha")).unwrap().trim(), expected_sha);
        let secret_path = PathBuf::from(String::from_utf8(read("path")).unwrap());
        assert!(!secret_path.exists(), "secret file left behind");
        assert!(
            !secret_path.parent().unwrap().exists(),
            "secret dir left behind"
        );

        // A failing command also removes the file.
        let spec = PublishSpec {
            command: Some(format!(
                "printf %s \"$HYOPS_VYOS_GCS_SA_JSON_FILE\" > {}/path2; echo boom >&2; exit 3",
                out.display()
            )),
            ..Default::default()
        };
        let mut t = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap();
        isolate_home(&mut t, work.path());
        let err = publish(&t, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let p2 = PathBuf::from(std::fs::read_to_string(out.join("path2")).unwrap());
        assert!(!p2.exists() && !p2.parent().unwrap().exists());
    })
    .await
    .expect("test timed out");
    let logs = capture.text();
    assert!(
        logs.contains("uploaded and verified"),
        "capture works: {logs}"
    );
    assert!(
        !logs.contains(key_body(&stack.key.pem)),
        "private key in logs"
    );
    assert!(!logs.contains("upload_id"), "session URI in logs");
}

#[tokio::test]
async fn cancelled_publish_command_is_killed_and_its_secret_removed() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let keydir = tempfile::tempdir().unwrap();
        let key = gen_key(keydir.path(), "c");
        let files = vec![make_file(work.path(), "c.qcow2", "qcow2", 1000, 9)];
        let out = work.path();
        let spec = PublishSpec {
            command: Some(format!(
                "printf %s \"$HYOPS_VYOS_GCS_SA_JSON_FILE\" > {o}/path; sleep 60 & echo $! > {o}/bgpid; \
                 touch {o}/started; wait",
                o = out.display()
            )),
            ..Default::default()
        };
        let settings = StoreSettings {
            credentials: CredentialInputs {
                inline: Some(SecretString::from(
                    serde_json::json!({"client_email": "a@b", "private_key": key.pem}).to_string(),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        isolate_home(&mut target, work.path());
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let started = out.join("started");
        tokio::spawn(async move {
            while !started.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            c2.cancel();
        });
        let err = publish(&target, &files, &meta("1"), &cancel).await.unwrap_err();
        assert!(matches!(err, PublishError::Cancelled), "{err:?}");
        let p = PathBuf::from(std::fs::read_to_string(out.join("path")).unwrap());
        assert!(!p.exists() && !p.parent().unwrap().exists(), "secret left after cancel");
        let bg: i32 = std::fs::read_to_string(out.join("bgpid")).unwrap().trim().parse().unwrap();
        // The whole process group was killed, background children included.
        let mut alive = true;
        for _ in 0..100 {
            alive = Path::new(&format!("/proc/{bg}")).exists()
                && !std::fs::read_to_string(format!("/proc/{bg}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!alive, "background child {bg} survived cancellation");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn publish_command_must_print_exactly_one_url() {
    let work = tempfile::tempdir().unwrap();
    let files = vec![make_file(work.path(), "u.qcow2", "qcow2", 1000, 4)];
    for (cmd, expect) in [
        ("echo one; echo two", "exactly one URL"),
        ("true", "printed nothing"),
        ("echo not-a-url", "not a URL"),
    ] {
        let spec = PublishSpec {
            command: Some(cmd.into()),
            ..Default::default()
        };
        let mut t = PublishTarget::resolve(&spec, &StoreSettings::default(), None).unwrap();
        isolate_home(&mut t, work.path());
        let err = publish(&t, &files, &meta("1"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expect), "{cmd}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// file backend

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn file_spec(root: &Path, prefix: &str) -> PublishSpec {
    PublishSpec {
        backend: Some(Backend::File),
        bucket: Some(root.to_string_lossy().into_owned()),
        prefix: Some(prefix.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn file_backend_publishes_heads_and_deletes_atomically() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let files = vec![
        make_file(work.path(), "f.qcow2", "qcow2", 200_000, 21),
        make_file(work.path(), "f.raw.zst", "raw.zst", 50_000, 22),
    ];
    let target = PublishTarget::resolve(
        &file_spec(repo.path(), "repo/"),
        &StoreSettings::default(),
        None,
    )
    .unwrap();
    let set = publish(&target, &files, &meta("4.0"), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(set.uploaded, 2);
    for (f, p) in files.iter().zip(&set.files) {
        let on_disk = repo.path().join(&p.object);
        assert_eq!(
            std::fs::read(&on_disk).unwrap(),
            std::fs::read(&f.path).unwrap()
        );
        assert_eq!(p.remote_checksum, format!("sha256:{}", f.sha256));
        assert!(p.url.starts_with("file://"));
    }
    let listing: Vec<_> =
        std::fs::read_dir(repo.path().join(&set.files[0].object).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    assert!(
        listing.iter().all(|n| !n.starts_with(".hyops-upload-")),
        "temp left: {listing:?}"
    );
    assert!(listing.contains(&"manifest.json".to_string()));
    let m = fetch_manifest(&set.manifest_url, &StoreSettings::default())
        .await
        .unwrap();
    assert_eq!(m, set.manifest);
    assert_eq!(
        m.files[1].proxmox.decompression_algorithm.as_deref(),
        Some("zst")
    );

    // Tampering is seen as a change; deletion as gone.
    let s = StoreSettings::default();
    assert_eq!(
        verify_published(&m, Some(&set.manifest_storage_uri), &s)
            .await
            .unwrap(),
        Verification::Present
    );
    let victim = repo.path().join(&set.files[1].object);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let v = verify_published(&m, Some(&set.manifest_storage_uri), &s)
        .await
        .unwrap();
    assert!(matches!(v, Verification::Changed { .. }), "{v:?}");
    // And the changed object is not silently overwritten by a re-publish.
    let err = publish(&target, &files, &meta("4.0"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::AlreadyExistsDifferent { .. }),
        "{err:?}"
    );
    assert_eq!(
        delete_published(&m, Some(&set.manifest_storage_uri), &s)
            .await
            .unwrap(),
        3
    );
    let v = verify_published(&m, Some(&set.manifest_storage_uri), &s)
        .await
        .unwrap();
    assert!(matches!(v, Verification::Gone { .. }), "{v:?}");
    assert_eq!(count_files(repo.path()), 0, "published files left behind");
}

#[tokio::test]
async fn file_backend_refuses_every_escape() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let f = make_file(work.path(), "e.qcow2", "qcow2", 1000, 31);
    for prefix in ["../", "/abs/", "a/../../", "x\n/", "a//b/"] {
        let err = PublishTarget::resolve(
            &file_spec(repo.path(), prefix),
            &StoreSettings::default(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, PublishError::InvalidName { .. }),
            "{prefix:?}: {err:?}"
        );
    }
    let relative = PublishSpec {
        bucket: Some("relative/dir".into()),
        ..file_spec(repo.path(), "")
    };
    assert!(PublishTarget::resolve(&relative, &StoreSettings::default(), None).is_err());

    let target =
        PublishTarget::resolve(&file_spec(repo.path(), ""), &StoreSettings::default(), None)
            .unwrap();
    let store = target.store().unwrap();
    let src = UploadSource {
        path: &f.path,
        size: f.size,
        sha256: &f.sha256,
        crc32c: f.crc32c,
        md5: None,
        content_type: "application/octet-stream",
    };
    let cancel = CancellationToken::new();
    for name in [
        "../x",
        "/etc/x",
        "a/../../x",
        "a\u{0}b",
        "a\u{1b}b",
        "./x",
        "a\\..\\x",
        "",
    ] {
        let err = store
            .put_file_if_absent(name, &src, &cancel)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PublishError::InvalidName { .. }),
            "{name:?}: {err:?}"
        );
        assert!(store.head(name).await.is_err());
        assert!(store.delete(name).await.is_err());
    }
    // A symlink inside the repository pointing outside is not followed.
    std::os::unix::fs::symlink(outside.path(), repo.path().join("link")).unwrap();
    let err = store
        .put_file_if_absent("link/x.qcow2", &src, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::InvalidName { .. }), "{err:?}");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "wrote outside"
    );
    // Validation of artifact keys and versions too.
    assert!(ObjectLayout::new("", "..", "1", &f.sha256).is_err());
    assert!(ObjectLayout::new("", "k", "../1", &f.sha256).is_err());
}

// ---------------------------------------------------------------------------------------------
// S3 (moto) and Azure (azurite)

async fn store_conformance(target: &PublishTarget, settings: &StoreSettings, big: usize) {
    let work = tempfile::tempdir().unwrap();
    let files = vec![
        make_file(work.path(), "o.qcow2", "qcow2", big, 41),
        make_file(work.path(), "o.raw.gz", "raw.gz", 100_000, 42),
    ];
    let cancel = CancellationToken::new();
    let set = publish(target, &files, &meta("5.0"), &cancel)
        .await
        .unwrap();
    assert_eq!(set.uploaded, 2);
    let store = target.store().unwrap();
    for (f, p) in files.iter().zip(&set.files) {
        let head = store.head(&p.object).await.unwrap();
        assert_eq!(head.size, f.size);
        assert_eq!(
            head.sha256.as_deref(),
            Some(f.sha256.as_str()),
            "sha256 metadata"
        );
        assert!(p.remote_checksum.starts_with("sha256:") || p.remote_checksum.starts_with("etag:"));
    }
    let m = fetch_manifest(&set.manifest_storage_uri, settings)
        .await
        .unwrap();
    assert_eq!(m, set.manifest);
    assert_eq!(
        verify_published(&m, Some(&set.manifest_storage_uri), settings)
            .await
            .unwrap(),
        Verification::Present
    );
    let again = publish(target, &files, &meta("5.0"), &cancel)
        .await
        .unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, 2));
    // A different object at the name is refused, not overwritten.
    let other = make_file(work.path(), "other", "qcow2", 1000, 43);
    let (st, name) = store_for_uri(&set.files[1].storage_uri, settings).unwrap();
    let src = UploadSource {
        path: &other.path,
        size: other.size,
        sha256: &other.sha256,
        crc32c: other.crc32c,
        md5: None,
        content_type: "application/octet-stream",
    };
    let err = st
        .put_file_if_absent(&name, &src, &cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::AlreadyExistsDifferent { .. }),
        "{err:?}"
    );
    assert_eq!(
        delete_published(&m, Some(&set.manifest_storage_uri), settings)
            .await
            .unwrap(),
        3
    );
    let v = verify_published(&m, Some(&set.manifest_storage_uri), settings)
        .await
        .unwrap();
    assert!(matches!(v, Verification::Gone { .. }), "{v:?}");
}

#[tokio::test]
async fn s3_publish_head_delete_on_moto() {
    if !wanted(
        "HYOPS_TEST_S3",
        std::process::Command::new("moto_server").arg("--help"),
    ) {
        return;
    }
    let port = free_port();
    let _moto = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(TEST_TIMEOUT, async {
        wait_for_port(port).await;
        let endpoint = format!("http://127.0.0.1:{port}");
        let r = reqwest::Client::new()
            .put(format!("{endpoint}/hyops-s3"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        let settings = StoreSettings {
            s3_endpoint: Some(endpoint),
            s3_region: Some("us-east-1".into()),
            s3_access_key: Some(("testing".into(), SecretString::from("testing"))),
            part_size: Some(5 * 1024 * 1024),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::S3),
            bucket: Some("hyops-s3".into()),
            prefix: Some("s3/".into()),
            ..Default::default()
        };
        let target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        // 12 MiB: a real multipart upload with 5 MiB parts.
        store_conformance(&target, &settings, 12 * 1024 * 1024 + 7).await;
    })
    .await
    .expect("test timed out");
}

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a SharedKey-signed request (azurite checks signatures).
async fn azurite_create_container(endpoint: &str, container: &str) {
    use base64::Engine as _;
    let date = httpdate(std::time::SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&k, string_to_sign.as_bytes()).as_ref());
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{container}?restype=container"))
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("Content-Length", "0")
        .header(
            "Authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "create container: {status} {}",
        r.text().await.unwrap()
    );
}

fn httpdate(t: std::time::SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    d.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap()
}

#[tokio::test]
async fn azure_publish_head_delete_on_azurite() {
    if !wanted(
        "HYOPS_TEST_AZURE",
        std::process::Command::new("azurite-blob").arg("--help"),
    ) {
        return;
    }
    let port = free_port();
    let loc = tempfile::tempdir().unwrap();
    let _azurite = tokio::process::Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--silent",
        ])
        .arg("--location")
        .arg(loc.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .unwrap();
    tokio::time::timeout(TEST_TIMEOUT, async {
        wait_for_port(port).await;
        let endpoint = format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
        azurite_create_container(&endpoint, "hyops-az").await;
        let settings = StoreSettings {
            azure_storage_account: Some(AZURITE_ACCOUNT.into()),
            azure_endpoint: Some(endpoint),
            azure_access_key: Some(SecretString::from(AZURITE_KEY)),
            part_size: Some(5 * 1024 * 1024),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::Azure),
            bucket: Some("hyops-az".into()),
            prefix: Some("az/".into()),
            ..Default::default()
        };
        let target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        store_conformance(&target, &settings, 11 * 1024 * 1024 + 3).await;
    })
    .await
    .expect("test timed out");
}

// ---------------------------------------------------------------------------------------------
// HyOps state

fn write_state(root: &Path, module_id: &str, file: &str, doc: serde_json::Value) {
    let p = root.join("state/modules").join(module_id).join(file);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, doc.to_string()).unwrap();
}

#[test]
fn repo_state_ref_resolution_and_each_error() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let m = "org__gcp__object-repo";
    write_state(
        r,
        m,
        "instances/vyos_artifacts.json",
        serde_json::json!({
            "status": "ok", "outputs": {"repo_provider": "gcp", "bucket_name": "bkt-a"}
        }),
    );
    let repo = hyops_state::resolve_repo(r, "org/gcp/object-repo#vyos_artifacts").unwrap();
    assert_eq!(
        (repo.backend, repo.bucket.as_str()),
        (Backend::Gcs, "bkt-a")
    );
    // Single ok instance without #instance resolves to it.
    assert_eq!(
        hyops_state::resolve_repo(r, "org/gcp/object-repo")
            .unwrap()
            .bucket,
        "bkt-a"
    );
    // Missing file.
    let e = hyops_state::resolve_repo(r, "org/gcp/object-repo#nope").unwrap_err();
    assert!(matches!(e, HyopsStateError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("nope.json"), "{e}");
    // Status not ok.
    write_state(
        r,
        m,
        "instances/failed.json",
        serde_json::json!({"status": "error", "outputs": {}}),
    );
    let e = hyops_state::resolve_repo(r, "org/gcp/object-repo#failed").unwrap_err();
    assert!(matches!(e, HyopsStateError::NotOk { .. }), "{e}");
    assert!(e.to_string().contains("\"error\""), "{e}");
    // Ambiguous: two ok instances, named.
    write_state(
        r,
        m,
        "instances/second.json",
        serde_json::json!({
            "status": "ok", "outputs": {"repo_backend": "gcs", "repo_bucket_name": "bkt-b"}
        }),
    );
    let e = hyops_state::resolve_repo(r, "org/gcp/object-repo").unwrap_err();
    assert!(matches!(e, HyopsStateError::Ambiguous { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("second") && msg.contains("vyos_artifacts") && !msg.contains("failed"),
        "{msg}"
    );
    // Unknown backend.
    write_state(
        r,
        "x__repo",
        "latest.json",
        serde_json::json!({
            "status": "ok", "outputs": {"repo_backend": "ftp", "bucket_name": "b"}
        }),
    );
    let e = hyops_state::resolve_repo(r, "x/repo").unwrap_err();
    assert!(matches!(e, HyopsStateError::UnknownBackend { .. }), "{e}");
    assert!(e.to_string().contains("ftp"), "{e}");
    // Azure: container and account names with their fallbacks.
    write_state(
        r,
        "az__repo",
        "latest.json",
        serde_json::json!({
            "status": "ok",
            "outputs": {"repo_provider": "azblob", "repo_bucket_name": "cont", "repo_principal_name": "acct"}
        }),
    );
    let az = hyops_state::resolve_repo(r, "az/repo").unwrap();
    assert_eq!(
        (az.backend, az.bucket.as_str(), az.azure_account.as_deref()),
        (Backend::Azure, "cont", Some("acct"))
    );
    // Malformed refs never touch the filesystem outside the root.
    for bad in ["../etc#x", "a//b", "a/b#../c", ""] {
        assert!(
            matches!(
                hyops_state::resolve_repo(r, bad).unwrap_err(),
                HyopsStateError::BadRef { .. }
            ),
            "{bad:?}"
        );
    }
    // A publish target derives backend and bucket from the state.
    let spec = PublishSpec {
        repo_state_ref: Some("az/repo".into()),
        ..Default::default()
    };
    let err = PublishTarget::resolve(&spec, &StoreSettings::default(), None).unwrap_err();
    assert!(err.to_string().contains("runtime_root"), "{err}");
}

#[test]
fn state_file_is_0600_sorted_and_reads_back_for_the_data_source() {
    let root = tempfile::tempdir().unwrap();
    let mut artifacts = BTreeMap::new();
    artifacts.insert(
        "vyos-test".to_string(),
        ArtifactEntry {
            artifact_url: "https://storage.googleapis.com/b/o.qcow2".into(),
            artifact_format: "qcow2".into(),
            artifact_version: "1.5.0".into(),
            artifact_sha256: "ab".repeat(32),
            source_iso_url: "https://example.invalid/vyos.iso".into(),
            artifact_local_path: "/tmp/o.qcow2".into(),
        },
    );
    let contract = ArtifactContract {
        id: "b-1".into(),
        artifact_key: "vyos-test".into(),
        manifest_url: "gs://b/manifest.json".into(),
        published: true,
        artifacts,
        ..Default::default()
    };
    let path =
        hyops_state::write_instance_state(root.path(), "vyos_default_build", &contract).unwrap();
    assert_eq!(
        path,
        root.path()
            .join("state/modules/core__shared__vyos-image-build/instances/vyos_default_build.json")
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    // Keys sorted at every level: check the order of top-level and output keys in the text.
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("instance") < pos("module_ref") && pos("module_ref") < pos("outputs"));
    assert!(pos("outputs") < pos("status") && pos("status") < pos("updated_at"));
    assert!(
        pos("artifact_format") < pos("artifact_key")
            && pos("artifact_key") < pos("artifact_local_path")
    );
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["status"], "ok");
    let no_temp = std::fs::read_dir(path.parent().unwrap()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".state-")
    });
    assert!(no_temp, "temp file left behind");
    // The data source's view of it.
    let got = hyops_state::read_artifact(
        root.path(),
        "core/shared/vyos-image-build#vyos_default_build",
        "vyos-test",
    )
    .unwrap();
    assert_eq!(got.entry, contract.artifacts["vyos-test"]);
    assert_eq!(got.manifest_url.as_deref(), Some("gs://b/manifest.json"));
    let e = hyops_state::read_artifact(root.path(), "core/shared/vyos-image-build", "other-key")
        .unwrap_err();
    assert!(e.to_string().contains("other-key"), "{e}");
}
