//! ISO acquisition: fetch a pinned VyOS ISO once, verify its sha256 in the same pass, cache it by
//! digest and read its `/version.json`.
//!
//! [`acquire`] tries the mirror first (when set), then the source URL; http, https and `file://` are
//! accepted. Cache layout under `<cache_dir>/iso/` (directory 0700, files 0600): `<sha>.iso` (only
//! ever created by an atomic rename), `<sha>.iso.verified` (the verified sha256 with the file's
//! size, mtime and inode), `<sha>.iso.part` + `.part.json` (an interrupted download and its
//! validator), `<sha>.lock`. A warm cache costs no network I/O and no re-hash while the verified
//! record matches the file; `reverify` forces a full re-hash. Concurrent acquires of one ISO, in one
//! process or many, download it once: the loser of the per-sha256 `flock` waits, then finds the
//! verified file. A mismatching download is deleted and reported with both digests. Knows no
//! builder and nothing about Terraform.
//!
//! Costly caveats: an interrupted or cancelled download leaves `<sha>.iso.part` on purpose so the
//! next acquire resumes it (at most one per ISO; removed on completion or mismatch). Lock files are
//! never deleted (that would race with waiters). URLs are redacted ([`redact_url`]) in every log
//! line and error.

mod cache;
mod fetch;
mod local;
mod part;
mod redact;
mod version;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use url::Url;

pub use cache::{cached_isos, in_use_lock_path, remove_cached, CachedIso};
pub use fetch::FetchOptions;
pub use redact::{provenance_url, redact, redact_url, url_carries_secrets};
pub use version::{read_iso_version, VyosVersion};

use crate::engine::hash::{self, HashError};
use crate::engine::progress::{Progress, Stage};
use cache::{CacheState, Entry, LockError};

/// Environment variable overriding the default cache directory.
pub const CACHE_DIR_ENV: &str = "HYOPS_VYOS_ISO_CACHE_DIR";

/// What to acquire. `Debug` redacts the URLs.
#[derive(Clone)]
pub struct IsoRequest {
    /// `source_iso_url`: provenance, and the download URL when no mirror is set (http, https, file).
    pub source_url: String,
    /// `source_iso_mirror_url`: downloaded from first when set.
    pub mirror_url: Option<String>,
    /// `source_iso_sha256`: 64 hex digits (either case).
    pub sha256: String,
    /// The cache root; ISOs live in `<cache_dir>/iso/`.
    pub cache_dir: PathBuf,
    /// Re-hash a cached ISO even when its verified record matches.
    pub reverify: bool,
    /// Network behaviour (retries, timeouts, redirects, extra roots).
    pub fetch: FetchOptions,
}

impl std::fmt::Debug for IsoRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsoRequest")
            .field("source_url", &redact_url(&self.source_url))
            .field("mirror_url", &self.mirror_url.as_deref().map(redact_url))
            .field("sha256", &self.sha256)
            .field("cache_dir", &self.cache_dir)
            .field("reverify", &self.reverify)
            .field("fetch", &self.fetch)
            .finish()
    }
}

impl IsoRequest {
    /// A request with no mirror, no forced re-verification and default network options.
    pub fn new(
        source_url: impl Into<String>,
        sha256: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> IsoRequest {
        IsoRequest {
            source_url: source_url.into(),
            mirror_url: None,
            sha256: sha256.into(),
            cache_dir: cache_dir.into(),
            reverify: false,
            fetch: FetchOptions::default(),
        }
    }
}

/// A verified ISO in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredIso {
    /// `<cache_dir>/iso/<sha256>.iso`
    pub path: PathBuf,
    /// the verified sha256 (lowercase hex)
    pub sha256: String,
    /// body bytes transferred by this call (0 on a cache hit)
    pub bytes_downloaded: u64,
    /// true when no download happened
    pub from_cache: bool,
    /// the ISO's `/version.json`, when readable
    pub version: Option<VyosVersion>,
    /// things the caller should surface (unreadable `version.json`, a failed mirror, …)
    pub warnings: Vec<String>,
}

