//! Cross-process `flock`s of the cache. Every lock is a 0600 file that is never deleted (deleting a
//! lock file races with a waiter that already opened it). `flock` belongs to the open file, so two
//! opens in one process exclude each other just as two processes do.
//!
//! - `builds/<fp>.lock`, exclusive: held by a create for its whole run (lookup, build, delivery,
//!   publish), so an entry whose create is running is *in use*; eviction only removes an entry
//!   whose lock it can take without waiting.
//! - `iso/<sha256>.inuse`, shared: held by every build reading that ISO; eviction takes it
//!   exclusively (without waiting) before removing the ISO. Its mtime is the ISO's last use.
//! - `.evict.lock`, exclusive: one eviction at a time per cache directory.
//!
//! Waiting polls (100 ms) so cancellation is honoured.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::CacheError;

const POLL: Duration = Duration::from_millis(100);

/// A held `flock`; released on drop.
#[derive(Debug)]
pub struct HeldLock {
    _file: File,
}

fn open(path: &Path) -> Result<File, CacheError> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| CacheError::Io {
                path: parent.to_owned(),
                source,
            })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CacheError::Io {
            path: path.to_owned(),
            source,
        })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Wait for an exclusive lock on `path`.
pub async fn exclusive(path: &Path, cancel: &CancellationToken) -> Result<HeldLock, CacheError> {
    let file = open(path)?;
    loop {
        if fs4::fs_std::FileExt::try_lock_exclusive(&file).map_err(io(path))? {
            return Ok(HeldLock { _file: file });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(CacheError::Cancelled),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Wait for a shared lock on `path` and mark it used now (its mtime).
pub async fn shared_in_use(
    path: &Path,
    cancel: &CancellationToken,
) -> Result<HeldLock, CacheError> {
    let file = open(path)?;
    loop {
        if fs4::fs_std::FileExt::try_lock_shared(&file).map_err(io(path))? {
            let _ = file.set_modified(std::time::SystemTime::now());
            return Ok(HeldLock { _file: file });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(CacheError::Cancelled),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Outcome of [`try_exclusive`].
#[derive(Debug)]
pub enum TryLock {
    /// taken; held until dropped
    Held(HeldLock),
    /// the lock file does not exist and `create` was false: nobody has locked it
    Absent,
    /// someone holds it
    Busy,
}

/// An exclusive lock on `path` without waiting. A missing lock file is created when `create`
/// (so a user arriving meanwhile waits for us), else reported as [`TryLock::Absent`] (dry runs
/// must not write).
pub fn try_exclusive(path: &Path, create: bool) -> Result<TryLock, CacheError> {
    let file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Ok(TryLock::Absent);
            }
            open(path)?
        }
        Err(e) => return Err(io(path)(e)),
    };
    if fs4::fs_std::FileExt::try_lock_exclusive(&file).map_err(io(path))? {
        Ok(TryLock::Held(HeldLock { _file: file }))
    } else {
        Ok(TryLock::Busy)
    }
}

/// Blocking wait for an exclusive lock (operator CLI; no async runtime needed).
pub fn exclusive_blocking(path: &Path) -> Result<HeldLock, CacheError> {
    let file = open(path)?;
    fs4::fs_std::FileExt::lock_exclusive(&file).map_err(io(path))?;
    Ok(HeldLock { _file: file })
}
