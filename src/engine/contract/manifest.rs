//! `manifest.json`: the full artifact contract written beside the published files (last, so its
//! presence means every listed file was verified), with download hints spelled the way the
//! consuming tools spell them:
//! - Proxmox (bpg `proxmox_virtual_environment_download_file`): `content_type = "import"`,
//!   `checksum_algorithm = "sha256"`, `decompression_algorithm` one of `gz`, `lzo`, `zst`, `bz2`
//!   (Proxmox cannot decompress xz);
//! - Hetzner (`hcloud-upload-image upload --image-url`): `--format qcow2` for qcow2,
//!   `--compression` one of `bz2`, `xz`, `zstd` (no gzip), nothing for plain raw.

use serde::{Deserialize, Serialize};

/// The manifest schema this code writes and reads.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// Compression of a published file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// not compressed (qcow2 may still be internally compressed)
    #[default]
    None,
    /// xz
    Xz,
    /// zstd
    Zstd,
    /// gzip
    Gzip,
}

impl Compression {
    /// From a format spelling: `raw.xz` → Xz, `raw.zst` → Zstd, `raw.gz` → Gzip, else None.
    pub fn from_format(format: &str) -> Self {
        if format.ends_with(".xz") {
            Compression::Xz
        } else if format.ends_with(".zst") {
            Compression::Zstd
        } else if format.ends_with(".gz") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    /// The file extension without the dot (`xz`, `zst`, `gz`), `None` when uncompressed.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Xz => Some("xz"),
            Compression::Zstd => Some("zst"),
            Compression::Gzip => Some("gz"),
        }
    }
}

/// VyOS metadata read from the ISO's `version.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VyosMetadata {
    /// `version`
    #[serde(default)]
    pub version: String,
    /// `flavor`
    #[serde(default)]
    pub flavor: String,
    /// `architecture`
    #[serde(default)]
    pub architecture: String,
    /// `build_uuid`
    #[serde(default)]
    pub build_uuid: String,
    /// `build_git`
    #[serde(default)]
    pub build_git: String,
    /// `release_train`
    #[serde(default)]
    pub release_train: String,
    /// `built_on`
    #[serde(default)]
    pub built_on: String,
}

/// The source ISO's provenance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceIso {
    /// `source_iso_url` (the official URL, not the mirror)
    pub url: String,
    /// `source_iso_sha256`
    pub sha256: String,
}

/// How to download this file with bpg/proxmox `proxmox_virtual_environment_download_file`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProxmoxHint {
    /// `url`
    pub url: String,
    /// `checksum` (of the downloaded bytes)
    pub checksum: String,
    /// `checksum_algorithm`: always `sha256`
    pub checksum_algorithm: String,
    /// `content_type`: `import`
    pub content_type: String,
    /// `file_name` as stored on the Proxmox datastore (after decompression)
    pub file_name: String,
    /// `decompression_algorithm` (`gz`, `lzo`, `zst`, `bz2`) when the file is compressed
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decompression_algorithm: Option<String>,
    /// false when Proxmox cannot use this encoding (xz)
    pub supported: bool,
}

/// How to import this file with `hcloud-upload-image upload --image-url`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HetznerHint {
    /// `--image-url`
    pub image_url: String,
    /// `--format` (`qcow2`) when not raw
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `--compression` (`bz2`, `xz`, `zstd`) when compressed
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// false when hcloud-upload-image cannot use this encoding (gzip)
    pub supported: bool,
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ManifestFile {
    /// `qcow2`, `raw`, `img`, `raw.xz`, `raw.zst`, `raw.gz`
    pub format: String,
    /// compression of the file as stored
    pub compression: Compression,
    /// object name in the repository
    pub object: String,
    /// public URL
    pub url: String,
    /// `gs://`, `s3://`, `az://`, `file://`
    pub storage_uri: String,
    /// SHA-256 (hex) of the stored bytes
    pub sha256: String,
    /// size of the stored bytes
    pub size_bytes: u64,
    /// virtual disk size
    pub virtual_size_bytes: u64,
    /// `remote_checksum` as the store gave it
    pub remote_checksum: String,
    /// `remote_generation`
    pub remote_generation: String,
    /// Proxmox download hint
    pub proxmox: ProxmoxHint,
    /// Hetzner import hint
    pub hetzner: HetznerHint,
}

