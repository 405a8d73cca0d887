//! HyOps state: ref resolution and state files.

use crate::support::*;
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
