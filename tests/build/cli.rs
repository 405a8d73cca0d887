//! The operator CLI: `image validate`/`image apply` in-process, and SIGINT cancellation in a child process.

use super::*;

#[test]
fn cli_image_apply_prints_the_contract_json() {
    init();
    let f = create_fixture();
    let spec = serde_json::json!({
        "artifact_key": "vyos-cli",
        "artifact_version": "1.5-cli",
        "source_iso_url": f.iso_url,
        "source_iso_sha256": f.iso_sha256,
        "build": [{ "method": "command", "command": "qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G" }],
        "provider": { "cache_dir": f.path("cli-cache") }
    });
    let spec_path = f.path("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let args = |sub: &str| -> Vec<OsString> {
        vec![
            "terraform-provider-hyops".into(),
            "image".into(),
            sub.into(),
            "--config".into(),
            spec_path.clone().into(),
        ]
    };

    let mut out = Vec::new();
    let code = hyops::cli::run_to(args("validate"), &mut out);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(out.is_empty());

    let code = hyops::cli::run_to(args("apply"), &mut out);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let contract: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(contract["artifact_key"], "vyos-cli");
    assert_eq!(contract["published"], false);
    let local = contract["artifact_local_path"].as_str().unwrap();
    assert!(
        local.starts_with(&f.path("cli-cache").display().to_string()),
        "{local}"
    );
    assert_eq!(
        sha256_file(Path::new(local)),
        contract["artifact_sha256"].as_str().unwrap()
    );

    let bad = f.path("bad.json");
    std::fs::write(&bad, br#"{"artifact_key": "x", "frobnicate": 1}"#).unwrap();
    let mut out = Vec::new();
    // As main.rs passes them: Strings, program name excluded.
    let code = hyops::cli::run_to(
        vec![
            "image".to_owned(),
            "validate".to_owned(),
            "--config".to_owned(),
            bad.display().to_string(),
        ],
        &mut out,
    );
    assert_eq!(code, std::process::ExitCode::from(2));
}

/// Not a test on its own: the body of the child process spawned by
/// `cli_sigint_cancels_build_and_prints_nothing` (runs only with `HYOPS_TEST_CLI_ARGS` set).
#[test]
fn cli_child_entry() {
    let Ok(raw) = std::env::var("HYOPS_TEST_CLI_ARGS") else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&raw).unwrap();
    let mut out = Vec::new();
    let code = hyops::cli::run_to(args, &mut out);
    std::fs::write(std::env::var("HYOPS_TEST_CLI_STDOUT").unwrap(), &out).unwrap();
    let numeric = [0u8, 1, 2, 130]
        .into_iter()
        .find(|n| std::process::ExitCode::from(*n) == code)
        .unwrap_or(255);
    std::process::exit(i32::from(numeric));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sigint_cancels_build_and_prints_nothing() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let spec = serde_json::json!({
        "artifact_key": "vyos-sigint",
        "artifact_version": "1.5-sigint",
        "source_iso_url": f.iso_url,
        "source_iso_sha256": f.iso_sha256,
        "build": { "method": "command",
                   "command": format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait") },
        "provider": { "cache_dir": f.path("cli-cache") }
    });
    let spec_path = f.path("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let args = serde_json::json!(["image", "apply", "--config", spec_path]);
    let stdout_path = f.path("cli-stdout");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "cli_tests::cli_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HYOPS_TEST_CLI_ARGS", args.to_string())
        .env("HYOPS_TEST_CLI_STDOUT", &stdout_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let leader: i32 = wait_for_file(&f.path("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let grandchild: i32 = wait_for_file(&f.path("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let status = child.wait().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(
        std::fs::read(&stdout_path).unwrap().is_empty(),
        "a contract was printed"
    );
    assert!(group_gone(leader));
    assert!(!alive(grandchild));
    let builds = f.path("cli-cache").join("builds");
    let leftovers: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
