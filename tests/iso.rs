//! ISO acquisition and artifact normalization against real things: fixture ISOs built with
//! `xorriso`, a loopback HTTP(S) server, the real `qemu-img`, `sha256sum`, `xz`, `zstd`, `gzip`.
//! Every server listens on 127.0.0.1; every test is bounded by a timeout.

#[path = "iso_support/artifact.rs"]
mod artifact;
#[path = "iso_support/fixtures.rs"]
mod fixtures;
#[path = "iso_support/server.rs"]
mod server;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyops::engine::iso::{acquire, read_iso_version, FetchOptions, IsoError, IsoRequest};
use hyops::engine::progress::{Progress, Stage};
use tokio_util::sync::CancellationToken;

use fixtures::{fixtures, sha256_hex, tls_material, VERSION_JSON};
use server::{Route, Server};

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, fut)
        .await
        .expect("test exceeded its time bound")
}

fn fast_opts() -> FetchOptions {
    FetchOptions {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
        ..FetchOptions::default()
    }
}

fn request(url: String, sha256: &str, cache: &Path) -> IsoRequest {
    let mut req = IsoRequest::new(url, sha256, cache);
    req.fetch = fast_opts();
    req
}

/// Records progress messages.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn message(&self, stage: Stage, message: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{}: {message}", stage.as_str()));
    }
}

impl Recorder {
    fn any(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|m| m.contains(needle))
    }
}

