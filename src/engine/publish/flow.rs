//! [`publish`]: upload every file under its content-addressed name, confirm each with a `head`,
//! then write `manifest.json` last. Re-publishing identical files uploads nothing; an identical
//! existing manifest is kept (its `published_at` stays the first publication's).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::command::{run_publish_command, PublishCommand};
use super::layout::ObjectLayout;
use super::overlap::{EarlyDone, EarlyUploads};
use super::remote::verify_url;
use super::store::{PutOutcome, RemoteObject, Store, UploadSource};
use super::{PublishError, PublishTarget};
use crate::engine::contract::{
    ArtifactContract, Compression, Manifest, ManifestFile, Normalization, SourceIso, VyosMetadata,
    MANIFEST_SCHEMA_VERSION,
};

use super::layout::MANIFEST_LIMIT;

/// A finished local file with its digests (from the artifact stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// the file
    pub path: PathBuf,
    /// `qcow2`, `raw`, `img`, `raw.xz`, `raw.zst`, `raw.gz` (also the extension)
    pub format: String,
    /// compression of the file as stored
    pub compression: Compression,
    /// SHA-256, lowercase hex
    pub sha256: String,
    /// CRC-32C
    pub crc32c: u32,
    /// MD5, when computed
    pub md5: Option<[u8; 16]>,
    /// size in bytes
    pub size: u64,
    /// virtual disk size
    pub virtual_size: u64,
}

/// Build facts recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestMeta {
    /// `artifact_key`
    pub artifact_key: String,
    /// `artifact_version`
    pub artifact_version: String,
    /// `build_id`
    pub build_id: String,
    /// `built_at` (RFC 3339)
    pub built_at: String,
    /// from the ISO's `version.json`
    pub vyos: VyosMetadata,
    /// source ISO provenance
    pub source_iso: SourceIso,
    /// `notes`
    pub notes: Option<String>,
    /// what normalization did (recorded in the manifest)
    pub normalization: Option<Normalization>,
    /// what the smoke gate ran and found (into the manifest)
    pub verification: Option<crate::engine::contract::Verification>,
}

/// One published, verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// the format
    pub format: String,
    /// object name (empty for a publish command)
    pub object: String,
    /// public URL
    pub url: String,
    /// storage URI
    pub storage_uri: String,
    /// SHA-256 hex
    pub sha256: String,
    /// size in bytes
    pub size: u64,
    /// `remote_checksum`
    pub remote_checksum: String,
    /// `remote_generation`
    pub remote_generation: String,
    /// false when an identical object was already there
    pub uploaded: bool,
}

/// What [`publish`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedSet {
    /// per file, in input order (the first is the primary artifact)
    pub files: Vec<PublishedFile>,
    /// the manifest as stored
    pub manifest: Manifest,
    /// public URL of `manifest.json` (empty for a publish command)
    pub manifest_url: String,
    /// storage URI of `manifest.json` (empty for a publish command)
    pub manifest_storage_uri: String,
    /// files actually uploaded
    pub uploaded: usize,
    /// files found identical and skipped
    pub skipped: usize,
}

impl PublishedSet {
    /// Updates a local contract (as the create path builds it, `artifacts` keyed
    /// `<artifact_key>` for the primary file and `<artifact_key>+<format>` for the others) with
    /// the published URLs, checksums and manifest URL, and marks it published.
    pub fn apply_to(&self, c: &mut ArtifactContract) {
        if let Some(p) = self.files.first() {
            c.artifact_url = p.url.clone();
            c.artifact_storage_uri = p.storage_uri.clone();
            c.remote_checksum = p.remote_checksum.clone();
            c.remote_generation = p.remote_generation.clone();
        }
        for (i, f) in self.files.iter().enumerate() {
            let key = if i == 0 {
                c.artifact_key.clone()
            } else {
                format!("{}+{}", c.artifact_key, f.format)
            };
            if let Some(e) = c.artifacts.get_mut(&key) {
                e.artifact_url = f.url.clone();
            }
        }
        c.manifest_url = self.manifest_url.clone();
        c.published = true;
        c.published_at = self.manifest.published_at.clone();
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl LocalFile {
    /// What a store needs to upload this file with its declared checksums.
    pub(super) fn upload_source(&self) -> UploadSource<'_> {
        UploadSource {
            path: &self.path,
            size: self.size,
            sha256: &self.sha256,
            crc32c: self.crc32c,
            md5: self.md5,
            content_type: content_type(&self.format),
        }
    }
}

pub(super) fn content_type(format: &str) -> &'static str {
    match Compression::from_format(format) {
        Compression::Xz => "application/x-xz",
        Compression::Zstd => "application/zstd",
        Compression::Gzip => "application/gzip",
        Compression::None => "application/octet-stream",
    }
}

