//! Supervisor with real shells: process groups, grace-then-kill, timeouts, log tails, environment policy.

use super::*;

#[tokio::test]
async fn cancel_kills_whole_process_group_including_grandchild() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script =
        format!("echo $$ > {d}/leader; (trap '' TERM; exec sleep 300) & echo $! > {d}/child; wait");
    let spec = CommandSpec::bash_script(script, "group-test", dir.path().join("log"))
        .grace(Duration::from_millis(300));
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::spawn(async move { supervisor::run(&spec, &cancel).await })
    };
    let leader: i32 = wait_for_file(&dir.path().join("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&dir.path().join("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, SupervisorError::Cancelled { .. }), "{err:?}");
    assert!(
        group_gone(leader),
        "process group {leader} still has members"
    );
    assert!(
        !alive(child),
        "grandchild {child} (ignoring SIGTERM) survived"
    );
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait");
    let spec = CommandSpec::bash_script(script, "dropped", dir.path().join("log"));
    let task = tokio::spawn(async move { supervisor::run(&spec, &CancellationToken::new()).await });
    let leader: i32 = wait_for_file(&dir.path().join("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&dir.path().join("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    for _ in 0..3000 {
        if group_gone(leader) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(group_gone(leader), "group of a dropped run survived");
    assert!(!alive(child));
}

#[tokio::test]
async fn timeout_terminates_group_and_reports_log_tail() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo $$ > {d}/leader; echo progress-line-before-hang; sleep 300");
    // Generous timeout: the leader must have written its pid before it passes.
    let spec = CommandSpec::program("/bin/bash", dir.path().join("log"))
        .args(["-c", &script])
        .timeout(Duration::from_secs(8))
        .grace(Duration::from_millis(300));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    let leader: i32 = std::fs::read_to_string(dir.path().join("leader"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match &err {
        SupervisorError::TimedOut { tail, .. } => {
            assert!(tail.contains("progress-line-before-hang"), "{tail}")
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(group_gone(leader));
}

#[tokio::test]
async fn failed_exit_carries_status_and_log_tail() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in $(seq 1 100); do echo noise-$i; done; echo 'the-real-cause' >&2; exit 3";
    let spec = CommandSpec::bash_script(script, "failing", dir.path().join("log"));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    match &err {
        SupervisorError::Exited { code, tail, .. } => {
            assert_eq!(*code, Some(3));
            assert!(tail.contains("the-real-cause"), "{tail}");
            assert!(!tail.contains("noise-1\n"), "tail is not bounded: {tail}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(err.to_string().contains("the-real-cause"));
}

#[tokio::test]
async fn missing_program_is_could_not_start() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let spec = CommandSpec::program("/nonexistent/hyops-no-such-tool", dir.path().join("log"));
    let err = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::Spawn { .. }), "{err:?}");
}

#[tokio::test]
async fn child_env_has_spec_vars_and_no_credentials() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let spec = CommandSpec::bash_script(
        format!("env > {}", dump.display()),
        "env",
        dir.path().join("log"),
    )
    .env("HYOPS_VYOS_ARTIFACT_KEY", "vyos-test")
    .env("HYOPS_VYOS_GCS_SA_JSON", "smuggled");
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(env.contains("HYOPS_VYOS_ARTIFACT_KEY=vyos-test"));
    assert!(env.lines().any(|l| l.starts_with("PATH=")));
    assert!(!env.contains("smuggled"));
    assert_no_credentials(&env);
}

#[tokio::test]
async fn inherit_hands_one_named_variable_to_the_child_and_nothing_else() {
    init();
    // Process-wide, but only names no other test reads.
    std::env::set_var("HYOPS_TEST_AGENT_SOCK", "/run/agent.sock");
    std::env::set_var("HYOPS_TEST_NOT_ASKED", "not-asked-value");
    const AGENT: EnvName = EnvName::from_static("HYOPS_TEST_AGENT_SOCK");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let spec = CommandSpec::bash_script(
        format!("env > {}", dump.display()),
        "env",
        dir.path().join("log"),
    )
    .inherit(AGENT)
    .inherit(EnvName::new("HYOPS_VYOS_GCS_SA_JSON").unwrap())
    .inherit(EnvName::new("AWS_SECRET_ACCESS_KEY").unwrap());
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        env.contains("HYOPS_TEST_AGENT_SOCK=/run/agent.sock"),
        "{env}"
    );
    assert!(!env.contains("not-asked-value"));
    // Asked for, but an explicit inherit of an object-store key is the caller's choice; the
    // denied GCS credential is dropped whatever is asked.
    assert!(env.contains("AWS_SECRET_ACCESS_KEY="));
    assert!(!env.contains(SECRET_JSON));
    assert!(!env.lines().any(|l| l.starts_with("HYOPS_VYOS_GCS_SA_JSON")));
    let shown = format!("{:?}", spec.clone().env("SOME_TOKEN", "token-value-0e9c"));
    assert!(
        shown.contains("SOME_TOKEN") && !shown.contains("token-value-0e9c"),
        "{shown}"
    );
    assert!(EnvName::new("BAD-NAME").is_err());
    assert!(EnvName::new("1ABC").is_err());
    assert!(EnvName::new("").is_err());
}

#[tokio::test]
async fn clear_env_starts_from_nothing() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let spec = CommandSpec::program("/usr/bin/env", dir.path().join("log"))
        .clear_env()
        .env("ONLY_THIS", "1")
        .capture_stdout();
    let out = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.stdout.as_deref().map(str::trim), Some("ONLY_THIS=1"));
}

