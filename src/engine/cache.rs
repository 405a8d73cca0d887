//! The build cache: a **fingerprint** over every byte-affecting input of a build, and
//! `<cache>/builds/<fp>/` holding the verified, normalized artifact files plus `record.json`
//! (digests, sizes, versions). A later create with the same fingerprint reuses the entry (unless
//! `rebuild_if_exists`), so a failed publish never costs a rebuild.
//!
//! Fingerprint inputs (canonical JSON, hashed with sha256): the ISO sha256, artifact key, format
//! and additional formats, the explicit `artifact_version`, the resolved `build` block (method,
//! command, disk size, cloud-init settings, console, guest agent, TCG permission, extra packer
//! args, `environment`, the vyos-vm-images checkout path) and the **contents** of the packer
//! template(s), vars file and optional `cc_vyos.py`. Publish settings are deliberately excluded
//! (publishing does not change bytes). Tool versions are excluded so a cache hit never needs the
//! build tools (or preflight); they are recorded in the record for provenance instead.
//!
//! Before reuse every file of the entry is re-checked against the record (exists, size and mtime
//! equal); a mismatch discards the entry. Concurrent creates of one fingerprint serialize on
//! `<cache>/builds/<fp>.lock` (`flock`). Entries are written to a staging directory (removed on
//! every exit path) and renamed into place.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::engine::build::{BuildSettings, ENV_CC_VYOS_PATH};
use crate::engine::contract::VyosMetadata;
use crate::engine::spec::ImageSpec;

const RECORD: &str = "record.json";
const RECORD_SCHEMA: u32 = 1;

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

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file_digest(path: &Path) -> Result<String, CacheError> {
    std::fs::read(path)
        .map(|b| sha256_hex(&b))
        .map_err(|source| CacheError::Input {
            path: path.to_owned(),
            source,
        })
}

/// Digest of a file, or of every file of a directory (sorted by name).
fn path_digest(path: &Path) -> Result<BTreeMap<String, String>, CacheError> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| CacheError::Input {
            path: path.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_file() {
                out.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    file_digest(&p)?,
                );
            }
        }
    } else {
        out.insert(path.display().to_string(), file_digest(path)?);
    }
    Ok(out)
}

#[derive(Serialize)]
struct FingerprintDoc<'a> {
    schema: u32,
    iso_sha256: String,
    artifact_key: &'a str,
    artifact_format: &'a str,
    additional_formats: Vec<&'a str>,
    artifact_version: Option<&'a str>,
    build: &'a BuildSettings,
    packer_template: Option<BTreeMap<String, String>>,
    packer_vars_file: Option<BTreeMap<String, String>>,
    packaged_templates: Option<String>,
    cc_vyos: Option<String>,
}

/// The build fingerprint (64 hex) of `spec` built with `settings`.
pub fn fingerprint(spec: &ImageSpec, settings: &BuildSettings) -> Result<String, CacheError> {
    use crate::engine::spec::BuildMethod;
    let mut extras: Vec<&str> = spec.additional_formats.iter().map(|f| f.as_str()).collect();
    extras.sort_unstable();
    extras.dedup();
    let is_packer = settings.method == BuildMethod::Packer;
    let packaged = (is_packer && settings.packer_template.is_none()).then(|| {
        use crate::engine::build::{PACKAGED_VARS_FILE, STAGE1_TEMPLATE, STAGE2_TEMPLATE};
        sha256_hex(format!("{STAGE1_TEMPLATE}\0{STAGE2_TEMPLATE}\0{PACKAGED_VARS_FILE}").as_bytes())
    });
    let doc = FingerprintDoc {
        schema: RECORD_SCHEMA,
        iso_sha256: spec.source_iso_sha256.to_ascii_lowercase(),
        artifact_key: &spec.artifact_key,
        artifact_format: spec.artifact_format.as_str(),
        additional_formats: extras,
        artifact_version: spec.artifact_version.as_deref(),
        build: settings,
        packer_template: match (&settings.packer_template, is_packer) {
            (Some(p), true) => Some(path_digest(p)?),
            _ => None,
        },
        packer_vars_file: match (&settings.packer_vars_file, is_packer) {
            (Some(p), true) => Some(path_digest(p)?),
            _ => None,
        },
        packaged_templates: packaged,
        cc_vyos: match settings.environment.get(ENV_CC_VYOS_PATH) {
            Some(p) if is_packer && !p.is_empty() => Some(file_digest(Path::new(p))?),
            _ => None,
        },
    };
    let canonical = serde_json::to_vec(&doc).map_err(|e| CacheError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?;
    Ok(sha256_hex(&canonical))
}

/// One file of a cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFile {
    /// file name inside the entry
    pub name: String,
    /// `qcow2`, `raw`, `img`, `raw.xz`, …
    pub format: String,
    /// size in bytes
    pub size: u64,
    /// virtual disk size in bytes
    pub virtual_size: u64,
    /// sha256 (hex)
    pub sha256: String,
    /// crc32c (Castagnoli) of the file
    pub crc32c: u32,
    /// md5 (lowercase hex), when computed
    pub md5: Option<String>,
    /// modification time (ns since the epoch) when recorded
    pub mtime_ns: i128,
}

/// `record.json` of a cache entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// record schema
    pub schema: u32,
    /// the fingerprint
    pub fingerprint: String,
    /// build id of the build that produced the entry
    pub build_id: String,
    /// RFC 3339
    pub built_at: String,
    /// VyOS version read from the ISO
    pub vyos_version: Option<String>,
    /// the ISO's `/version.json` facts (for the manifest)
    #[serde(default)]
    pub vyos: VyosMetadata,
    /// resolved `artifact_version`
    pub artifact_version: String,
    /// ISO sha256
    pub source_iso_sha256: String,
    /// build method
    pub method: String,
    /// tool versions seen by preflight (provenance)
    pub tools: BTreeMap<String, String>,
    /// warnings raised while building (carried into the outcome on reuse)
    pub warnings: Vec<String>,
    /// the primary artifact first, then additional formats
    pub files: Vec<RecordFile>,
    /// what normalization did (absent in entries recorded before it was)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<crate::engine::contract::Normalization>,
}

/// Modification time of `path` in ns since the epoch.
pub fn mtime_ns(path: &Path) -> std::io::Result<i128> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
}

/// An exclusive lock on one fingerprint; released on drop.
#[derive(Debug)]
pub struct FingerprintLock {
    _file: std::fs::File,
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
        let text = std::fs::read(dir.join(RECORD)).ok()?;
        let record: BuildRecord = serde_json::from_slice(&text).ok()?;
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

    /// Wait for the fingerprint's lock (polling, so `cancel` is honoured).
    pub async fn lock(
        &self,
        fp: &str,
        cancel: &CancellationToken,
    ) -> Result<FingerprintLock, CacheError> {
        self.ensure_root()?;
        let path = self.root.join(format!("{fp}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        loop {
            match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
                Ok(true) => return Ok(FingerprintLock { _file: file }),
                Ok(false) => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(CacheError::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
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
        Ok(dest)
    }

    /// Remove a fingerprint's entry (no error when absent).
    pub fn invalidate(&self, fp: &str) {
        let _ = std::fs::remove_dir_all(self.entry_dir(fp));
    }
}
