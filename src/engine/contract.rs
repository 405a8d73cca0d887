//! The artifact contract: what a create produces and what downstream consumers read (resource
//! computed attributes, `manifest.json`, HyOps state outputs). Pure data, no I/O.

mod manifest;
mod verification;

use std::collections::BTreeMap;

pub use manifest::{
    Compression, HetznerHint, Manifest, ManifestFile, ProxmoxHint, SourceIso, VyosMetadata,
    MANIFEST_SCHEMA_VERSION,
};

pub use verification::{BootVerification, Verification};

use serde::{Deserialize, Serialize};

/// The computed attributes of `hyops_vyos_image` / `hyops_vyos_artifact` (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArtifactContract {
    /// `id` (the build id, or the manifest URL for imports; decided by the provider)
    pub id: String,
    /// `artifact_key`
    pub artifact_key: String,
    /// `artifact_format`
    pub artifact_format: String,
    /// `artifact_version`
    pub artifact_version: String,
    /// `artifact_local_path`
    pub artifact_local_path: String,
    /// `artifact_url` (https form for GCS, `public_base_url` + object, or `file://` when local)
    pub artifact_url: String,
    /// `artifact_storage_uri` (`gs://`, `s3://`, `az://`, `file://`)
    pub artifact_storage_uri: String,
    /// `artifact_sha256`
    pub artifact_sha256: String,
    /// `artifact_size_bytes`
    pub artifact_size_bytes: u64,
    /// `artifact_virtual_size_bytes`
    pub artifact_virtual_size_bytes: u64,
    /// `vyos_version` (empty when the ISO carried no readable `version.json`)
    pub vyos_version: String,
    /// `source_iso_url`
    pub source_iso_url: String,
    /// `source_iso_sha256`
    pub source_iso_sha256: String,
    /// `build_id`
    pub build_id: String,
    /// `built_at` (RFC 3339)
    pub built_at: String,
    /// `published`
    pub published: bool,
    /// `published_at` (RFC 3339; empty when not published)
    pub published_at: String,
    /// `remote_checksum` (crc32c/md5/etag as the store gives it)
    pub remote_checksum: String,
    /// `remote_generation`
    pub remote_generation: String,
    /// `manifest_url`
    pub manifest_url: String,
    /// `artifacts`: keyed by artifact key; additional formats keyed `<artifact_key>+<format>`
    pub artifacts: BTreeMap<String, ArtifactEntry>,
    /// the build runner that built it and holds `artifact_local_path` (`[user@]host[:port]`);
    /// empty when built on the machine that ran the create
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build_host: String,
    /// what the smoke gate ran and found (in `contract_json` and the manifest; absent for
    /// artifacts recorded before it existed)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// what normalization did to the builder's image (absent in contracts made before it was
    /// recorded)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
}

/// What normalization did to the builder's image to make the primary artifact (`build.normalize`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Normalization {
    /// `build.normalize`: `auto`, `always` or `compress`
    pub mode: String,
    /// `kept` (the builder's file, byte for byte), `converted` (its format differed from
    /// `artifact_format`), `reencoded` (`always`) or `compressed` (`compress`)
    pub action: String,
    /// format of the builder's output as `qemu-img` read it (`qcow2`, `raw`)
    pub source_format: String,
    /// compression inside a qcow2 primary: `zstd` or `zlib`; empty when uncompressed or raw
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub compression_type: String,
}

/// One entry of the `artifacts` map (HyOps shape).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// `artifact_url`
    pub artifact_url: String,
    /// `artifact_format`
    pub artifact_format: String,
    /// `artifact_version`
    pub artifact_version: String,
    /// `artifact_sha256`
    pub artifact_sha256: String,
    /// `source_iso_url`
    pub source_iso_url: String,
    /// `artifact_local_path`
    pub artifact_local_path: String,
}
