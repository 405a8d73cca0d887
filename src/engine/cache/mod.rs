//! The build cache: a **fingerprint** over every byte-affecting input of a build, and
//! `<cache>/builds/<fp>/` holding the verified, normalized artifact files plus `record.json`
//! (digests, sizes, versions, and the fingerprint inputs). A later create with the same
//! fingerprint reuses the entry (unless `rebuild_if_exists`), so a failed publish never costs a
//! rebuild. What the fingerprint covers, and what it does not, is in [`fingerprint`] and
//! docs/design/build-cache.md.
//!
//! Before reuse every file of the entry is re-checked against the record (exists, size and mtime
//! equal); a mismatch discards the entry. Concurrent creates of one fingerprint serialize on
//! `<cache>/builds/<fp>.lock` (see [`lock`]), held for the whole create, which is also what marks
//! an entry *in use* for eviction. Entries are written to a staging directory (removed on every
//! exit path) and renamed into place; `<entry>/last-used` is touched on commit and on every hit
//! (its mtime orders eviction).
//!
//! Files: `fingerprint` (inputs and hash), `tree` (recursive content digests), `checkout` (git
//! identity of a builder checkout), `record` (`record.json`), `lock` (flocks), `eviction` (size
//! and age limits, `cache ls` / `cache prune` reports), `explain` (why an entry would or would not
//! be reused).
//!
//! Knows nothing about Terraform or the CLI: the operator CLI only displays what this module
//! reports. Costly caveat: a fingerprint of a large template tree or checkout reads every file on
//! each plan-free create (a cache hit included); git is run once per create for a git checkout.

mod checkout;
pub mod eviction;
pub mod explain;
mod fingerprint;
pub mod lock;
mod record;
mod tree;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

pub use fingerprint::{
    command_script, diff_inputs, fingerprint, ChangedInput, Fingerprint, FingerprintInputs, Input,
    FINGERPRINT_SCHEMA,
};
pub use lock::HeldLock;
pub use record::{mtime_ns, BuildRecord, RecordFile, RECORD_SCHEMA};
pub use tree::VCS_DIRS;

const RECORD: &str = "record.json";
/// Marker whose mtime is the entry's last use.
pub(crate) const LAST_USED: &str = "last-used";

/// A cache problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// an input named by the spec could not be read
    #[error("reading {path} for the build fingerprint: {source}")]
    Input {
        /// the file
        path: PathBuf,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
    /// the cache directory could not be used
    #[error("build cache {path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
    /// waiting for the fingerprint lock was cancelled
    #[error("cancelled while waiting for the build cache lock")]
    Cancelled,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An exclusive lock on one fingerprint; released on drop.
pub type FingerprintLock = HeldLock;

/// Read an entry's record (any schema), `None` when missing or unreadable.
pub(crate) fn read_record(entry: &Path) -> Option<BuildRecord> {
    let text = std::fs::read(entry.join(RECORD)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The build cache under `<cache_dir>/builds`.
#[derive(Debug, Clone)]
pub struct BuildCache {
    root: PathBuf,
}

impl BuildCache {
    /// The cache rooted at `<cache_dir>/builds` (created 0700 on first use).
    pub fn new(cache_dir: &Path) -> Self {
        BuildCache {
            root: cache_dir.join("builds"),
        }
    }

    /// `<cache_dir>/builds`
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The entry directory of a fingerprint.
    pub fn entry_dir(&self, fp: &str) -> PathBuf {
        self.root.join(fp)
    }

    /// The lock file of a fingerprint.
    pub fn lock_path(&self, fp: &str) -> PathBuf {
        self.root.join(format!("{fp}.lock"))
    }

    fn ensure_root(&self) -> Result<(), CacheError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(io_err(&self.root))
    }

    /// The entry's record when every file still matches it; `None` otherwise.
    pub fn lookup(&self, fp: &str) -> Option<BuildRecord> {
        let dir = self.entry_dir(fp);
        let record = read_record(&dir)?;
        if record.schema != RECORD_SCHEMA || record.fingerprint != fp || record.files.is_empty() {
            return None;
        }
        for f in &record.files {
            let p = dir.join(&f.name);
            let size = std::fs::metadata(&p).ok()?.len();
            if size != f.size || mtime_ns(&p).ok()? != f.mtime_ns {
                tracing::warn!(file = %p.display(), "cached artifact changed on disk; rebuilding");
                return None;
            }
        }
        Some(record)
    }

    /// Record that the entry was used now (eviction is least-recently-used first).
    pub fn touch(&self, fp: &str) {
        let marker = self.entry_dir(fp).join(LAST_USED);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // Set the mtime explicitly: the kernel stamps writes with a coarse clock, and the ISO
        // in-use marker is set with the precise one; LRU compares the two.
        let written = std::fs::write(&marker, now).and_then(|()| {
            std::fs::File::options()
                .write(true)
                .open(&marker)?
                .set_modified(std::time::SystemTime::now())
        });
        if let Err(e) = written {
            tracing::warn!(path = %marker.display(), error = %e, "cannot mark cache entry used");
        }
    }

    /// Wait for the fingerprint's lock (polling, so `cancel` is honoured).
    pub async fn lock(
        &self,
        fp: &str,
        cancel: &CancellationToken,
    ) -> Result<FingerprintLock, CacheError> {
        self.ensure_root()?;
        lock::exclusive(&self.lock_path(fp), cancel).await
    }

    /// A fresh 0700 staging directory inside the cache (removed when dropped).
    pub fn staging(&self, fp: &str) -> Result<tempfile::TempDir, CacheError> {
        self.ensure_root()?;
        tempfile::Builder::new()
            .prefix(&format!(".staging-{}-", &fp[..fp.len().min(16)]))
            .tempdir_in(&self.root)
            .map_err(io_err(&self.root))
    }

    /// Write `record` into `staging` and move it into place as the fingerprint's entry,
    /// replacing an older entry.
    pub fn commit(
        &self,
        fp: &str,
        staging: tempfile::TempDir,
        record: &BuildRecord,
    ) -> Result<PathBuf, CacheError> {
        let record_path = staging.path().join(RECORD);
        let text = serde_json::to_vec_pretty(record).map_err(|e| CacheError::Io {
            path: record_path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&record_path, text).map_err(io_err(&record_path))?;
        let dest = self.entry_dir(fp);
        self.invalidate(fp);
        let staged = staging.keep();
        std::fs::rename(&staged, &dest).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staged);
            io_err(&dest)(e)
        })?;
        self.touch(fp);
        Ok(dest)
    }

    /// Remove a fingerprint's entry (no error when absent).
    pub fn invalidate(&self, fp: &str) {
        let _ = std::fs::remove_dir_all(self.entry_dir(fp));
    }
}