#[tokio::test]
async fn publish_command_sees_only_the_credential_file_path() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let cred = dir.path().join("sa.json");
    let spec = CommandSpec::bash_script(
        format!("env > {}", dump.display()),
        "publish",
        dir.path().join("log"),
    )
    .credential_file(&cred);
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    let env = std::fs::read_to_string(&dump).unwrap();
    let gcs: Vec<&str> = env
        .lines()
        .filter(|l| l.starts_with("HYOPS_VYOS_GCS_SA_JSON"))
        .collect();
    assert_eq!(
        gcs,
        vec![format!("HYOPS_VYOS_GCS_SA_JSON_FILE={}", cred.display()).as_str()]
    );
    assert!(!env.contains("TOPSECRET"));
}

#[tokio::test]
async fn captured_stdout_is_separate_and_stderr_goes_to_log() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let spec = CommandSpec::bash_script(
        "echo diagnostics >&2; echo https://example.test/x",
        "pub",
        &log,
    )
    .capture_stdout();
    let out = supervisor::run(&spec, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out.stdout.as_deref().map(str::trim),
        Some("https://example.test/x")
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("diagnostics"));
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn held_stdin_delivers_bytes_then_closes_first_on_cancel_and_stderr_streams_lines() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // reads the first line, reports it on stderr, then records end-of-input (the cancel signal
    // a remote runner command sees) before SIGTERM can end it
    let script = format!(
        "trap '' TERM; read -r first; echo \"got $first\" >&2; cat > /dev/null; echo eof > {d}/eof; echo $$ > {d}/done"
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = CommandSpec::bash_script(script, "held", dir.path().join("log"))
        .stdin(StdinSource::Held(SecretString::from("frame-1\n")))
        .stderr_lines(tx)
        .grace(Duration::from_secs(5));
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::spawn(async move { supervisor::run(&spec, &cancel).await })
    };
    let line = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a stderr line")
        .expect("channel open");
    assert_eq!(line, "got frame-1");
    assert!(!dir.path().join("eof").exists(), "stdin is held open");
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert!(
        dir.path().join("eof").exists(),
        "the child saw end-of-input although it ignores SIGTERM"
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        log.contains("got frame-1"),
        "streamed lines are still logged"
    );
}
