//! `record.json` of a build cache entry: the files with their digests, the provenance, and the
//! fingerprint inputs that produced it (so `image explain` can name what changed).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fingerprint::FingerprintInputs;
use crate::engine::contract::VyosMetadata;

/// Schema of `record.json` written by this version (entries of other schemas are never reused).
pub const RECORD_SCHEMA: u32 = 2;

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
    /// what went into the fingerprint (name → digest, summary, per-file digests)
    #[serde(default)]
    pub inputs: FingerprintInputs,
    /// what normalization did (absent in entries recorded before it was)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<crate::engine::contract::Normalization>,
}

impl BuildRecord {
    /// `artifact_key` as recorded in the inputs (`None` for records without inputs).
    pub fn artifact_key(&self) -> Option<String> {
        let s = self.inputs.get("artifact_key")?.summary.as_deref()?;
        serde_json::from_str::<String>(s).ok()
    }
}

/// Modification time of `path` in ns since the epoch.
pub fn mtime_ns(path: &Path) -> std::io::Result<i128> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
}
