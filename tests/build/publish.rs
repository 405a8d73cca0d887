//! Publish wiring through create: a failed publish does not cost a rebuild; HyOps state written.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_publish_then_retry_reuses_the_build_and_writes_hyops_state() {
    init();
    let f = create_fixture();
    let marker = f.path("runs");
    let command = format!(
        "echo run >> {}; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G",
        marker.display()
    );
    let runtime_root = f.path("hyops-runtime");
    // No credential configured for the publish command (the process environment carries a
    // deliberately unusable one).
    let env = f
        .env()
        .with_runtime_root(&runtime_root)
        .with_store_settings(hyops::engine::publish::StoreSettings::default());

    // First attempt: a publish command that fails after the build succeeded.
    let mut spec = f.spec(&command);
    spec.hyops_state_instance = Some("edge".into());
    spec.publish = Some(hyops::engine::spec::PublishSpec {
        command: Some("echo 'upload refused by remote' >&2; exit 9".into()),
        ..Default::default()
    });
    let err = create(&spec, &env, CancellationToken::new(), &NoProgress).await;
    let err = err.unwrap_err();
    assert!(
        err.to_string().contains("upload refused by remote"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1);
    assert!(!runtime_root.exists(), "state written for a failed create");

    let repo = f.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    spec.publish = Some(hyops::engine::spec::PublishSpec {
        backend: Some(hyops::engine::spec::Backend::File),
        bucket: Some(repo.display().to_string()),
        prefix: Some("vyos/images".into()),
        ..Default::default()
    });
    let out = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(out.cache_hit, "the retry rebuilt the image");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1);
    let c = &out.contract;
    assert!(c.published);
    assert!(!c.published_at.is_empty());
    assert!(c.artifact_url.contains("vyos/images"), "{}", c.artifact_url);
    assert!(!c.manifest_url.is_empty());
    assert_ne!(c.artifact_url, format!("file://{}", c.artifact_local_path));
    let state =
        runtime_root.join("state/modules/core__shared__vyos-image-build/instances/edge.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(
        doc["outputs"]["artifact_sha256"],
        c.artifact_sha256.as_str()
    );
}
