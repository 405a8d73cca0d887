//! The file backend: atomic writes, refresh, escapes.

use crate::support::*;
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
