//! The operator CLI with the runner from `HYOPS_VYOS_BUILD_RUNNER_*`: a GCS publish from the
//! runner, an unreachable runner, a failed remote build, concurrent builds sharing the ISO cache.

use super::*;

pub(crate) fn cli(env: &[(String, String)], spec: &Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let mut c = Command::new(env!("CARGO_BIN_EXE_terraform-provider-hyops"));
    c.args(["image", "apply", "--config"]).arg(spec);
    for k in [
        "HYOPS_VYOS_GCS_SA_JSON",
        "HYOPS_VYOS_GCS_SA_JSON_FILE",
        "HYOPS_GCS_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().map(|(k, v)| (k, v)));
    let out = c.stdin(Stdio::null()).output().expect("run the CLI");
    (out, started.elapsed())
}

#[test]
fn operator_cli_builds_on_the_runner_from_the_environment() {
    if !sshd::enabled() {
        return;
    }
    let Some((s, _guard)) = stack() else { return };
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let gate = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let sa = gate.path().join("sa.json");
    std::fs::write(&sa, s.sa_json()).unwrap();
    let spec = gate.path().join("spec.json");
    let json = serde_json::json!({
        "artifact_key": "vyos-cli",
        "source_iso_url": iso.url(),
        "source_iso_sha256": SHA,
        "build": {"method": "command", "command": gated_builder(gate.path(), false)},
        "publish": {"backend": "gcs", "bucket": BUCKET, "prefix": "runner/cli/"},
        "provider": {"gcs_endpoint": s.base(), "gcs_credentials_file": sa},
    });
    std::fs::write(&spec, json.to_string()).unwrap();
    let (out, _) = cli(&sshd.runner_env(&remote_dir), &spec);
    assert!(out.status.success(), "{}", text(&out));
    let contract: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        contract["build_host"],
        format!("root@127.0.0.1:{}", sshd.port)
    );
    let bytes = s
        .read(&object_of(
            contract["artifact_storage_uri"].as_str().unwrap(),
        ))
        .expect("published object");
    assert_eq!(
        contract["artifact_sha256"].as_str().unwrap(),
        sha256_hex(&bytes)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[fetch]"),
        "remote progress streamed: {stderr}"
    );
    assert_eq!(iso.gets(), 1);
    assert_eq!(shipped_binaries(&remote_dir).len(), 1);
    assert!(gate.path().join("started").exists());
}

#[test]
fn unreachable_runner_fails_at_connect_timeout_with_a_connect_error() {
    if !sshd::enabled() {
        return;
    }
    // accepts TCP (kernel backlog) but never speaks SSH
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    sshd::keygen(&key);
    let host_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        serde_json::json!({
            "artifact_key": "vyos-unreachable",
            "source_iso_url": "http://127.0.0.1:9/vyos.iso",
            "source_iso_sha256": SHA,
            "build": {"method": "command", "command": "true"},
        })
        .to_string(),
    )
    .unwrap();
    let env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("IDENTITY_FILE", key.display().to_string()),
        ("HOST_KEY", host_key.trim().to_owned()),
        (
            "REMOTE_DIR",
            dir.path().join("runner").display().to_string(),
        ),
        ("CONNECT_TIMEOUT", "2s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("HYOPS_VYOS_BUILD_RUNNER_{k}"), v))
    .collect();
    let (out, took) = cli(&env, &spec);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to build runner"),
        "{stderr}"
    );
    assert!(stderr.contains("timed out"), "{stderr}");
    // generous bound, not a speed assertion: it gave up instead of hanging
    assert!(took < Duration::from_secs(120), "{took:?}");
    drop(silent);
}

#[test]
fn failed_remote_build_returns_the_build_log_tail() {
    if !sshd::enabled() {
        return;
    }
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        serde_json::json!({
            "artifact_key": "vyos-broken",
            "source_iso_url": iso.url(),
            "source_iso_sha256": SHA,
            "build": {"method": "command", "command": "echo 'builder says: disk exploded'; exit 3"},
        })
        .to_string(),
    )
    .unwrap();
    let (out, _) = cli(&sshd.runner_env(&remote_dir), &spec);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("CLI stderr:\n{stderr}");
    let error = stderr
        .split_once("error: the build on runner")
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("no runner failure: {stderr}"));
    assert!(error.contains("builder says: disk exploded"), "{stderr}");
    assert!(out.stdout.is_empty(), "no contract on failure");
}

#[test]
fn concurrent_applies_share_the_runner_iso_cache() {
    if !sshd::enabled() {
        return;
    }
    let sshd = Sshd::start();
    let iso = IsoServer::start(&fixture_iso());
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = sshd.remote_dir("runner");
    let env = sshd.runner_env(&remote_dir);
    let runs: Vec<_> = ["vyos-par-a", "vyos-par-b"]
        .into_iter()
        .map(|key| {
            let spec = dir.path().join(format!("{key}.json"));
            std::fs::write(
                &spec,
                serde_json::json!({
                    "artifact_key": key,
                    "source_iso_url": iso.url(),
                    "source_iso_sha256": SHA,
                    "build": {"method": "command", "command": gated_builder(dir.path(), false)},
                })
                .to_string(),
            )
            .unwrap();
            let env = env.clone();
            std::thread::spawn(move || cli(&env, &spec).0)
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(
        iso.gets(),
        1,
        "one download, shared under the runner's cache lock"
    );
    assert_eq!(shipped_binaries(&remote_dir).len(), 1);
}
