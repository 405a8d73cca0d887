//! Builds on a dedicated runner over SSH, against a real `sshd` (Debian openssh-server) started
//! per test on 127.0.0.1 with its own config, host key and authorized key (`tests/runner/sshd.rs`),
//! real Terraform 1.0.3 and the operator CLI, the fixture ISO on a loopback HTTP server and the
//! GCS emulator stack. The runner is this same machine, reached as root over SSH; "runner side"
//! below means the sshd's sessions and the `remote_dir` it works in.
//!
//! Gate: `HYOPS_TEST_SSH=1` (exported by scripts/test.sh); skipped otherwise.

#[path = "runner/cli.rs"]
mod cli;
#[path = "common/gcs_stack.rs"]
mod gcs_stack;
#[path = "terraform/harness.rs"]
mod harness;
#[path = "runner/sshd.rs"]
mod sshd;
#[path = "runner/support.rs"]
mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gcs_stack::{GcsStack, BUCKET};
use harness::{fixture_iso, flat, sha256_hex, text, Workdir, SHA};
use sshd::Sshd;
use support::*;

fn stack() -> Option<(&'static GcsStack, MutexGuard<'static, ()>)> {
    static STACK: OnceLock<Option<GcsStack>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let s = STACK
        .get_or_init(|| gcs_stack::available().then(GcsStack::start))
        .as_ref()?;
    Some((s, LOCK.lock().unwrap_or_else(|p| p.into_inner())))
}

