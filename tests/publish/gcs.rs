//! GCS through the JSON-API test stack.

use crate::support::*;

#[tokio::test]
async fn gcs_publish_matches_local_digests_and_republish_uploads_nothing() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![
            make_file(work.path(), "a.qcow2", "qcow2", 1_300_000, 1),
            make_file(work.path(), "a.raw.xz", "raw.xz", 300_001, 2),
        ];
        let target =
            PublishTarget::resolve(&stack.spec("images/"), &stack.settings(), None).unwrap();
        let cancel = CancellationToken::new();
        let set = publish(&target, &files, &meta("1.5.0"), &cancel)
            .await
            .unwrap();
        assert_eq!((set.uploaded, set.skipped), (2, 0));
        assert_eq!(
            stack.stat("upload_initiations").await,
            3,
            "two files + manifest"
        );

        let store = target.store().unwrap();
        for (f, p) in files.iter().zip(&set.files) {
            assert!(
                p.object.starts_with("images/vyos-test/1.5.0/"),
                "{}",
                p.object
            );
            assert!(p.object.contains(&files[0].sha256[..16]));
            let head = store.head(&p.object).await.unwrap();
            assert_eq!(head.size, f.size);
            assert_eq!(head.crc32c, Some(f.crc32c), "server crc32c");
            assert_eq!(head.md5, f.md5, "server md5");
            assert_eq!(p.storage_uri, format!("gs://{BUCKET}/{}", p.object));
            assert!(p.remote_checksum.starts_with("crc32c:"));
            assert!(!p.remote_generation.is_empty());
        }
        let m = &set.manifest;
        assert_eq!(m.files[0].proxmox.checksum_algorithm, "sha256");
        assert_eq!(m.files[0].proxmox.content_type, "import");
        assert_eq!(m.files[1].hetzner.compression.as_deref(), Some("xz"));

        // The manifest reads back the same through gs:// and through the public URL.
        let via_gs = fetch_manifest(&set.manifest_storage_uri, &stack.settings())
            .await
            .unwrap();
        assert_eq!(&via_gs, m);
        assert!(set.manifest_url.starts_with(&stack.base()));
        let via_http = fetch_manifest(&set.manifest_url, &stack.settings())
            .await
            .unwrap();
        assert_eq!(&via_http, m);
        assert_eq!(
            verify_published(m, Some(&set.manifest_storage_uri), &stack.settings())
                .await
                .unwrap(),
            Verification::Present
        );

        // A consumer without credentials checks the public URLs.
        let anonymous = StoreSettings::default();
        assert_eq!(
            verify_published(m, Some(&set.manifest_url), &anonymous)
                .await
                .unwrap(),
            Verification::Present
        );

        // Re-publishing the same build uploads nothing and keeps the first manifest.
        let again = publish(&target, &files, &meta("1.5.0"), &cancel)
            .await
            .unwrap();
        assert_eq!((again.uploaded, again.skipped), (0, 2));
        assert_eq!(
            stack.stat("upload_initiations").await,
            3,
            "no new upload sessions"
        );
        assert_eq!(again.manifest, set.manifest);

        // An object replaced behind our back (same size, other bytes) is seen as changed.
        let replaced = make_file(
            work.path(),
            "replaced.xz",
            "raw.xz",
            files[1].size as usize,
            99,
        );
        assert!(store.delete(&set.files[1].object).await.unwrap());
        let src = UploadSource {
            path: &replaced.path,
            size: replaced.size,
            sha256: &replaced.sha256,
            crc32c: replaced.crc32c,
            md5: replaced.md5,
            content_type: "application/octet-stream",
        };
        store
            .put_file_if_absent(&set.files[1].object, &src, &cancel)
            .await
            .unwrap();
        let v = verify_published(m, Some(&set.manifest_storage_uri), &stack.settings())
            .await
            .unwrap();
        assert!(matches!(v, Verification::Changed { .. }), "{v:?}");

        // Destroy removes the objects; refresh then sees them gone.
        let n = delete_published(m, Some(&set.manifest_storage_uri), &stack.settings())
            .await
            .unwrap();
        assert_eq!(n, 3);
        let v = verify_published(m, Some(&set.manifest_storage_uri), &stack.settings())
            .await
            .unwrap();
        assert!(matches!(v, Verification::Gone { .. }), "{v:?}");
        assert!(matches!(
            store.head(&set.files[0].object).await,
            Err(PublishError::NotFound { .. })
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_upload_resumes_after_a_cut_and_a_503_burst() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![make_file(
            work.path(),
            "big.qcow2",
            "qcow2",
            3 * 1024 * 1024 + 12_345,
            7,
        )];
        let mut settings = stack.settings();
        settings.gcs_chunk_size = Some(1024 * 1024);
        let target = PublishTarget::resolve(&stack.spec("resume/"), &settings, None).unwrap();
        // three 503s on the session initiation, then a cut inside the second chunk
        stack.control(serde_json::json!({"fail_503": 3})).await;
        stack
            .arm(serde_json::json!({"kind": "cut", "at": 1024 * 1024 + 600_000}))
            .await;
        let set = publish(&target, &files, &meta("1.5.1"), &CancellationToken::new())
            .await
            .unwrap();
        let stats = stack.stats().await;
        assert_eq!(stats["injected_503"], 3, "{stats}");
        assert_eq!(stats["cuts"], 1, "{stats}");
        let head = target
            .store()
            .unwrap()
            .head(&set.files[0].object)
            .await
            .unwrap();
        assert_eq!(head.size, files[0].size);
        assert_eq!(head.crc32c, Some(files[0].crc32c));
        assert_eq!(head.md5, files[0].md5);
        // Chunks after the cut resumed from the server's offset: fewer than a restart would need.
        assert!(stats["chunk_puts"].as_u64().unwrap() <= 8, "{stats}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_wrong_key_is_refused_by_the_token_endpoint_with_a_clear_error() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let wrong = gen_key(stack.dir.path(), "wrong");
        let files = vec![make_file(work.path(), "w.qcow2", "qcow2", 70_000, 3)];
        let settings = stack.settings_with(&wrong.pem);
        let target = PublishTarget::resolve(&stack.spec("wrong/"), &settings, None).unwrap();
        let err = publish(&target, &files, &meta("1.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PublishError::Auth { .. }), "{err:?}");
        assert!(msg.contains("invalid_grant"), "{msg}");
        assert!(msg.contains("Invalid JWT Signature"), "{msg}");
        assert!(!msg.contains(key_body(&wrong.pem)), "{msg}");
        assert_eq!(stack.stat("upload_initiations").await, 0);
        assert!(stack.stat("token_denied").await >= 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_existing_different_object_is_not_overwritten() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let ours = make_file(work.path(), "ours.qcow2", "qcow2", 600_000, 11);
        let theirs = make_file(work.path(), "theirs.bin", "qcow2", 600_000, 12);
        let target =
            PublishTarget::resolve(&stack.spec("clash/"), &stack.settings(), None).unwrap();
        let store = target.store().unwrap();
        // Someone else's object sits exactly where ours would go.
        let name = ObjectLayout::new("clash/", "vyos-test", "2.0", &ours.sha256)
            .unwrap()
            .artifact("qcow2")
            .unwrap();
        let src = UploadSource {
            path: &theirs.path,
            size: theirs.size,
            sha256: &theirs.sha256,
            crc32c: theirs.crc32c,
            md5: theirs.md5,
            content_type: "application/octet-stream",
        };
        store
            .put_file_if_absent(&name, &src, &CancellationToken::new())
            .await
            .unwrap();
        let before = stack.stat("upload_initiations").await;
        let err = publish(&target, &[ours], &meta("2.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PublishError::AlreadyExistsDifferent { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&name), "{err}");
        assert_eq!(
            stack.stat("upload_initiations").await,
            before,
            "no upload attempted"
        );
        let head = store.head(&name).await.unwrap();
        assert_eq!(
            head.crc32c,
            Some(theirs.crc32c),
            "existing object untouched"
        );
        // No manifest was written for the failed publish.
        let manifest = ObjectLayout::new("clash/", "vyos-test", "2.0", &theirs.sha256)
            .unwrap()
            .manifest();
        let other_manifest = name.replace("vyos-test.qcow2", "manifest.json");
        assert!(store.head(&other_manifest).await.is_err());
        drop(manifest);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_server_refuses_data_that_does_not_match_the_declared_checksums() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let f = make_file(work.path(), "c.qcow2", "qcow2", 700_000, 51);
        let target = PublishTarget::resolve(&stack.spec("crc/"), &stack.settings(), None).unwrap();
        let store = target.store().unwrap();
        let src = UploadSource {
            path: &f.path,
            size: f.size,
            sha256: &f.sha256,
            crc32c: f.crc32c ^ 1,
            md5: None,
            content_type: "application/octet-stream",
        };
        let err = store
            .put_file_if_absent("crc/x.qcow2", &src, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Refused { .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("crc32c"), "{err}");
        assert!(matches!(
            store.head("crc/x.qcow2").await,
            Err(PublishError::NotFound { .. })
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_endless_503s_end_in_a_transient_error_after_bounded_retries() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![make_file(work.path(), "t.qcow2", "qcow2", 600_000, 61)];
        let mut settings = stack.settings();
        settings.retry.max_attempts = 3;
        let target = PublishTarget::resolve(&stack.spec("busy/"), &settings, None).unwrap();
        stack.control(serde_json::json!({"fail_503": 1000})).await;
        let err = publish(&target, &files, &meta("1"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(
            stack.stat("injected_503").await,
            3,
            "exactly max_attempts tries"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_token_is_cached_and_refreshed_before_it_expires() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let files = vec![make_file(work.path(), "k.qcow2", "qcow2", 900_000, 71)];
        stack.control(serde_json::json!({"token_ttl": 6})).await;
        let target = PublishTarget::resolve(&stack.spec("ttl/"), &stack.settings(), None).unwrap();
        let cancel = CancellationToken::new();
        // Many requests (heads, session, chunks, manifest), one token (refreshed only after 3 s).
        publish(&target, &files, &meta("1"), &cancel).await.unwrap();
        assert_eq!(stack.stat("token_ok").await, 1);
        // Past the token's life: a fresh one is fetched before use, never a 401.
        tokio::time::sleep(Duration::from_millis(6500)).await;
        publish(&target, &files, &meta("2"), &cancel).await.unwrap();
        assert_eq!(stack.stat("token_ok").await, 2);
        assert_eq!(stack.stat("unauthorized").await, 0);
    })
    .await
    .expect("test timed out");
}
