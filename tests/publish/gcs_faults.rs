//! GCS upload faults that reach the request they name, injected by the stack's own resumable
//! endpoint (test-fixtures/gcs/resumable.py: GCS-faithful status queries, md5/crc32c and
//! precondition checks at finalize, counters of requests and body bytes received).
//!
//! Each test checks: the stored bytes equal the file (or the failure is clear and nothing is
//! claimed), the resume re-sent less than the whole object, and the request counts stay within
//! the retry bounds. Counters cover the image and the manifest; the manifest (one initiation, one
//! data request, its length in bytes) is subtracted where it was written.

use crate::support::*;

const MIB: usize = 1024 * 1024;

struct Run {
    result: Result<hyops::engine::publish::PublishedSet, PublishError>,
    /// counters for the image alone (manifest subtracted when one was written)
    initiations: u64,
    data_requests: u64,
    status_queries: u64,
    data_bytes: u64,
    stats: serde_json::Value,
    local: Vec<u8>,
    stored: Option<Vec<u8>>,
    manifest_stored: bool,
}

impl Run {
    /// Published, and the object holds exactly the file.
    fn assert_stored(&self) {
        assert!(self.result.is_ok(), "{:?}", self.result);
        assert!(
            self.stored.as_deref() == Some(&self.local[..]),
            "stored bytes differ from the file"
        );
        assert!(self.manifest_stored);
    }

    /// As [`Run::assert_stored`], and after the fault at `at` less than the whole object was
    /// sent again.
    fn assert_resumed(&self, at: u64) {
        self.assert_stored();
        let size = self.local.len() as u64;
        assert!(
            self.data_bytes >= size,
            "the server got {} of {size} bytes",
            self.data_bytes
        );
        let resent = self.data_bytes - at;
        assert!(
            resent < size,
            "after the fault {resent} bytes were sent: not a resume ({})",
            self.stats
        );
    }

    /// Failed clearly and claimed nothing: no manifest.
    fn assert_nothing_claimed(&self) {
        assert!(self.result.is_err());
        assert!(!self.manifest_stored, "a manifest was written");
    }
}

async fn run(
    stack: &GcsStack,
    prefix: &str,
    len: usize,
    fault: Option<serde_json::Value>,
    tweak: impl FnOnce(&mut StoreSettings),
) -> Run {
    let work = tempfile::tempdir().unwrap();
    let file = make_file(work.path(), "f.qcow2", "qcow2", len, len as u64);
    let local = std::fs::read(&file.path).unwrap();
    let mut settings = stack.settings();
    tweak(&mut settings);
    let target = PublishTarget::resolve(&stack.spec(prefix), &settings, None).unwrap();
    stack.control(serde_json::json!({"reset": true})).await;
    if let Some(f) = fault {
        stack.arm(f).await;
    }
    let result = publish(
        &target,
        std::slice::from_ref(&file),
        &meta("9.9"),
        &CancellationToken::new(),
    )
    .await;
    let stats = stack.stats().await;
    stack.arm(serde_json::Value::Null).await;
    let layout = ObjectLayout::new(prefix, "vyos-test", "9.9", &file.sha256).unwrap();
    let object = layout.artifact("qcow2").unwrap();
    let stored = stack.stored(&object).await;
    let manifest = stack.stored(&layout.manifest()).await;
    let n = |k: &str| stats[k].as_u64().unwrap_or(0);
    let (mi, mb) = match &manifest {
        Some(m) => (1, m.len() as u64),
        None => (0, 0),
    };
    Run {
        result,
        initiations: n("upload_initiations") - mi,
        data_requests: n("data_requests") - mi,
        status_queries: n("status_queries"),
        data_bytes: n("data_bytes") - mb,
        stats,
        local,
        stored,
        manifest_stored: manifest.is_some(),
    }
}