/// Why an ISO could not be acquired. URLs are redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IsoError {
    /// The request itself is wrong (sha256 format, URL syntax or scheme).
    #[error("invalid ISO request: {0}")]
    Invalid(String),
    /// The cache directory or its files could not be used.
    #[error("ISO cache: {0}")]
    Cache(String),
    /// The server answered with a non-retryable status.
    #[error("{url}: HTTP {status}")]
    Http {
        /// redacted URL
        url: String,
        /// status code
        status: u16,
    },
    /// Transient failures persisted through every attempt.
    #[error("{url}: gave up after {attempts} attempts: {reason}")]
    Transient {
        /// redacted URL
        url: String,
        /// attempts made
        attempts: u32,
        /// the last failure
        reason: String,
    },
    /// A redirect was refused (https downgrade, too many hops, bad Location).
    #[error("{url}: redirect refused: {reason}")]
    Redirect {
        /// redacted URL
        url: String,
        /// why
        reason: String,
    },
    /// The source could not be read (e.g. a missing `file://` path).
    #[error("{url}: {reason}")]
    Source {
        /// redacted URL
        url: String,
        /// why
        reason: String,
    },
    /// The downloaded bytes do not hash to the pinned sha256; the file was deleted.
    #[error("sha256 mismatch for {url}: expected {expected}, got {actual}")]
    Mismatch {
        /// redacted URL
        url: String,
        /// the pinned digest
        expected: String,
        /// what the bytes hash to
        actual: String,
    },
    /// Both the mirror and the source failed.
    #[error("mirror failed: {mirror}; source failed: {upstream}")]
    AllSourcesFailed {
        /// the mirror's failure
        mirror: Box<IsoError>,
        /// the source URL's failure
        upstream: Box<IsoError>,
    },
    /// The cancellation token fired; a partial download is kept for resumption.
    #[error("ISO acquisition cancelled")]
    Cancelled,
}

/// The default cache root: `$HYOPS_VYOS_ISO_CACHE_DIR`, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/hybridops/vyos`. `None` when none of these is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    cache_dir_from(|name| std::env::var_os(name).map(PathBuf::from))
}

fn cache_dir_from(env: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    let set = |name| env(name).filter(|p: &PathBuf| !p.as_os_str().is_empty());
    if let Some(dir) = set(CACHE_DIR_ENV) {
        return Some(dir);
    }
    let base = set("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| set("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("hybridops").join("vyos"))
}

/// A parsed download location.
#[derive(Debug, Clone)]
enum Source {
    Http(Url),
    File(PathBuf),
}

impl Source {
    fn parse(raw: &str) -> Result<Source, IsoError> {
        let url =
            Url::parse(raw).map_err(|e| IsoError::Invalid(format!("{}: {e}", redact_url(raw))))?;
        match url.scheme() {
            "http" | "https" => Ok(Source::Http(url)),
            "file" => url
                .to_file_path()
                .map(Source::File)
                .map_err(|()| IsoError::Invalid(format!("{}: not a local path", redact(&url)))),
            other => Err(IsoError::Invalid(format!(
                "{}: unsupported scheme {other:?} (http, https or file)",
                redact(&url)
            ))),
        }
    }

    fn shown(&self) -> String {
        match self {
            Source::Http(url) => redact(url),
            Source::File(path) => format!("file://{}", path.display()),
        }
    }
}