fn hcl(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A configuration building on `sshd` with `builder`, publishing to GCS under `prefix` when set.
/// The credential comes from `sa.json` in the working directory (`file()`), never from an env var.
fn config(
    sshd: &Sshd,
    remote_dir: &Path,
    host_key: &str,
    gcs: Option<(&GcsStack, &str)>,
    key: &str,
    iso_url: &str,
    builder: &str,
) -> String {
    let (provider_gcs, publish) = match gcs {
        Some((s, prefix)) => (
            format!(
                "  gcs_credentials = file(\"sa.json\")\n  gcs_endpoint = \"{}\"\n",
                s.base()
            ),
            format!(
                "  publish {{\n    backend = \"gcs\"\n    bucket = \"{BUCKET}\"\n    prefix = \"{prefix}\"\n  }}\n"
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "provider \"hyops\" {{\n{provider_gcs}{runner}}}\n\n\
         resource \"hyops_vyos_image\" \"r\" {{\n  artifact_key = \"{key}\"\n  source_iso_url = \
         \"{iso_url}\"\n  source_iso_sha256 = \"{SHA}\"\n  build {{\n    method = \"command\"\n    \
         command = {builder}\n  }}\n{publish}}}\n\noutput \"image\" {{\n  value = \
         hyops_vyos_image.r\n  sensitive = true\n}}\n",
        runner = sshd.runner_block(remote_dir, host_key),
        builder = hcl(builder),
    )
}

fn workdir(main_tf: &str, gcs: Option<&GcsStack>, log: &Path) -> Workdir {
    let mut wd = Workdir::bare(&harness::mirror().cli_config);
    if let Some(s) = gcs {
        std::fs::write(wd.path().join("sa.json"), s.sa_json()).unwrap();
    }
    wd.write_main(main_tf);
    wd.init();
    wd.set_env("TF_LOG_PROVIDER", "INFO");
    wd.set_env("TF_LOG_PATH", log.display().to_string());
    wd
}

fn object_of(uri: &str) -> String {
    uri.strip_prefix(&format!("gs://{BUCKET}/"))
        .unwrap_or_else(|| panic!("not in the test bucket: {uri}"))
        .to_owned()
}

/// A background `terraform apply`, its process group killed if the test fails first.
struct Apply(Option<std::process::Child>);

impl Apply {
    fn pgid(&self) -> i32 {
        self.0.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
}

impl Drop for Apply {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // SAFETY: killing the process group of the terraform child this test started.
            unsafe { libc::killpg(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

fn spawn_apply(wd: &Workdir) -> Apply {
    Apply(Some(
        wd.command(&["apply", "-auto-approve", "-no-color", "-input=false"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("terraform apply"),
    ))
}

/// Waits for the apply (bounded by the harness limit) and returns its output.
fn finish(mut apply: Apply) -> std::process::Output {
    let child = apply.0.take().expect("running apply");
    let pgid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(harness::COMMAND_LIMIT) {
        Ok(out) => out.expect("terraform output"),
        Err(_) => {
            // SAFETY: killing the process group of the terraform child this test started.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
            panic!(
                "terraform apply did not finish within {:?}",
                harness::COMMAND_LIMIT
            );
        }
    }
}

#[test]
fn terraform_apply_builds_on_the_runner_publishes_to_gcs_and_keeps_the_key_off_the_runner() {
    if !sshd::enabled() {
        return;
    }
    let Some((s, _guard)) = stack() else { return };
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let gate = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let log = gate.path().join("provider.log");
    let main_tf = config(
        &sshd,
        &remote_dir,
        &sshd.host_key(),
        Some((s, "runner/first/")),
        "vyos-runner",
        &iso.url(),
        &gated_builder(gate.path(), true),
    );
    let wd = workdir(&main_tf, Some(s), &log);
    let marker = s.key_marker();

    let connections = sshd.accepted();
    let child = spawn_apply(&wd);
    assert!(
        wait_for(&gate.path().join("started"), Duration::from_secs(240)),
        "the builder never started on the runner"
    );
    // mid-build: the key is in no process environment or argv, and on disk only in the scoped
    // 0600 file (0700 directory) under remote_dir
    let procs = procs_containing(&marker);
    assert!(procs.is_empty(), "key in /proc: {procs:?}");
    let roots = [
        remote_dir.clone(),
        sshd.path().to_path_buf(),
        PathBuf::from("/tmp"),
        PathBuf::from("/root/.cache/hybridops"),
    ];
    let local_side = [wd.path().to_path_buf()];
    let hits = files_containing(&roots, &local_side, &marker);
    assert_eq!(hits.len(), 1, "key on disk: {hits:?}");
    let secret = &hits[0];
    assert!(secret.starts_with(remote_dir.join("secrets")), "{secret:?}");
    assert_eq!(mode(secret), 0o600);
    assert_eq!(mode(secret.parent().unwrap()), 0o700);
    std::fs::write(gate.path().join("go"), "").unwrap();
    let out = finish(child);
    assert!(out.status.success(), "apply:\n{}", text(&out));

    // afterwards: nowhere at all (logs included), the scoped directory gone
    let hits = files_containing(&roots, &local_side, &marker);
    assert!(hits.is_empty(), "key left on disk: {hits:?}");
    assert!(procs_containing(&marker).is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(remote_dir.join("secrets"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // one multiplexed connection for the whole apply; the ISO fetched once, on the runner
    assert_eq!(sshd.accepted() - connections, 1, "connections per apply");
    assert_eq!(iso.gets(), 1);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("shipping the provider binary"),
        "{log_text}"
    );
    assert!(
        log_text.contains(&format!("runner root@127.0.0.1:{}: ", sshd.port)),
        "remote progress lines reach the provider log"
    );
    let shipped = shipped_binaries(&remote_dir);
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    let shipped_inode = inode(&shipped[0]);

    // outputs equal the stored object; the contract names the runner
    let img = wd.outputs()["image"]["value"].clone();
    assert_eq!(img["published"], true);
    let object = object_of(img["artifact_storage_uri"].as_str().unwrap());
    let bytes = s.read(&object).expect("published object");
    assert_eq!(img["artifact_sha256"].as_str().unwrap(), sha256_hex(&bytes));
    assert_eq!(
        img["artifact_size_bytes"].as_u64().unwrap(),
        bytes.len() as u64
    );
    let contract: serde_json::Value =
        serde_json::from_str(img["contract_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        contract["build_host"],
        format!("root@127.0.0.1:{}", sshd.port)
    );
    let local_path = img["artifact_local_path"].as_str().unwrap();
    assert!(
        Path::new(local_path).starts_with(sshd.runner_cache()),
        "artifact_local_path {local_path} is the runner's path"
    );
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 0, "no-op plan:\n{plan}");

    // a second apply (new provider process, another artifact): the shipped binary and the
    // runner's ISO cache are reused
    let log2 = gate.path().join("provider2.log");
    let main_tf = config(
        &sshd,
        &remote_dir,
        &sshd.host_key(),
        Some((s, "runner/second/")),
        "vyos-runner-two",
        &iso.url(),
        &gated_builder(gate.path(), false),
    );
    let wd2 = workdir(&main_tf, Some(s), &log2);
    let out = wd2.apply();
    assert!(out.status.success(), "second apply:\n{}", text(&out));
    assert_eq!(
        iso.gets(),
        1,
        "the runner's ISO cache served the second apply"
    );
    let again = shipped_binaries(&remote_dir);
    assert_eq!(again, shipped);
    assert_eq!(inode(&again[0]), shipped_inode, "binary not uploaded again");
    let log2_text = std::fs::read_to_string(&log2).unwrap();
    assert!(log2_text.contains("already holds this provider binary"));
    assert!(!log2_text.contains("shipping the provider binary"));
}

#[test]
fn unpublished_build_stays_on_the_runner_and_refresh_checks_it_over_ssh() {
    if !sshd::enabled() {
        return;
    }
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let gate = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let log = gate.path().join("provider.log");
    let main_tf = config(
        &sshd,
        &remote_dir,
        &sshd.host_key(),
        None,
        "vyos-local",
        &iso.url(),
        &gated_builder(gate.path(), false),
    );
    let wd = workdir(&main_tf, None, &log);
    let out = wd.apply();
    assert!(out.status.success(), "apply:\n{}", text(&out));
    let img = wd.outputs()["image"]["value"].clone();
    assert_eq!(img["published"], false);
    let local_path = PathBuf::from(img["artifact_local_path"].as_str().unwrap());
    assert!(
        local_path.starts_with(sshd.runner_cache()),
        "{local_path:?}"
    );
    let bytes = std::fs::read(&local_path).expect("artifact on the runner");
    assert_eq!(img["artifact_sha256"].as_str().unwrap(), sha256_hex(&bytes));
    let contract: serde_json::Value =
        serde_json::from_str(img["contract_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        contract["build_host"],
        format!("root@127.0.0.1:{}", sshd.port)
    );
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 0, "no-op plan:\n{plan}");

    // the runner-local file disappears: refresh (over SSH) drops the instance, plan recreates it
    std::fs::remove_file(&local_path).unwrap();
    let before = sshd.accepted();
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("gone or changed"), "{plan}");
    assert_eq!(sshd.accepted() - before, 1, "refresh used one connection");
}

#[test]
fn wrong_host_key_is_refused_naming_host_and_fingerprint_and_nothing_runs() {
    if !sshd::enabled() {
        return;
    }
    let sshd = Sshd::start();
    let other = sshd.path().join("other_host_key");
    sshd::keygen(&other);
    let wrong = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let wrong: String = wrong
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let remote_dir = sshd.remote_dir("runner");
    let gate = tempfile::tempdir().unwrap();
    let main_tf = config(
        &sshd,
        &remote_dir,
        &wrong,
        None,
        "vyos-refused",
        "http://127.0.0.1:9/vyos.iso",
        &gated_builder(gate.path(), false),
    );
    let wd = workdir(&main_tf, None, &gate.path().join("provider.log"));
    let out = wd.apply();
    assert!(!out.status.success(), "{}", text(&out));
    let msg = flat(&out);
    eprintln!("diagnostic: {msg}");
    assert!(msg.contains("Build runner host key refused"), "{msg}");
    assert!(
        msg.contains(&sshd.host_fingerprint()),
        "names the fingerprint: {msg}"
    );
    assert!(
        msg.contains(&format!("127.0.0.1:{}", sshd.port)),
        "names the host: {msg}"
    );
    assert_eq!(sshd.accepted(), 0, "no session was opened");
    assert!(!remote_dir.exists(), "nothing ran on the runner");
    assert!(!gate.path().join("started").exists());
}

#[test]
fn cancel_mid_build_leaves_no_build_process_on_the_runner_and_no_credential() {
    if !sshd::enabled() {
        return;
    }
    let Some((s, _guard)) = stack() else { return };
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let gate = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let main_tf = config(
        &sshd,
        &remote_dir,
        &sshd.host_key(),
        Some((s, "runner/cancel/")),
        "vyos-cancel",
        &iso.url(),
        &gated_builder(gate.path(), true),
    );
    let wd = workdir(&main_tf, Some(s), &gate.path().join("provider.log"));
    let child = spawn_apply(&wd);
    assert!(
        wait_for(&gate.path().join("started"), Duration::from_secs(240)),
        "the builder never started on the runner"
    );
    let gate_str = gate.path().display().to_string();
    let remote_str = remote_dir.display().to_string();
    assert!(!procs_containing(&gate_str).is_empty(), "the build runs");
    // Ctrl-C signals the foreground group (terraform, its PyPI wrapper, the provider, which
    // ignores SIGINT): Terraform sends Stop to the provider
    // SAFETY: signalling the process group of the terraform child this test started.
    assert_eq!(unsafe { libc::killpg(child.pgid(), libc::SIGINT) }, 0);
    let out = finish(child);
    assert!(!out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<_> = procs_containing(&gate_str)
            .into_iter()
            .chain(procs_containing(&remote_str))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "build processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let leftovers: Vec<_> = std::fs::read_dir(remote_dir.join("secrets"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "credential left: {leftovers:?}");
    assert!(s.list("runner/cancel/").is_empty(), "nothing published");
}