/// Publishes `files` (the first is the primary artifact) to `target` and writes the manifest.
pub async fn publish(
    target: &PublishTarget,
    files: &[LocalFile],
    meta: &ManifestMeta,
    cancel: &CancellationToken,
) -> Result<PublishedSet, PublishError> {
    publish_after(target, files, meta, None, cancel).await
}

/// [`publish`] after an [`UploadQueue`](super::UploadQueue) already uploaded some of the files:
/// those (same object name and sha256) are not sent again, only confirmed with a `head`; the
/// queue's store (and its token) is reused.
pub async fn publish_after(
    target: &PublishTarget,
    files: &[LocalFile],
    meta: &ManifestMeta,
    early: Option<EarlyUploads>,
    cancel: &CancellationToken,
) -> Result<PublishedSet, PublishError> {
    let primary = files
        .first()
        .ok_or_else(|| PublishError::Config("nothing to publish".into()))?;
    let mut seen = std::collections::BTreeSet::new();
    for f in files {
        if !seen.insert(f.format.as_str()) {
            return Err(PublishError::Config(format!(
                "format {} given twice",
                f.format
            )));
        }
    }
    let layout = ObjectLayout::new(
        &target.prefix,
        &meta.artifact_key,
        &meta.artifact_version,
        &primary.sha256,
    )?;
    if let Some(command) = &target.command {
        return publish_by_command(target, command, files, meta, cancel).await;
    }
    let (store, done): (Arc<dyn Store>, _) = match early {
        Some(e) => (e.store, e.done),
        None => (Arc::from(target.store()?), Default::default()),
    };
    if let Some(id) = &target.reference_id {
        // claimed before anything is adopted or uploaded, so a concurrent destroy sees it (an
        // upload queue claimed already; claiming the same id again changes nothing)
        super::refs::claim(store.as_ref(), layout.dir(), id, &meta.artifact_key, cancel).await?;
    }
    let result = publish_files(store.as_ref(), &layout, files, meta, &done, cancel).await;
    if let (Err(_), Some(id)) = (&result, &target.reference_id) {
        if let Err(e) = super::refs::drop_claim(store.as_ref(), layout.dir(), id).await {
            tracing::warn!(error = %e, "could not remove this create's reference after the failure");
        }
    }
    result
}