/// Names in `<cache>/iso/` other than the lock file.
fn cache_listing(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("iso"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- ISO: fetch and verify

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_fetch_verifies_caches_privately_and_reads_version_json() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"v1\""));
        let cache = tempfile::tempdir().unwrap();
        let progress = Recorder::default();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let got = acquire(&req, &CancellationToken::new(), &progress)
            .await
            .unwrap();

        assert!(!got.from_cache);
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(got.bytes_downloaded, fx.iso.bytes.len() as u64);
        assert_eq!(
            got.path,
            cache.path().join(format!("iso/{}.iso", fx.iso.sha256))
        );
        assert_eq!(std::fs::read(&got.path).unwrap(), *fx.iso.bytes);
        let v = got.version.expect("version.json read");
        let want: serde_json::Value = serde_json::from_str(VERSION_JSON).unwrap();
        assert_eq!(v.version, want["version"].as_str().unwrap());
        assert_eq!(v.flavor.as_deref(), want["flavor"].as_str());
        assert_eq!(v.architecture.as_deref(), Some("amd64"));
        assert_eq!(v.build_uuid.as_deref(), want["build_uuid"].as_str());
        assert_eq!(v.build_git.as_deref(), want["build_git"].as_str());
        assert_eq!(v.release_train.as_deref(), Some("current"));
        assert_eq!(v.built_on.as_deref(), want["built_on"].as_str());
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        assert!(progress.any("downloading"));

        // Restrictive modes; nothing partial left behind.
        assert_eq!(mode(&cache.path().join("iso")), 0o700);
        assert_eq!(mode(&got.path), 0o600);
        assert_eq!(
            cache_listing(cache.path()),
            vec![
                format!("{}.iso", fx.iso.sha256),
                format!("{}.iso.verified", fx.iso.sha256)
            ]
        );
        assert_eq!(srv.gets("/vyos.iso"), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_transfer_resumes_with_range_and_verifies() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"etag-1\""));
        srv.switches().cut_once.store(true, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let progress = Recorder::default();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let got = acquire(&req, &CancellationToken::new(), &progress)
            .await
            .unwrap();

        let size = fx.iso.bytes.len() as u64;
        let log = srv.log();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[0].status, 200);
        assert_eq!(log[1].status, 206, "{log:?}");
        let ranged = log[1].range.as_deref().unwrap();
        assert_ne!(ranged, "bytes=0-");
        assert_eq!(log[1].if_range.as_deref(), Some("\"etag-1\""));
        assert!(srv.bytes_sent() < 2 * size, "sent {}", srv.bytes_sent());
        assert_eq!(srv.bytes_sent(), size);
        assert_eq!(got.bytes_downloaded, size);
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(std::fs::read(&got.path).unwrap(), *fx.iso.bytes);
        assert!(progress.any("resuming at byte"));
        assert_eq!(cache_listing(cache.path()).len(), 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ignoring_range_restarts_from_zero_and_still_verifies() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"etag-1\""));
        srv.switches().cut_once.store(true, Ordering::SeqCst);
        srv.switches().ignore_range.store(true, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let progress = Recorder::default();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let got = acquire(&req, &CancellationToken::new(), &progress)
            .await
            .unwrap();

        let log = srv.log();
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log[1].range.is_some(), "the retry asked for a range");
        assert_eq!(log[1].status, 200, "the server ignored it");
        assert!(progress.any("restarting"));
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(std::fs::read(&got.path).unwrap(), *fx.iso.bytes);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_validator_restarts_from_zero() {
    bounded(async {
        // The kept prefix's ETag no longer matches: If-Range makes the server send everything.
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"old\""));
        srv.switches().cut_once.store(true, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let mut req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        req.fetch.max_attempts = 1;
        let first = acquire(&req, &CancellationToken::new(), &Recorder::default()).await;
        assert!(
            matches!(first, Err(IsoError::Transient { attempts: 1, .. })),
            "{first:?}"
        );
        assert!(cache_listing(cache.path())
            .iter()
            .any(|n| n.ends_with(".part")));

        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"new\""));
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        let log = srv.log();
        assert_eq!(log[1].if_range.as_deref(), Some("\"old\""));
        assert_eq!(log[1].status, 200);
        assert_eq!(got.sha256, fx.iso.sha256);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_fail_naming_both_sums_and_leave_no_file() {
    bounded(async {
        let fx = fixtures();
        let mut bad = (*fx.iso.bytes).clone();
        bad[40_000] ^= 0xFF;
        let bad_sha = sha256_hex(&bad);
        let srv = Server::http().await;
        srv.body("/vyos.iso", Arc::new(bad), Some("\"x\""));
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let err = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        match &err {
            IsoError::Mismatch {
                expected, actual, ..
            } => {
                assert_eq!(expected, &fx.iso.sha256);
                assert_eq!(actual, &bad_sha);
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&fx.iso.sha256) && text.contains(&bad_sha),
            "{text}"
        );
        assert!(
            cache_listing(cache.path()).is_empty(),
            "{:?}",
            cache_listing(cache.path())
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquires_download_once() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"v\""));
        // Slow the body so the second acquire surely meets the first one's lock.
        srv.switches().body_delay_ms.store(400, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let cancel = CancellationToken::new();
        let (p1, p2) = (Recorder::default(), Recorder::default());
        let (a, b) = tokio::join!(acquire(&req, &cancel, &p1), acquire(&req, &cancel, &p2));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(srv.gets("/vyos.iso"), 1);
        assert_eq!(a.path, b.path);
        assert_eq!(
            [a.from_cache, b.from_cache].iter().filter(|c| **c).count(),
            1,
            "exactly one downloaded"
        );
        assert_eq!(
            a.bytes_downloaded + b.bytes_downloaded,
            fx.iso.bytes.len() as u64
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_cache_makes_no_requests_and_trusts_its_record() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), Some("\"v\""));
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let cancel = CancellationToken::new();
        let cold = acquire(&req, &cancel, &Recorder::default()).await.unwrap();
        let warm = acquire(&req, &cancel, &Recorder::default()).await.unwrap();
        assert!(warm.from_cache);
        assert_eq!(warm.bytes_downloaded, 0);
        assert_eq!(warm.path, cold.path);
        assert_eq!(warm.version, cold.version);
        assert_eq!(srv.log().len(), 1, "the warm acquire made no request");

        // Corrupt the cached file in place while keeping size, inode and mtime: a warm acquire
        // trusts the record (no re-hash), reverify notices and downloads again.
        corrupt_keeping_identity(&cold.path);
        let trusted = acquire(&req, &cancel, &Recorder::default()).await.unwrap();
        assert!(trusted.from_cache);
        assert_eq!(srv.log().len(), 1);

        let mut again = req.clone();
        again.reverify = true;
        let fixed = acquire(&again, &cancel, &Recorder::default())
            .await
            .unwrap();
        assert!(!fixed.from_cache);
        assert!(
            fixed
                .warnings
                .iter()
                .any(|w| w.contains("removed and downloading again")),
            "{:?}",
            fixed.warnings
        );
        assert_eq!(srv.log().len(), 2);
        assert_eq!(std::fs::read(&fixed.path).unwrap(), *fx.iso.bytes);

        // Reverify of an intact file re-hashes and keeps it.
        let progress = Recorder::default();
        let kept = acquire(&again, &cancel, &progress).await.unwrap();
        assert!(kept.from_cache);
        assert!(progress.any("re-hashing"));
        assert_eq!(srv.log().len(), 2);
    })
    .await
}

