//! The artifact contract: local (file:// URLs) and, after publishing, the published one.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::deliver::Delivered;
use super::file_url;
use crate::engine::build::{contract_env, BuildSettings, ContractInputs};
use crate::engine::cache::BuildRecord;
use crate::engine::contract::{ArtifactContract, ArtifactEntry, Compression, SourceIso};
use crate::engine::error::EngineError;
use crate::engine::iso::provenance_url;
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::{
    self, EarlyUploads, LocalFile, ManifestMeta, PublishError, PublishTarget,
};
use crate::engine::spec::ImageSpec;

/// The contract of a local (unpublished) artifact.
pub(super) fn local_contract(
    spec: &ImageSpec,
    record: &BuildRecord,
    local: &Delivered,
) -> ArtifactContract {
    let mut artifacts = BTreeMap::new();
    let mut primary_path = String::new();
    for (i, f) in record.files.iter().enumerate() {
        let path = local
            .paths
            .get(&f.name)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let url = file_url(Path::new(&path));
        let key = if i == 0 {
            primary_path = path.clone();
            spec.artifact_key.clone()
        } else {
            format!("{}+{}", spec.artifact_key, f.format)
        };
        artifacts.insert(
            key,
            ArtifactEntry {
                artifact_url: url,
                artifact_format: f.format.clone(),
                artifact_version: record.artifact_version.clone(),
                artifact_sha256: f.sha256.clone(),
                source_iso_url: provenance_url(&spec.source_iso_url),
                artifact_local_path: path,
            },
        );
    }
    let primary = &record.files[0];
    let url = file_url(Path::new(&primary_path));
    ArtifactContract {
        id: record.build_id.clone(),
        artifact_key: spec.artifact_key.clone(),
        artifact_format: spec.artifact_format.as_str().to_owned(),
        artifact_version: record.artifact_version.clone(),
        artifact_local_path: primary_path,
        artifact_url: url.clone(),
        artifact_storage_uri: url,
        artifact_sha256: primary.sha256.clone(),
        artifact_size_bytes: primary.size,
        artifact_virtual_size_bytes: primary.virtual_size,
        vyos_version: record.vyos_version.clone().unwrap_or_default(),
        source_iso_url: provenance_url(&spec.source_iso_url),
        source_iso_sha256: record.source_iso_sha256.clone(),
        build_id: record.build_id.clone(),
        built_at: record.built_at.clone(),
        published: false,
        published_at: String::new(),
        remote_checksum: String::new(),
        remote_generation: String::new(),
        manifest_url: String::new(),
        artifacts,
        normalization: record.normalization.clone(),
        build_host: String::new(),
        verification: None,
    }
}

fn md5_bytes(hex_md5: Option<&str>) -> Option<[u8; 16]> {
    let bytes = hex::decode(hex_md5?).ok()?;
    bytes.try_into().ok()
}

/// Publish the delivered files and turn the local contract into the published one.
#[allow(clippy::too_many_arguments)]
pub(super) async fn publish_step(
    spec: &ImageSpec,
    settings: &BuildSettings,
    target: &PublishTarget,
    record: &BuildRecord,
    local: &Delivered,
    local_contract: ArtifactContract,
    early: Option<EarlyUploads>,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<ArtifactContract, EngineError> {
    let files: Vec<LocalFile> = record
        .files
        .iter()
        .map(|f| LocalFile {
            path: local.paths.get(&f.name).cloned().unwrap_or_default(),
            format: f.format.clone(),
            compression: Compression::from_format(&f.format),
            sha256: f.sha256.clone(),
            crc32c: f.crc32c,
            md5: md5_bytes(f.md5.as_deref()),
            size: f.size,
            virtual_size: f.virtual_size,
        })
        .collect();
    let primary_path = files.first().map(|f| f.path.clone()).unwrap_or_default();
    let mut target = target.clone();
    let source_url = provenance_url(&spec.source_iso_url);
    let contract = contract_env(&ContractInputs {
        artifact_key: &spec.artifact_key,
        artifact_format: spec.artifact_format.as_str(),
        artifact_version: &record.artifact_version,
        source_iso_url: &source_url,
        source_iso_path: None,
        artifact_local_path: &primary_path,
        artifact_url: &local_contract.artifact_url,
        repo_backend: Some(target.backend),
        bucket: Some(&target.bucket),
        azure_storage_account: target.azure_account.as_deref(),
        disk_size_gb: settings.disk_size_gb,
        cloud_init_datasources: if settings.cloud_init {
            &settings.cloud_init_datasources
        } else {
            &[]
        },
        guest_agent: &settings.guest_agent,
    });
    target.command_env = super::fresh::child_env(settings, contract);
    let meta = ManifestMeta {
        artifact_key: spec.artifact_key.clone(),
        artifact_version: record.artifact_version.clone(),
        build_id: record.build_id.clone(),
        built_at: record.built_at.clone(),
        vyos: record.vyos.clone(),
        source_iso: SourceIso {
            url: source_url,
            sha256: record.source_iso_sha256.clone(),
        },
        notes: spec.notes.clone(),
        normalization: record.normalization.clone(),
        verification: local_contract.verification.clone(),
    };
    let ahead = early
        .as_ref()
        .map(|e| format!(" ({} uploaded while normalizing)", e.uploaded()))
        .unwrap_or_default();
    progress.message(
        Stage::Publish,
        &format!(
            "publishing {} file(s) to {}{ahead}",
            files.len(),
            target.backend.as_str()
        ),
    );
    let set = publish::publish_after(&target, &files, &meta, early, cancel).await?;
    progress.message(
        Stage::Publish,
        &format!(
            "published ({} uploaded, {} already present); manifest {}",
            set.uploaded, set.skipped, set.manifest_url
        ),
    );
    if set.files.is_empty() {
        return Err(EngineError::Publish(PublishError::Config(
            "nothing was published".into(),
        )));
    }
    let mut c = local_contract;
    set.apply_to(&mut c);
    Ok(c)
}
