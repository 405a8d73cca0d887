//! The on-disk ISO cache: layout, modes, the per-ISO cross-process lock and the "verified" record
//! that lets a warm cache skip re-hashing.
//!
//! Layout under `<cache_dir>/iso/` (directory 0700; every file 0600 — the ISO is public data, but
//! the cache is private to its user and 0600 inside a 0700 directory keeps one simple rule):
//! - `<sha256>.iso`: a verified image, only ever created by an atomic rename;
//! - `<sha256>.iso.verified`: JSON recording the sha256 together with the file's size, mtime and
//!   inode at verification; trusted while those still match;
//! - `<sha256>.iso.part` + `<sha256>.iso.part.json`: an interrupted download and its validator
//!   (ETag or Last-Modified) so the next attempt resumes with `Range`/`If-Range`. Kept on purpose
//!   across failures and cancellation (at most one per ISO); removed on completion or mismatch;
//! - `<sha256>.lock`: the `flock` taken by whoever downloads; never deleted (deleting lock files
//!   races with waiters).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Mode of cache directories.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of every cache file.
pub(super) const FILE_MODE: u32 = 0o600;
/// How often a waiter retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Paths of one ISO's cache entry.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) iso: PathBuf,
    pub(super) verified: PathBuf,
    pub(super) part: PathBuf,
    pub(super) part_meta: PathBuf,
    pub(super) lock: PathBuf,
}

