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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_is_uploaded_while_the_extra_formats_are_encoded() {
    use std::os::unix::fs::MetadataExt;
    init();
    let f = create_fixture();
    let command = "qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \
                   \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" \
                   && qemu-img resize -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G";
    let mut spec = f.spec(command);
    spec.additional_formats = vec![
        hyops::engine::spec::ExtraFormat::RawZst,
        hyops::engine::spec::ExtraFormat::RawGz,
    ];
    let repo = f.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    spec.publish = Some(hyops::engine::spec::PublishSpec {
        backend: Some(hyops::engine::spec::Backend::File),
        bucket: Some(repo.display().to_string()),
        ..Default::default()
    });
    let env = f
        .env()
        .with_store_settings(hyops::engine::publish::StoreSettings::default());
    let out = create(&spec, &env, CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    let c = &out.contract;
    assert!(c.published);
    let mtime = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mtime(), m.mtime_nsec())
    };
    let find = |suffix: &str| -> PathBuf {
        walk(&repo)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no published *{suffix} in {}", repo.display()))
    };
    let (primary, gz, manifest) = (find(".qcow2"), find(".raw.gz"), find("manifest.json"));
    // Every published object is the local file it came from.
    for (key, object) in [
        ("vyos-test".to_owned(), &primary),
        ("vyos-test+raw.gz".to_owned(), &gz),
    ] {
        assert_eq!(sha256_file(object), c.artifacts[&key].artifact_sha256);
    }
    // The primary object was complete before the last extra encoding was: it was uploaded while
    // the extras were made, not after them. The manifest still comes last.
    let local_gz = PathBuf::from(&c.artifacts["vyos-test+raw.gz"].artifact_local_path);
    assert!(
        mtime(&primary) < mtime(&local_gz),
        "primary published after the extras were made"
    );
    assert!(mtime(&manifest) >= mtime(&gz));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["files"].as_array().map(Vec::len), Some(3));
    assert_eq!(m["normalization"]["action"], "kept");
    // Publishing needs no md5 (DESIGN §7), so the hashing pass computes none: the record of
    // every file carries sha256 and crc32c only.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.cache_entry.join("record.json")).unwrap())
            .unwrap();
    let files = record["files"].as_array().expect("record files");
    assert_eq!(files.len(), 3);
    for file in files {
        assert!(file["sha256"].is_string(), "{file}");
        assert!(file["md5"].is_null(), "md5 computed for {file}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