fn corrupt_keeping_identity(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let meta = std::fs::metadata(path).unwrap();
    let mtime = meta.modified().unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(100_000)).unwrap();
    f.write_all(b"CORRUPT").unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let after = std::fs::metadata(path).unwrap();
    assert_eq!(after.modified().unwrap(), mtime);
    assert_eq!(after.len(), meta.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_is_preferred_over_source() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/mirror/vyos.iso", fx.iso.bytes.clone(), None);
        srv.body("/upstream/vyos.iso", fx.iso.bytes.clone(), None);
        let cache = tempfile::tempdir().unwrap();
        let mut req = request(srv.url("/upstream/vyos.iso"), &fx.iso.sha256, cache.path());
        req.mirror_url = Some(srv.url("/mirror/vyos.iso"));
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(srv.gets("/mirror/vyos.iso"), 1);
        assert_eq!(srv.gets("/upstream/vyos.iso"), 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_mirror_falls_back_to_source_with_a_warning() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/upstream/vyos.iso", fx.iso.bytes.clone(), None);
        let cache = tempfile::tempdir().unwrap();
        let mut req = request(srv.url("/upstream/vyos.iso"), &fx.iso.sha256, cache.path());
        req.mirror_url = Some(srv.url("/mirror/missing.iso"));
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert_eq!(srv.gets("/mirror/missing.iso"), 1, "404 is not retried");
        assert_eq!(srv.gets("/upstream/vyos.iso"), 1);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.contains("mirror failed") && w.contains("404")),
            "{:?}",
            got.warnings
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_with_a_bound() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), None);
        srv.switches().fail_next.store(2, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert_eq!(got.sha256, fx.iso.sha256);
        let statuses: Vec<u16> = srv.log().iter().map(|l| l.status).collect();
        assert_eq!(statuses, vec![503, 503, 200]);

        let cache2 = tempfile::tempdir().unwrap();
        srv.switches().fail_next.store(1000, Ordering::SeqCst);
        let mut req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache2.path());
        req.fetch.max_attempts = 3;
        let err = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, IsoError::Transient { attempts: 3, reason, .. } if reason.contains("503")),
            "{err:?}"
        );
        assert_eq!(srv.log().len(), 3 + 3);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_to_http_is_refused_and_redacted() {
    bounded(async {
        let fx = fixtures();
        let (tls, ca_pem) = tls_material();
        let plain = Server::http().await;
        plain.body("/vyos.iso", fx.iso.bytes.clone(), None);
        let secure = Server::https(tls).await;
        let target = format!("http://user:hunter2@{}/vyos.iso?token=s3cret", plain.addr);
        secure.route("/vyos.iso", Route::Redirect(target));
        let cache = tempfile::tempdir().unwrap();
        let mut req = request(secure.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        req.fetch.extra_root_certs_pem = vec![ca_pem];
        let err = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        assert!(matches!(err, IsoError::Redirect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("downgrade"), "{text}");
        assert!(
            !text.contains("s3cret") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(secure.gets("/vyos.iso"), 1);
        assert_eq!(plain.log().len(), 0, "the http URL was never contacted");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_relative_redirects_are_followed_up_to_the_limit() {
    bounded(async {
        let fx = fixtures();
        let (tls, ca_pem) = tls_material();
        let secure = Server::https(tls).await;
        secure.route(
            "/releases/latest.iso",
            Route::Redirect("/assets/vyos.iso?sig=abc".into()),
        );
        secure.body(
            "/assets/vyos.iso?sig=abc",
            fx.iso.bytes.clone(),
            Some("\"a\""),
        );
        let cache = tempfile::tempdir().unwrap();
        let mut req = request(
            secure.url("/releases/latest.iso"),
            &fx.iso.sha256,
            cache.path(),
        );
        req.fetch.extra_root_certs_pem = vec![ca_pem];
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(secure.gets("/assets/vyos.iso?sig=abc"), 1);

        // A redirect loop stops at the hop limit.
        secure.route("/loop", Route::Redirect("/loop".into()));
        let mut looping = request(
            secure.url("/loop"),
            &fx.iso.sha256,
            tempfile::tempdir().unwrap().path(),
        );
        looping.fetch = req.fetch.clone();
        looping.fetch.max_redirects = 3;
        let err = acquire(&looping, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, IsoError::Redirect { reason, .. } if reason.contains("more than 3")),
            "{err:?}"
        );
        assert_eq!(secure.gets("/loop"), 4);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_url_source_is_copied_and_verified() {
    bounded(async {
        let fx = fixtures();
        let cache = tempfile::tempdir().unwrap();
        let url = url::Url::from_file_path(&fx.iso.path).unwrap().to_string();
        let req = request(url, &fx.iso.sha256.to_uppercase(), cache.path());
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert!(!got.from_cache);
        assert_eq!(got.sha256, fx.iso.sha256);
        assert_eq!(got.bytes_downloaded, fx.iso.bytes.len() as u64);
        assert!(got.path.starts_with(cache.path()));
        assert_eq!(got.version.unwrap().architecture.as_deref(), Some("amd64"));

        let missing = request(
            "file:///nonexistent/hyops/vyos.iso".into(),
            &fx.iso.sha256,
            tempfile::tempdir().unwrap().path(),
        );
        let err = acquire(&missing, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        assert!(matches!(err, IsoError::Source { .. }), "{err:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_version_json_is_a_warning_not_a_failure() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/plain.iso", fx.no_version.bytes.clone(), None);
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/plain.iso"), &fx.no_version.sha256, cache.path());
        let got = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap();
        assert_eq!(got.version, None);
        assert!(
            got.warnings.iter().any(|w| w.contains("no /version.json")),
            "{:?}",
            got.warnings
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_download() {
    bounded(async {
        let fx = fixtures();
        let srv = Server::http().await;
        srv.body("/vyos.iso", fx.iso.bytes.clone(), None);
        srv.switches().body_delay_ms.store(5_000, Ordering::SeqCst);
        let cache = tempfile::tempdir().unwrap();
        let req = request(srv.url("/vyos.iso"), &fx.iso.sha256, cache.path());
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let err = acquire(&req, &cancel, &Recorder::default())
            .await
            .unwrap_err();
        assert!(matches!(err, IsoError::Cancelled), "{err:?}");
        assert!(!cache_listing(cache.path())
            .iter()
            .any(|n| n.ends_with(".iso")));
    })
    .await
}

#[test]
fn version_json_is_found_through_plain_joliet_and_rock_ridge_names() {
    let fx = fixtures();
    for (label, path, expect) in &fx.variants {
        let got = read_iso_version(path);
        if *expect {
            let v = got.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(v.version, "1.5-rolling-202411250007", "{label}");
        } else {
            let e = got.expect_err(label);
            assert!(e.contains("no /version.json"), "{label}: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused_before_any_io() {
    let cache = tempfile::tempdir().unwrap();
    for (url, sha) in [
        ("ftp://example.com/a.iso", "ab".repeat(32)),
        ("https://example.com/a.iso", "xyz".to_string()),
    ] {
        let req = request(url.into(), &sha, cache.path());
        let err = acquire(&req, &CancellationToken::new(), &Recorder::default())
            .await
            .unwrap_err();
        assert!(matches!(err, IsoError::Invalid(_)), "{err:?}");
    }
    assert!(!cache.path().join("iso").exists());
}