impl Entry {
    pub(super) fn new(cache_dir: &Path, sha256: &str) -> Entry {
        let dir = cache_dir.join("iso");
        Entry {
            iso: dir.join(format!("{sha256}.iso")),
            verified: dir.join(format!("{sha256}.iso.verified")),
            part: dir.join(format!("{sha256}.iso.part")),
            part_meta: dir.join(format!("{sha256}.iso.part.json")),
            lock: dir.join(format!("{sha256}.lock")),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        self.iso.parent().unwrap_or(Path::new("."))
    }
}

/// Creates `<cache_dir>` (0700 when created here) and `<cache_dir>/iso` (always 0700). Refuses a
/// world-writable cache root.
pub(super) fn prepare_dirs(cache_dir: &Path, entry: &Entry) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(cache_dir)
        .map_err(|e| format!("cannot create cache dir {}: {e}", cache_dir.display()))?;
    let meta = fs::metadata(cache_dir)
        .map_err(|e| format!("cannot stat cache dir {}: {e}", cache_dir.display()))?;
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(format!(
            "cache dir {} is world-writable; refusing to cache ISOs there",
            cache_dir.display()
        ));
    }
    let dir = entry.dir();
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(dir)
        .or_else(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta =
        fs::symlink_metadata(dir).map_err(|e| format!("cannot stat {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.permissions().mode() & 0o777 != DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// What was verified, and the file identity it was verified for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct VerifiedRecord {
    sha256: String,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: i64,
    inode: u64,
    device: u64,
}

impl VerifiedRecord {
    fn of(sha256: &str, meta: &fs::Metadata) -> VerifiedRecord {
        VerifiedRecord {
            sha256: sha256.to_string(),
            size: meta.len(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

/// Outcome of looking at `<sha>.iso`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CacheState {
    /// No cached file.
    Absent,
    /// A file whose verified record matches (trusted without hashing).
    Verified,
    /// A file exists but its record is missing or stale: it must be hashed.
    Unverified,
}

/// Looks at the cached image without reading its content.
pub(super) fn inspect(entry: &Entry, sha256: &str) -> CacheState {
    let meta = match fs::symlink_metadata(&entry.iso) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return CacheState::Unverified,
        Err(_) => return CacheState::Absent,
    };
    let recorded: Option<VerifiedRecord> = fs::read(&entry.verified)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match recorded {
        Some(rec) if rec == VerifiedRecord::of(sha256, &meta) => CacheState::Verified,
        _ => CacheState::Unverified,
    }
}

/// Records that `entry.iso` was verified to hash to `sha256`, for its current identity.
pub(super) fn record_verified(entry: &Entry, sha256: &str) -> Result<(), String> {
    let meta = fs::symlink_metadata(&entry.iso)
        .map_err(|e| format!("cannot stat {}: {e}", entry.iso.display()))?;
    let record = VerifiedRecord::of(sha256, &meta);
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
    write_atomic(&entry.verified, &bytes)
}

/// Removes the cached image and its record (a file that failed verification).
pub(super) fn evict(entry: &Entry) {
    remove_quietly(&entry.verified);
    remove_quietly(&entry.iso);
}

/// Removes a file, ignoring "not found"; other failures are logged.
pub(super) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove cache file");
        }
    }
}

/// Writes `bytes` to `path` through a 0600 temp file and a rename.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a temp file in {}: {e}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot rename into {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Opens (creating 0600) a file for writing without truncation.
pub(super) fn open_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// An exclusive `flock` on `<sha>.lock`, released when dropped.
#[derive(Debug)]
pub(super) struct IsoLock {
    _file: File,
}

/// Waits for the ISO's lock, polling so cancellation is noticed.
pub(super) async fn lock(entry: &Entry, cancel: &CancellationToken) -> Result<IsoLock, LockError> {
    let file = open_private(&entry.lock).map_err(LockError::Io)?;
    let mut logged = false;
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => return Ok(IsoLock { _file: file }),
            Ok(false) => {}
            Err(e) => return Err(LockError::Io(e)),
        }
        if !logged {
            tracing::info!(lock = %entry.lock.display(), "another acquire holds this ISO; waiting");
            logged = true;
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(LockError::Cancelled),
            () = tokio::time::sleep(LOCK_POLL) => {}
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(super) enum LockError {
    Io(io::Error),
    Cancelled,
}

/// One ISO held by the cache (verified image and/or an interrupted download), for eviction and
/// `cache ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedIso {
    /// the pinned sha256 (the file name)
    pub sha256: String,
    /// `<sha256>.iso` (may be absent when only a `.part` is left)
    pub path: PathBuf,
    /// bytes allocated by the image, the partial download and their records
    pub size: u64,
    /// last use: the mtime of `<sha256>.inuse` (touched by every build reading the ISO), else of
    /// the image itself
    pub last_used: std::time::SystemTime,
    /// the shared in-use lock file a build holds while reading the ISO
    pub in_use_lock: PathBuf,
    /// the download lock
    pub download_lock: PathBuf,
}

/// `<cache_dir>/iso/<sha256>.inuse`: held shared by builds reading the ISO.
pub fn in_use_lock_path(cache_dir: &Path, sha256: &str) -> PathBuf {
    cache_dir
        .join("iso")
        .join(format!("{}.inuse", sha256.trim().to_ascii_lowercase()))
}

fn allocated(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let m = fs::symlink_metadata(path).ok()?;
    let modified = m.modified().ok()?;
    Some((m.blocks().saturating_mul(512), modified))
}

/// Every ISO in `<cache_dir>/iso` (images and interrupted downloads).
pub fn cached_isos(cache_dir: &Path) -> Vec<CachedIso> {
    let dir = cache_dir.join("iso");
    let Ok(read) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut shas: Vec<String> = read
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let sha = name
                .strip_suffix(".iso")
                .or_else(|| name.strip_suffix(".iso.part"))?;
            (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_owned())
        })
        .collect();
    shas.sort();
    shas.dedup();
    shas.into_iter()
        .map(|sha| {
            let entry = Entry::new(cache_dir, &sha);
            let mut size = 0;
            let mut last = std::time::UNIX_EPOCH;
            for p in [&entry.iso, &entry.verified, &entry.part, &entry.part_meta] {
                if let Some((s, t)) = allocated(p) {
                    size += s;
                    last = last.max(t);
                }
            }
            let in_use_lock = in_use_lock_path(cache_dir, &sha);
            if let Some((_, t)) = allocated(&in_use_lock) {
                last = last.max(t);
            }
            CachedIso {
                path: entry.iso.clone(),
                sha256: sha,
                size,
                last_used: last,
                in_use_lock,
                download_lock: entry.lock.clone(),
            }
        })
        .collect()
}

/// Remove a cached ISO, its record and any partial download (lock files stay). The caller holds
/// its in-use and download locks.
pub fn remove_cached(cache_dir: &Path, sha256: &str) {
    let entry = Entry::new(cache_dir, sha256);
    for p in [&entry.verified, &entry.iso, &entry.part_meta, &entry.part] {
        remove_quietly(p);
    }
}
