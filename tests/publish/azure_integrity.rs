//! Azure integrity on azurite behind the recording proxy: every block carries its Content-MD5
//! (azurite checks it), the commit declares the blob MD5 and never overwrites, and a block
//! corrupted on the way is refused by the server with nothing claimed.

use crate::object_stores::{azurite_create_container, start_azurite, AZURITE_ACCOUNT, AZURITE_KEY};
use crate::s3_faults::FaultProxy;
use crate::support::*;

const MIB: usize = 1024 * 1024;

async fn with_azurite<F, Fut>(body: F)
where
    F: FnOnce(PublishTarget, FaultProxy) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(azurite) = start_azurite() else {
        return;
    };
    let port = azurite.port;
    tokio::time::timeout(TEST_TIMEOUT, async {
        wait_for_port(port).await;
        azurite_create_container(
            &format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
            "integrity",
        )
        .await;
        let proxy = FaultProxy::start(port).await;
        let settings = StoreSettings {
            azure_storage_account: Some(AZURITE_ACCOUNT.into()),
            azure_endpoint: Some(format!("{}/{AZURITE_ACCOUNT}", proxy.url)),
            azure_access_key: Some(SecretString::from(AZURITE_KEY)),
            part_size: Some(4 * MIB),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::Azure),
            bucket: Some("integrity".into()),
            prefix: Some("i/".into()),
            ..Default::default()
        };
        let target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        body(target, proxy).await;
    })
    .await
    .expect("test timed out");
}

fn block_puts(stats: &serde_json::Value) -> Vec<serde_json::Value> {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["query"].as_str().unwrap_or("").contains("comp=block&")
                && r["path"].as_str().unwrap_or("").ends_with(".qcow2")
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn azure_blocks_carry_content_md5_and_the_commit_declares_the_blob_md5() {
    with_azurite(|target, proxy| async move {
        let work = tempfile::tempdir().unwrap();
        let file = make_file(work.path(), "a.qcow2", "qcow2", 10 * MIB + 9, 3);
        let set = publish(
            &target,
            std::slice::from_ref(&file),
            &meta("1"),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let stats = proxy.stats().await;
        let blocks = block_puts(&stats);
        assert_eq!(blocks.len(), 3, "{stats}");
        for b in &blocks {
            assert!(
                b["headers"]["content-md5"].is_string(),
                "block without MD5: {b}"
            );
        }
        let commit = stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["query"].as_str().unwrap_or("").contains("comp=blocklist")
                    && r["path"].as_str().unwrap_or("").ends_with(".qcow2")
            })
            .expect("block list commit")
            .clone();
        assert!(
            commit["headers"]["x-ms-blob-content-md5"].is_string(),
            "{commit}"
        );
        assert_eq!(commit["headers"]["if-none-match"], "*", "{commit}");
        use base64::Engine as _;
        let md5 = md5_of(&std::fs::read(&file.path).unwrap());
        assert_eq!(
            set.files[0].remote_checksum,
            format!(
                "md5:{}",
                base64::engine::general_purpose::STANDARD.encode(md5)
            )
        );
    })
    .await
}

fn md5_of(b: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(b).into()
}

#[tokio::test]
async fn azure_block_corrupted_on_the_way_is_refused_by_the_server_and_nothing_claimed() {
    with_azurite(|target, proxy| async move {
        proxy.control(serde_json::json!({"corrupt": 1})).await;
        let work = tempfile::tempdir().unwrap();
        let file = make_file(work.path(), "b.qcow2", "qcow2", 9 * MIB, 4);
        let err = publish(
            &target,
            std::slice::from_ref(&file),
            &meta("1"),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let stats = proxy.stats().await;
        assert_eq!(stats["counters"]["corrupted"], 1, "{stats}");
        assert!(matches!(err, PublishError::Refused { .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("md5"), "{err}");
        let store = target.store().unwrap();
        let layout = ObjectLayout::new("i/", "vyos-test", "1", &file.sha256).unwrap();
        assert!(matches!(
            store.head(&layout.artifact("qcow2").unwrap()).await,
            Err(PublishError::NotFound { .. })
        ));
        assert!(matches!(
            store.head(&layout.manifest()).await,
            Err(PublishError::NotFound { .. })
        ));
    })
    .await
}

#[tokio::test]
async fn azure_503s_and_a_cut_on_blocks_resend_only_those_blocks() {
    with_azurite(|target, proxy| async move {
        proxy
            .control(serde_json::json!({"fail_503": 2, "cut": 1}))
            .await;
        let work = tempfile::tempdir().unwrap();
        let file = make_file(work.path(), "c.qcow2", "qcow2", 10 * MIB + 1, 5);
        let set = publish(
            &target,
            std::slice::from_ref(&file),
            &meta("2"),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let stats = proxy.stats().await;
        assert_eq!(stats["counters"]["injected_503"], 2, "{stats}");
        assert_eq!(stats["counters"]["cuts"], 1, "{stats}");
        let blocks = block_puts(&stats);
        // three blocks plus the two refused ones (the cut one never reached the recorder)
        assert!(blocks.len() <= 5, "{stats}");
        let sent: u64 = blocks.iter().map(|b| b["length"].as_u64().unwrap()).sum();
        assert!(
            sent >= file.size && sent - file.size < file.size,
            "re-sent {}",
            sent - file.size
        );
        use base64::Engine as _;
        let md5 = md5_of(&std::fs::read(&file.path).unwrap());
        assert_eq!(
            set.files[0].remote_checksum,
            format!(
                "md5:{}",
                base64::engine::general_purpose::STANDARD.encode(md5)
            ),
            "the committed blob is the file"
        );
    })
    .await
}