#[tokio::test]
async fn gcs_successful_publish_is_one_data_request_per_object() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let r = run(&stack, "one/", 5 * MIB + 12_345, None, |_| {}).await;
        r.assert_stored();
        assert_eq!(r.initiations, 1, "{}", r.stats);
        assert_eq!(r.data_requests, 1, "{}", r.stats);
        assert_eq!(r.status_queries, 0, "{}", r.stats);
        assert_eq!(r.data_bytes, r.local.len() as u64, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_503_on_the_data_request_mid_object_resumes_from_the_committed_offset() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let at = 2 * MIB as u64 + 100_000;
        let fault = serde_json::json!({"kind": "503", "at": at});
        let r = run(&stack, "f503/", 5 * MIB + 7, Some(fault), |_| {}).await;
        r.assert_resumed(at);
        assert_eq!(r.stats["injected_503"], 1, "{}", r.stats);
        assert_eq!(r.initiations, 1);
        assert_eq!(r.data_requests, 2, "{}", r.stats);
        assert_eq!(r.status_queries, 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_connection_cut_mid_body_resumes_from_the_committed_offset() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let at = 3 * MIB as u64 + 4_321;
        let fault = serde_json::json!({"kind": "cut", "at": at});
        let r = run(&stack, "cut/", 5 * MIB + 99, Some(fault), |_| {}).await;
        r.assert_resumed(at);
        assert_eq!(r.stats["cuts"], 1, "{}", r.stats);
        assert_eq!(r.data_requests, 2, "{}", r.stats);
        assert_eq!(r.status_queries, 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_cut_before_anything_is_committed_restarts_at_byte_zero() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Under one 256 KiB unit: the status query answers 308 with no Range (nothing kept).
        let at = 100_000;
        let fault = serde_json::json!({"kind": "cut", "at": at});
        let r = run(&stack, "cut0/", MIB + 3, Some(fault), |_| {}).await;
        r.assert_stored();
        assert_eq!(r.data_bytes, r.local.len() as u64 + at, "{}", r.stats);
        assert_eq!(r.status_queries, 1, "{}", r.stats);
        assert_eq!(r.data_requests, 2, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_three_308s_without_progress_are_retried_with_backoff_then_resume() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Each stuck request carries the rest again (the server reads it and keeps nothing), so
        // the fault sits late in the object: 4 x the rest is still less than the whole.
        let at = 3 * MIB as u64 + 3 * MIB as u64 / 4 + 1;
        let fault = serde_json::json!({"kind": "no_progress", "at": at, "count": 3});
        let r = run(&stack, "stuck3/", 4 * MIB + 5, Some(fault), |_| {}).await;
        r.assert_resumed(at);
        assert_eq!(r.stats["no_progress_308"], 3, "{}", r.stats);
        // the partial one, three without progress, the rest
        assert_eq!(r.data_requests, 5, "{}", r.stats);
        assert_eq!(r.status_queries, 0, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_endless_308s_without_progress_fail_after_max_attempts_and_claim_nothing() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let at = 3 * MIB + 3 * MIB / 4;
        let fault = serde_json::json!({"kind": "no_progress", "at": at, "count": 1000});
        let r = run(&stack, "stuck/", 4 * MIB, Some(fault), |s| {
            s.retry.max_attempts = 4
        })
        .await;
        r.assert_nothing_claimed();
        let err = r.result.as_ref().unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("without progress"), "{err}");
        assert_eq!(r.stats["no_progress_308"], 4, "{}", r.stats);
        assert_eq!(r.data_requests, 5, "{}", r.stats);
        assert!(r.stored.is_none(), "no object was finalized");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_412_at_finalize_with_identical_bytes_adopts_the_object() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fault = serde_json::json!({"kind": "412", "same": true});
        let r = run(&stack, "race-same/", 2 * MIB + 1, Some(fault), |_| {}).await;
        r.assert_stored();
        assert_eq!(r.stats["finalize_412"], 1, "{}", r.stats);
        assert_eq!(r.data_requests, 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_412_at_finalize_with_different_bytes_fails_clearly_and_keeps_theirs() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fault = serde_json::json!({"kind": "412", "same": false});
        let r = run(&stack, "race-diff/", 2 * MIB + 1, Some(fault), |_| {}).await;
        r.assert_nothing_claimed();
        let err = r.result.as_ref().unwrap_err();
        assert!(
            matches!(err, PublishError::AlreadyExistsDifferent { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("someone else published"), "{err}");
        assert_eq!(r.stats["finalize_412"], 1, "{}", r.stats);
        assert_eq!(r.data_requests, 1, "no retry of a lost race");
        let theirs = r.stored.as_deref().expect("their object stays");
        assert_eq!(theirs.len(), r.local.len());
        assert_ne!(theirs, &r.local[..], "their bytes were not overwritten");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_token_endpoint_500_burst_during_a_resume_is_ridden_out() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // The cut also revokes every token: the resume needs a new one and meets three 500s.
        let at = 2 * MIB as u64 + 17;
        let fault = serde_json::json!({"kind": "cut", "at": at, "then_token_500": 3});
        let r = run(&stack, "tok500/", 4 * MIB + 1, Some(fault), |_| {}).await;
        r.assert_resumed(at);
        assert_eq!(r.stats["token_500"], 3, "{}", r.stats);
        assert_eq!(r.stats["token_ok"], 2, "{}", r.stats);
        assert_eq!(r.data_requests, 2, "{}", r.stats);
        // the one 401 after the revocation is answered by a token refresh
        assert_eq!(r.stats["unauthorized"], 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_stalled_body_is_abandoned_after_the_stall_timeout_and_resumed() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Larger than loopback socket buffers, so the stall really stops the sender.
        let at = 2 * MIB as u64 + 5;
        let fault = serde_json::json!({"kind": "stall", "at": at, "secs": 6});
        let r = run(&stack, "stall/", 32 * MIB + 3, Some(fault), |s| {
            s.upload_stall_timeout = Some(Duration::from_secs(1))
        })
        .await;
        r.assert_resumed(at);
        assert_eq!(r.stats["stalls"], 1, "{}", r.stats);
        assert_eq!(r.data_requests, 2, "{}", r.stats);
        assert!(r.status_queries >= 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_session_location_on_another_host_is_refused_without_sending_the_token() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Same server, other host name: a client that followed it would show up in the counters.
        let elsewhere = format!("http://localhost:{}", stack.port);
        let fault = serde_json::json!({"kind": "location", "location": elsewhere});
        let r = run(&stack, "loc/", MIB, Some(fault), |_| {}).await;
        r.assert_nothing_claimed();
        let err = r.result.as_ref().unwrap_err();
        assert!(matches!(err, PublishError::Refused { .. }), "{err:?}");
        assert!(err.to_string().contains("Location"), "{err}");
        assert_eq!(
            r.stats["requests_PUT"].as_u64().unwrap_or(0),
            0,
            "{}",
            r.stats
        );
        assert!(r.stored.is_none());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_explicit_chunks_still_resume_after_a_cut() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let at = MIB as u64 + MIB as u64 / 2;
        let fault = serde_json::json!({"kind": "cut", "at": at});
        let r = run(&stack, "chunks/", 3 * MIB + 12_345, Some(fault), |s| {
            s.gcs_chunk_size = Some(MIB as u64)
        })
        .await;
        r.assert_resumed(at);
        // 0-1 MiB, 1-2 MiB (cut at 1.5 MiB, all of it kept), 1.5-2.5 MiB, 2.5 MiB-end
        assert_eq!(r.data_requests, 4, "{}", r.stats);
        assert_eq!(r.status_queries, 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_huge_token_lifetime_is_clamped_not_overflowed() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        stack
            .control(serde_json::json!({"token_ttl": 1_000_000_000_000_000u64}))
            .await;
        let r = run(&stack, "ttl/", 300_000, None, |_| {}).await;
        r.assert_stored();
        assert_eq!(r.stats["token_ok"], 1, "{}", r.stats);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcs_publish_chunk_size_mib_sends_explicit_chunks_and_is_range_checked() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut spec = stack.spec("mib/");
        spec.chunk_size_mib = Some(0);
        let err = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap_err();
        assert!(err.to_string().contains("chunk_size_mib"), "{err}");
        spec.chunk_size_mib = Some(1);
        let target = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap();
        let work = tempfile::tempdir().unwrap();
        let file = make_file(work.path(), "m.qcow2", "qcow2", 3 * MIB + 5, 5);
        stack.control(serde_json::json!({"reset": true})).await;
        publish(
            &target,
            std::slice::from_ref(&file),
            &meta("1"),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        // four 1 MiB-or-less requests for the image, one for the manifest
        assert_eq!(stack.stat("data_requests").await, 5);
        assert_eq!(stack.stat("status_queries").await, 0);
    })
    .await
    .expect("test timed out");
}