/// Fetches (or finds in the cache) the ISO pinned by `req.sha256`, verifies it and reads its
/// version. See the module docs for the cache and retry rules.
pub async fn acquire(
    req: &IsoRequest,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<AcquiredIso, IsoError> {
    let sha256 = normalize_sha256(&req.sha256)?;
    let mut sources = Vec::with_capacity(2);
    if let Some(mirror) = req.mirror_url.as_deref().filter(|m| !m.trim().is_empty()) {
        sources.push(Source::parse(mirror)?);
    }
    sources.push(Source::parse(&req.source_url)?);
    let entry = Entry::new(&req.cache_dir, &sha256);
    cache::prepare_dirs(&req.cache_dir, &entry).map_err(IsoError::Cache)?;
    let mut warnings = Vec::new();

    if !req.reverify && cache::inspect(&entry, &sha256) == CacheState::Verified {
        tracing::debug!(sha256, "ISO cache hit");
        progress.message(Stage::Fetch, "ISO found in cache (verified)");
        return finish(&entry, sha256, 0, true, warnings).await;
    }

    let _lock = cache::lock(&entry, cancel).await.map_err(|e| match e {
        LockError::Cancelled => IsoError::Cancelled,
        LockError::Io(e) => IsoError::Cache(format!("cannot lock {}: {e}", entry.lock.display())),
    })?;

    match cache::inspect(&entry, &sha256) {
        CacheState::Verified if !req.reverify => {
            progress.message(
                Stage::Fetch,
                "ISO found in cache (verified by another acquire)",
            );
            return finish(&entry, sha256, 0, true, warnings).await;
        }
        CacheState::Absent => {}
        CacheState::Verified | CacheState::Unverified => {
            progress.message(Stage::Fetch, "re-hashing the cached ISO");
            let actual = rehash(&entry.iso, cancel, progress).await?;
            if actual == sha256 {
                cache::record_verified(&entry, &sha256).map_err(IsoError::Cache)?;
                return finish(&entry, sha256, 0, true, warnings).await;
            }
            let note = format!(
                "cached ISO {} hashed to {actual}, not {sha256}; removed and downloading again",
                entry.iso.display()
            );
            tracing::warn!("{note}");
            warnings.push(note);
            cache::evict(&entry);
        }
    }

    let fetcher = fetch::Fetcher::new(&req.fetch)?;
    let mut ctx = fetch::Ctx {
        cancel,
        progress,
        downloaded: 0,
    };
    let mut mirror_error = None;
    let last = sources.len() - 1;
    for (index, source) in sources.iter().enumerate() {
        let is_mirror = index < last;
        match download_one(&fetcher, source, &entry, &sha256, &mut ctx).await {
            Ok(()) => {
                return finish(&entry, sha256, ctx.downloaded, false, warnings).await;
            }
            Err(IsoError::Cancelled) => return Err(IsoError::Cancelled),
            Err(e) if is_mirror => {
                let note = format!("mirror failed, falling back to the source URL: {e}");
                tracing::warn!("{note}");
                progress.message(Stage::Fetch, &note);
                warnings.push(note);
                mirror_error = Some(e);
            }
            Err(e) => {
                return Err(match mirror_error {
                    Some(mirror) => IsoError::AllSourcesFailed {
                        mirror: Box::new(mirror),
                        upstream: Box::new(e),
                    },
                    None => e,
                })
            }
        }
    }
    Err(IsoError::Invalid("no source URL".into()))
}

/// Downloads one source into the part file, verifies and commits it.
async fn download_one(
    fetcher: &fetch::Fetcher,
    source: &Source,
    entry: &Entry,
    sha256: &str,
    ctx: &mut fetch::Ctx<'_>,
) -> Result<(), IsoError> {
    let shown = source.shown();
    tracing::info!(url = %shown, "downloading ISO");
    ctx.progress
        .message(Stage::Fetch, &format!("downloading {shown}"));
    let digests = match source {
        Source::Http(url) => fetcher.fetch_http(url, entry, ctx).await?,
        Source::File(path) => local::fetch_file(path, entry, ctx).await?,
    };
    if digests.sha256 != sha256 {
        part::discard_part(entry);
        return Err(IsoError::Mismatch {
            url: shown,
            expected: sha256.to_string(),
            actual: digests.sha256,
        });
    }
    part::commit_part(entry)?;
    cache::record_verified(entry, sha256).map_err(IsoError::Cache)?;
    tracing::info!(sha256, bytes = digests.size, "ISO verified");
    Ok(())
}

/// Full re-hash of a cached file.
async fn rehash(
    path: &Path,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<String, IsoError> {
    let counter = Arc::new(AtomicU64::new(0));
    let total = std::fs::metadata(path).ok().map(|m| m.len());
    let job = {
        let (path, cancel, counter) = (path.to_path_buf(), cancel.clone(), counter.clone());
        move || hash::hash_file_counted(&path, false, &cancel, &counter)
    };
    match local::run_with_progress(job, &counter, total, progress).await {
        Ok(Ok(digests)) => Ok(digests.sha256),
        Ok(Err(HashError::Cancelled)) => Err(IsoError::Cancelled),
        Ok(Err(e)) => Err(IsoError::Cache(e.to_string())),
        Err(e) => Err(IsoError::Cache(format!("hash thread failed: {e}"))),
    }
}

/// Reads the version (a warning when unreadable) and builds the result.
async fn finish(
    entry: &Entry,
    sha256: String,
    bytes_downloaded: u64,
    from_cache: bool,
    mut warnings: Vec<String>,
) -> Result<AcquiredIso, IsoError> {
    let path = entry.iso.clone();
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || read_iso_version(&path)).await
    };
    let version = match read {
        Ok(Ok(v)) => Some(v),
        Ok(Err(reason)) => {
            warnings.push(format!(
                "cannot read the VyOS version from the ISO ({reason}); set artifact_version"
            ));
            None
        }
        Err(e) => {
            warnings.push(format!("version reader failed: {e}"));
            None
        }
    };
    Ok(AcquiredIso {
        path,
        sha256,
        bytes_downloaded,
        from_cache,
        version,
        warnings,
    })
}