async fn publish_files(
    store: &dyn Store,
    layout: &ObjectLayout,
    files: &[LocalFile],
    meta: &ManifestMeta,
    done: &EarlyDone,
    cancel: &CancellationToken,
) -> Result<PublishedSet, PublishError> {
    let mut published = Vec::with_capacity(files.len());
    let (mut uploaded, mut skipped) = (0, 0);
    for f in files {
        let name = layout.artifact(&f.format)?;
        let src = f.upload_source();
        let outcome = match done.get(&f.format) {
            Some((object, sha256, outcome)) if *object == name && *sha256 == f.sha256 => {
                outcome.clone()
            }
            _ => store.put_file_if_absent(&name, &src, cancel).await?,
        };
        let was_uploaded = matches!(outcome, PutOutcome::Created(_));
        if was_uploaded {
            uploaded += 1;
        } else {
            skipped += 1;
        }
        let remote = confirm(store, &name, &src).await?;
        published.push(PublishedFile {
            format: f.format.clone(),
            object: name.clone(),
            url: store.public_url(&name),
            storage_uri: store.storage_uri(&name),
            sha256: f.sha256.clone(),
            size: f.size,
            remote_checksum: remote.checksum_string(),
            remote_generation: remote.generation.clone().unwrap_or_default(),
            uploaded: was_uploaded,
        });
    }
    tracing::info!(uploaded, skipped, "artifact files published");
    let manifest = build_manifest(meta, files, &published, now_rfc3339());
    let manifest = write_manifest(store, &layout.manifest(), manifest, cancel).await?;
    let name = layout.manifest();
    // A last user's destroy that listed references before our claim may have deleted what we
    // adopted; say so instead of claiming a published artifact that is not there. One listing
    // (cheap everywhere; a `head` of the file backend hashes the whole file).
    let present: std::collections::BTreeSet<String> = store
        .list(layout.dir())
        .await?
        .into_iter()
        .map(|o| o.name)
        .collect();
    for f in published
        .iter()
        .map(|p| p.object.as_str())
        .chain([name.as_str()])
    {
        if !present.contains(f) {
            return Err(PublishError::Transient {
                store: store.storage_uri(""),
                attempts: 1,
                detail: format!(
                    "{f} was deleted while this create adopted it (another instance's destroy \
                     released it as its last user); apply again to publish it anew"
                ),
            });
        }
    }
    Ok(PublishedSet {
        files: published,
        manifest,
        manifest_url: store.public_url(&name),
        manifest_storage_uri: store.storage_uri(&name),
        uploaded,
        skipped,
    })
}

/// `head` must confirm the object with the right size and checksum.
async fn confirm(
    store: &dyn Store,
    name: &str,
    src: &UploadSource<'_>,
) -> Result<RemoteObject, PublishError> {
    let remote = store.head(name).await?;
    remote
        .matches_source(src)
        .map_err(|detail| PublishError::Mismatch {
            store: store.storage_uri(""),
            object: name.to_owned(),
            detail,
        })?;
    Ok(remote)
}

fn build_manifest(
    meta: &ManifestMeta,
    files: &[LocalFile],
    published: &[PublishedFile],
    published_at: String,
) -> Manifest {
    Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        artifact_key: meta.artifact_key.clone(),
        artifact_version: meta.artifact_version.clone(),
        artifact_format: files.first().map(|f| f.format.clone()).unwrap_or_default(),
        build_id: meta.build_id.clone(),
        built_at: meta.built_at.clone(),
        published_at,
        vyos: meta.vyos.clone(),
        source_iso: meta.source_iso.clone(),
        notes: meta.notes.clone(),
        verification: meta.verification.clone(),
        files: files
            .iter()
            .zip(published)
            .map(|(f, p)| {
                ManifestFile {
                    format: f.format.clone(),
                    compression: f.compression,
                    object: p.object.clone(),
                    url: p.url.clone(),
                    storage_uri: p.storage_uri.clone(),
                    sha256: f.sha256.clone(),
                    size_bytes: f.size,
                    virtual_size_bytes: f.virtual_size,
                    remote_checksum: p.remote_checksum.clone(),
                    remote_generation: p.remote_generation.clone(),
                    ..Default::default()
                }
                .with_hints(&meta.artifact_key)
            })
            .collect(),
        normalization: meta.normalization.clone(),
    }
}

/// The files two manifests describe are the same (object, sha256, size, in order).
fn same_files(a: &Manifest, b: &Manifest) -> bool {
    a.files.len() == b.files.len()
        && a.files.iter().zip(&b.files).all(|(x, y)| {
            x.object == y.object && x.sha256 == y.sha256 && x.size_bytes == y.size_bytes
        })
}

async fn existing_manifest(
    store: &dyn Store,
    name: &str,
    ours: Manifest,
) -> Result<Manifest, PublishError> {
    let bytes = store.read_small(name, MANIFEST_LIMIT).await?;
    let theirs: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| PublishError::AlreadyExistsDifferent {
            store: store.storage_uri(""),
            object: name.to_owned(),
            detail: format!("existing manifest is unreadable: {e}"),
        })?;
    if same_files(&theirs, &ours) {
        tracing::info!(object = name, "identical manifest already published; kept");
        Ok(theirs)
    } else {
        Err(PublishError::AlreadyExistsDifferent {
            store: store.storage_uri(""),
            object: name.to_owned(),
            detail: "existing manifest lists other files".into(),
        })
    }
}

