//! The create path end to end with the command builder and real qemu-img: cache, delivery, cancellation, timeout, errors.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_command_builder_then_cache_hit_then_rebuild() {
    init();
    let f = create_fixture();
    let marker = f.path("runs");
    let env_dump = f.path("build-env");
    let command = format!(
        "echo run >> {m}; env > {e}; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
        m = marker.display(),
        e = env_dump.display()
    );
    let spec = f.spec(&command);
    let env = f.env();

    let first = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(!first.cache_hit);
    let c = &first.contract;
    assert_eq!(c.artifact_key, "vyos-test");
    assert_eq!(c.artifact_format, "qcow2");
    assert_eq!(c.artifact_version, "1.5-test");
    assert!(!c.published);
    assert!(c.artifact_url.starts_with("file:///"), "{}", c.artifact_url);
    assert_eq!(c.artifact_url, c.artifact_storage_uri);
    let local = PathBuf::from(&c.artifact_local_path);
    assert_eq!(sha256_file(&local), c.artifact_sha256);
    assert_eq!(
        std::fs::metadata(&local).unwrap().len(),
        c.artifact_size_bytes
    );
    assert_eq!(c.artifact_virtual_size_bytes, 1 << 30);
    assert_eq!(c.source_iso_sha256, f.iso_sha256);
    assert!(c.build_id.starts_with("vyos-test-"), "{}", c.build_id);
    assert_eq!(c.artifacts["vyos-test"].artifact_sha256, c.artifact_sha256);

    let build_env = std::fs::read_to_string(&env_dump).unwrap();
    for var in [
        "HYOPS_VYOS_ARTIFACT_KEY=vyos-test",
        "HYOPS_VYOS_ARTIFACT_FORMAT=qcow2",
        "HYOPS_VYOS_ARTIFACT_VERSION=1.5-test",
        "HYOPS_VYOS_DISK_SIZE_GB=2",
        "HYOPS_VYOS_CLOUD_INIT_DS=NoCloud,ConfigDrive",
        "HYOPS_VYOS_GUEST_AGENT=qemu",
    ] {
        assert!(build_env.lines().any(|l| l == var), "missing {var}");
    }
    assert!(build_env.contains(&format!("HYOPS_VYOS_SOURCE_ISO_URL={}", f.iso_url)));
    assert!(build_env
        .lines()
        .any(|l| l.starts_with("HYOPS_VYOS_SOURCE_ISO_PATH=/")));
    assert_no_credentials(&build_env);

    let second = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.contract, first.contract);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "builder re-ran"
    );

    let mut rebuild = spec.clone();
    rebuild.rebuild_if_exists = true;
    let third = create(&rebuild, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(!third.cache_hit);
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_delivers_to_artifact_local_path_with_extra_formats() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("qemu-img create -q -f raw \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G");
    spec.artifact_format = hyops::engine::spec::ArtifactFormat::Raw;
    spec.additional_formats = vec![hyops::engine::spec::ExtraFormat::RawZst];
    let target = f.path("out/images/vyos-edge.raw");
    spec.artifact_local_path = Some(target.clone());
    let out = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    let c = out.contract;
    assert_eq!(c.artifact_local_path, target.display().to_string());
    assert_eq!(sha256_file(&target), c.artifact_sha256);
    let extra = &c.artifacts["vyos-test+raw.zst"];
    assert_eq!(
        extra.artifact_local_path,
        f.path("out/images/vyos-edge.raw.zst").display().to_string()
    );
    assert_eq!(
        sha256_file(Path::new(&extra.artifact_local_path)),
        extra.artifact_sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_build_kills_group_and_claims_nothing() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let command = format!("echo $$ > {d}/leader; sleep 300 & echo $! > {d}/child; wait");
    let mut spec = f.spec(&command);
    let target = f.path("never/vyos.qcow2");
    spec.artifact_local_path = Some(target.clone());
    let env = f.env();
    let cancel = CancellationToken::new();
    let task = {
        let (spec, env, cancel) = (spec.clone(), env.clone(), cancel.clone());
        tokio::spawn(async move { create(&spec, &env, cancel, &NoProgress).await })
    };
    let leader: i32 = wait_for_file(&f.path("leader"))
        .await
        .trim()
        .parse()
        .unwrap();
    let child: i32 = wait_for_file(&f.path("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EngineError::Cancelled { stage: "build" }),
        "{err:?}"
    );
    assert!(group_gone(leader), "builder group survived");
    assert!(!alive(child));
    assert!(!target.exists(), "an artifact was claimed");
    let builds = env.cache_dir().join("builds");
    let leftovers: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging or entry left behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_timeout_terminates_builder() {
    init();
    let f = create_fixture();
    let d = f.dir.path().display();
    let mut spec = f.spec(&format!("echo $$ > {d}/leader; sleep 300"));
    spec.timeouts.create = Some("15s".into());
    // Its own build slot (no queueing behind other tests' builds) so the builder starts well
    // before the timeout.
    let env = f.env().with_max_parallel_builds(97);
    let err = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::TimedOut { .. }), "{err:?}");
    let leader: i32 = std::fs::read_to_string(f.path("leader"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(group_gone(leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_reports_log_tail_and_sha_mismatch_is_refused() {
    init();
    let f = create_fixture();
    let spec = f.spec("echo 'builder exploded: no space' >&2; exit 7");
    let err = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("builder exploded: no space"),
        "{err}"
    );

    let mut wrong = f.spec("true");
    wrong.source_iso_sha256 = "0".repeat(64);
    let err = create(&wrong, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        hyops::engine::error::ErrorKind::Refused,
        "{err}"
    );
}

#[tokio::test]
async fn invalid_spec_names_the_fields() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("true");
    spec.artifact_key = "Bad Key".into();
    spec.build.command = None;
    spec.timeouts.create = Some("3 hours".into());
    let err = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    let EngineError::Invalid(problems) = &err else {
        panic!("{err:?}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["artifact_key", "build.command", "timeouts.create"],
        "{err}"
    );
}

#[test]
fn create_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let f = create_fixture();
    let spec = f.spec("true");
    let env = f.env();
    let fut = create(&spec, &env, CancellationToken::new(), &NoProgress);
    assert_send(&fut);
}