/// Lowercase 64-hex, or an error saying what is wrong.
fn normalize_sha256(raw: &str) -> Result<String, IsoError> {
    let s = raw.trim().to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(IsoError::Invalid(format!(
            "source_iso_sha256 must be 64 hex digits, got {} characters",
            raw.trim().len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cache_dir_table() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars, Option<&str>); 5] = [
            (&[(CACHE_DIR_ENV, "/c"), ("HOME", "/h")], Some("/c")),
            (
                &[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")],
                Some("/x/hybridops/vyos"),
            ),
            (
                &[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")],
                Some("/h/.cache/hybridops/vyos"),
            ),
            (
                &[(CACHE_DIR_ENV, ""), ("HOME", "/h")],
                Some("/h/.cache/hybridops/vyos"),
            ),
            (&[], None),
        ];
        for (vars, want) in cases {
            let got = cache_dir_from(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| PathBuf::from(v))
            });
            assert_eq!(got, want.map(PathBuf::from), "{vars:?}");
        }
    }

    #[test]
    fn sha256_is_normalized_or_refused() {
        let upper = "AB".repeat(32);
        assert_eq!(normalize_sha256(&upper).unwrap(), "ab".repeat(32));
        assert!(normalize_sha256("abc").is_err());
        assert!(normalize_sha256(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn request_debug_redacts_urls() {
        let mut req = IsoRequest::new("https://u:pw@h/a.iso?sig=s3cret", "ab".repeat(32), "/c");
        req.mirror_url = Some("http://h/m.iso?token=t0ken".into());
        let shown = format!("{req:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("pw") && !shown.contains("t0ken"));
        assert!(shown.contains("https://***@h/a.iso?***"), "{shown}");
    }

    #[test]
    fn sources_refuse_other_schemes() {
        assert!(matches!(
            Source::parse("ftp://host/a.iso"),
            Err(IsoError::Invalid(_))
        ));
        assert!(matches!(
            Source::parse("file:///tmp/a.iso"),
            Ok(Source::File(_))
        ));
    }
}