async fn write_manifest(
    store: &dyn Store,
    name: &str,
    manifest: Manifest,
    cancel: &CancellationToken,
) -> Result<Manifest, PublishError> {
    match store.head(name).await {
        Ok(_) => return existing_manifest(store, name, manifest).await,
        Err(PublishError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| PublishError::Config(format!("manifest serialization: {e}")))?;
    text.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix("hyops-manifest-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| PublishError::local(&std::env::temp_dir(), e))?;
    tmp.write_all(&text)
        .and_then(|()| tmp.flush())
        .map_err(|e| PublishError::local(tmp.path(), e))?;
    let sha = hex::encode(Sha256::digest(&text));
    let md5: [u8; 16] = {
        use md5::Digest as _;
        md5::Md5::digest(&text).into()
    };
    let src = UploadSource {
        path: tmp.path(),
        size: text.len() as u64,
        sha256: &sha,
        crc32c: crc32c::crc32c(&text),
        md5: Some(md5),
        content_type: "application/json",
    };
    match store.put_file_if_absent(name, &src, cancel).await {
        Ok(_) => {}
        Err(PublishError::AlreadyExistsDifferent { .. }) => {
            return existing_manifest(store, name, manifest).await
        }
        Err(e) => return Err(e),
    }
    confirm(store, name, &src).await?;
    Ok(manifest)
}

async fn publish_by_command(
    target: &PublishTarget,
    command: &str,
    files: &[LocalFile],
    meta: &ManifestMeta,
    cancel: &CancellationToken,
) -> Result<PublishedSet, PublishError> {
    let mut published = Vec::with_capacity(files.len());
    for f in files {
        let mut env = target.command_env.clone();
        env.extend(target.repo_env());
        env.insert("HYOPS_VYOS_ARTIFACT_KEY".into(), meta.artifact_key.clone());
        env.insert(
            "HYOPS_VYOS_ARTIFACT_VERSION".into(),
            meta.artifact_version.clone(),
        );
        env.insert("HYOPS_VYOS_ARTIFACT_FORMAT".into(), f.format.clone());
        env.insert(
            "HYOPS_VYOS_ARTIFACT_LOCAL_PATH".into(),
            f.path.to_string_lossy().into_owned(),
        );
        env.insert(
            "HYOPS_VYOS_SOURCE_ISO_URL".into(),
            meta.source_iso.url.clone(),
        );
        let log_dir = target
            .command_log_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let log = tempfile::Builder::new()
            .prefix(&format!("hyops-publish-{}-", f.format))
            .suffix(".log")
            .tempfile_in(&log_dir)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(|e| PublishError::local(&log_dir, e))?;
        let run = PublishCommand {
            command,
            workdir: target.workdir.as_deref(),
            env: &env,
            credential: target.gcs_account.as_ref(),
            log_path: &log.1,
        };
        let url = run_publish_command(&run, cancel).await?;
        if target.command_log_dir.is_none() {
            // A log in the shared temp dir is only worth keeping when it explains a failure.
            let _ = std::fs::remove_file(&log.1);
        }
        let remote = verify_url(&url, f.size, &f.sha256, target.settings()).await?;
        published.push(PublishedFile {
            format: f.format.clone(),
            object: String::new(),
            url: url.clone(),
            storage_uri: url,
            sha256: f.sha256.clone(),
            size: f.size,
            remote_checksum: remote.checksum_string(),
            remote_generation: remote.generation.clone().unwrap_or_default(),
            uploaded: true,
        });
    }
    let n = published.len();
    let manifest = build_manifest(meta, files, &published, now_rfc3339());
    Ok(PublishedSet {
        files: published,
        manifest,
        manifest_url: String::new(),
        manifest_storage_uri: String::new(),
        uploaded: n,
        skipped: 0,
    })
}
