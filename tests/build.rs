//! Build engine: supervisor (real shells), builder invocation contracts (recording stand-ins on
//! PATH), packaged packer templates (real `packer validate`), preflight messages (injected probes),
//! the create path end to end with the command builder and real qemu-img, and the build cache
//! (fingerprint inputs with a real git checkout, LRU eviction, `cache`/`image explain` CLI).
//! Topic modules live in `tests/build/`; shared fixtures are here.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use hyops::engine::build::{
    self, materialize_packaged_templates, Accelerator, BuildContext, BuildError, BuildSettings,
};
use hyops::engine::create::create;
use hyops::engine::credentials::SecretString;
use hyops::engine::env::EngineEnv;
use hyops::engine::error::EngineError;
use hyops::engine::preflight::{run_preflight, PreflightRequest, Probes, SystemProbes};
use hyops::engine::progress::NoProgress;
use hyops::engine::spec::{BuildMethod, BuildSpec, ImageSpec, SmokeVerifySpec};
use hyops::engine::supervisor::{self, CommandSpec, EnvName, StdinSource, SupervisorError};
use hyops::engine::verify::{smoke_verify, VerifyError, VerifyRequest};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

const SECRET_JSON: &str = "{\"private_key\":\"TOPSECRET-SA-JSON\"}";
const SECRET_AWS: &str = "TOPSECRET-AWS";

/// Every test runs with credentials in the parent environment, so each child's recorded
/// environment proves they were removed.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("HYOPS_VYOS_GCS_SA_JSON", SECRET_JSON);
        std::env::set_var("HYOPS_VYOS_GCS_SA_JSON_FILE", "/nonexistent/parent-sa.json");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_AWS);
    });
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn group_gone(pgid: i32) -> bool {
    // SAFETY: signal 0 to a process group only checks existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

async fn wait_for_file(path: &Path) -> String {
    // Generous: the machine may be busy compiling.
    for _ in 0..6000 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never appeared", path.display());
}

fn assert_no_credentials(env_dump: &str) {
    assert!(
        !env_dump.contains("TOPSECRET"),
        "a secret reached a child: {env_dump}"
    );
    assert!(
        !env_dump.contains("/nonexistent/parent-sa.json"),
        "the parent's credential file path reached a child"
    );
    for line in env_dump.split(['\n', '\0']) {
        assert!(
            !line.starts_with("HYOPS_VYOS_GCS_SA_JSON"),
            "credential variable in child env: {line}"
        );
    }
}

struct CreateFixture {
    dir: tempfile::TempDir,
    iso_url: String,
    iso_sha256: String,
}

fn create_fixture() -> CreateFixture {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("fixture.iso");
    let bytes: Vec<u8> = (0..(256 * 1024u32)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&iso, &bytes).unwrap();
    CreateFixture {
        iso_url: url::Url::from_file_path(&iso).unwrap().to_string(),
        iso_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        dir,
    }
}

impl CreateFixture {
    fn spec(&self, command: &str) -> ImageSpec {
        serde_json::from_value(serde_json::json!({
            "artifact_key": "vyos-test",
            "artifact_version": "1.5-test",
            "source_iso_url": self.iso_url,
            "source_iso_sha256": self.iso_sha256,
            "build": { "method": "command", "command": command, "disk_size_gb": 2 }
        }))
        .unwrap()
    }

    fn env(&self) -> EngineEnv {
        EngineEnv::from_env().with_cache_dir(self.dir.path().join("cache"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[path = "build/builders.rs"]
mod builder_tests;
#[path = "build/cache.rs"]
mod cache_tests;
#[path = "build/child_env.rs"]
mod child_env_tests;
#[path = "build/cli.rs"]
mod cli_tests;
#[path = "build/create.rs"]
mod create_tests;
#[path = "build/eviction.rs"]
mod eviction_tests;
#[path = "build/normalize.rs"]
mod normalize_tests;
#[path = "build/preflight.rs"]
mod preflight_tests;
#[path = "build/publish.rs"]
mod publish_tests;
#[path = "build/sudo.rs"]
mod sudo_tests;
#[path = "build/supervisor.rs"]
mod supervisor_tests;
#[path = "build/verify.rs"]
mod verify_tests;