impl ManifestFile {
    /// Fills the Proxmox and Hetzner hints from format, compression, url and sha256.
    pub fn with_hints(mut self, artifact_key: &str) -> Self {
        let base_format = self.format.split('.').next().unwrap_or("raw").to_owned();
        let (decomp, px_ok) = match self.compression {
            Compression::None => (None, true),
            Compression::Gzip => (Some("gz"), true),
            Compression::Zstd => (Some("zst"), true),
            Compression::Xz => (None, false),
        };
        self.proxmox = ProxmoxHint {
            url: self.url.clone(),
            checksum: self.sha256.clone(),
            checksum_algorithm: "sha256".into(),
            content_type: "import".into(),
            file_name: format!("{artifact_key}.{base_format}"),
            decompression_algorithm: decomp.map(str::to_owned),
            supported: px_ok,
        };
        let (hz_format, hz_comp, hz_ok) = match (base_format.as_str(), self.compression) {
            ("qcow2", Compression::None) => (Some("qcow2"), None, true),
            (_, Compression::None) => (None, None, true),
            (_, Compression::Xz) => (None, Some("xz"), true),
            (_, Compression::Zstd) => (None, Some("zstd"), true),
            (_, Compression::Gzip) => (None, None, false),
        };
        self.hetzner = HetznerHint {
            image_url: self.url.clone(),
            format: hz_format.map(str::to_owned),
            compression: hz_comp.map(str::to_owned),
            supported: hz_ok,
        };
        self
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA_VERSION`]
    pub schema_version: u32,
    /// `artifact_key`
    pub artifact_key: String,
    /// `artifact_version`
    pub artifact_version: String,
    /// `artifact_format` (the primary file's format)
    pub artifact_format: String,
    /// `build_id`
    pub build_id: String,
    /// `built_at` (RFC 3339)
    pub built_at: String,
    /// `published_at` (RFC 3339)
    pub published_at: String,
    /// VyOS metadata from the ISO
    pub vyos: VyosMetadata,
    /// source ISO provenance
    pub source_iso: SourceIso,
    /// `notes`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// the published files; the first is the primary artifact
    pub files: Vec<ManifestFile>,
    /// what normalization did to the builder's image (absent in older manifests)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<super::Normalization>,
    /// what the smoke gate ran and found before publishing
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<super::Verification>,
}

impl Manifest {
    /// The primary file (first entry).
    pub fn primary(&self) -> Option<&ManifestFile> {
        self.files.first()
    }

    /// The artifact contract this manifest describes (import, `hyops_vyos_artifact`): the
    /// primary file fills the top-level attributes, every file an `artifacts` entry keyed
    /// `<artifact_key>` (primary) or `<artifact_key>+<format>`. Local paths are empty.
    pub fn to_contract(&self, manifest_url: &str) -> super::ArtifactContract {
        let primary = self.primary().cloned().unwrap_or_default();
        let artifacts = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let key = if i == 0 {
                    self.artifact_key.clone()
                } else {
                    format!("{}+{}", self.artifact_key, f.format)
                };
                let entry = super::ArtifactEntry {
                    artifact_url: f.url.clone(),
                    artifact_format: f.format.clone(),
                    artifact_version: self.artifact_version.clone(),
                    artifact_sha256: f.sha256.clone(),
                    source_iso_url: self.source_iso.url.clone(),
                    artifact_local_path: String::new(),
                };
                (key, entry)
            })
            .collect();
        super::ArtifactContract {
            id: self.build_id.clone(),
            artifact_key: self.artifact_key.clone(),
            artifact_format: self.artifact_format.clone(),
            artifact_version: self.artifact_version.clone(),
            artifact_local_path: String::new(),
            artifact_url: primary.url.clone(),
            artifact_storage_uri: primary.storage_uri.clone(),
            artifact_sha256: primary.sha256.clone(),
            artifact_size_bytes: primary.size_bytes,
            artifact_virtual_size_bytes: primary.virtual_size_bytes,
            vyos_version: self.vyos.version.clone(),
            source_iso_url: self.source_iso.url.clone(),
            source_iso_sha256: self.source_iso.sha256.clone(),
            build_id: self.build_id.clone(),
            built_at: self.built_at.clone(),
            published: !manifest_url.is_empty(),
            published_at: self.published_at.clone(),
            remote_checksum: primary.remote_checksum.clone(),
            remote_generation: primary.remote_generation.clone(),
            manifest_url: manifest_url.to_owned(),
            artifacts,
            normalization: self.normalization.clone(),
            build_host: String::new(),
            verification: self.verification.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: &str) -> ManifestFile {
        ManifestFile {
            format: format.into(),
            compression: Compression::from_format(format),
            url: "https://x/y".into(),
            sha256: "ab".repeat(32),
            ..Default::default()
        }
        .with_hints("vyos")
    }

    #[test]
    fn hints_use_each_tools_spelling() {
        let q = file("qcow2");
        assert_eq!(q.proxmox.content_type, "import");
        assert_eq!(q.proxmox.checksum_algorithm, "sha256");
        assert_eq!(q.hetzner.format.as_deref(), Some("qcow2"));
        let z = file("raw.zst");
        assert_eq!(z.proxmox.decompression_algorithm.as_deref(), Some("zst"));
        assert_eq!(z.proxmox.file_name, "vyos.raw");
        assert_eq!(z.hetzner.compression.as_deref(), Some("zstd"));
        let x = file("raw.xz");
        assert!(!x.proxmox.supported);
        assert_eq!(x.hetzner.compression.as_deref(), Some("xz"));
        let g = file("raw.gz");
        assert_eq!(g.proxmox.decompression_algorithm.as_deref(), Some("gz"));
        assert!(!g.hetzner.supported);
    }
}
