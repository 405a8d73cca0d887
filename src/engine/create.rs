//! The create pipeline: one spec in, one artifact contract out.
//!
//! ```text
//! validate → resolve settings → fingerprint → lock fp → cache hit? ──yes──────────────┐
//!                                                  └─no→ fetch ISO → preflight → build │
//!                                                        → smoke verify → normalize+hash → commit entry
//!   → deliver to artifact_local_path → (publish) → ArtifactContract
//! ```
//!
//! `timeouts.create` (Go duration, default `3h`) and the caller's [`CancellationToken`] both cancel
//! one child token that every step honours: running builders get SIGTERM, a grace period and
//! SIGKILL for their whole process group; staging directories are removed; nothing is claimed.
//! `max_parallel_builds` is a process-wide semaphore around the build steps (a cache hit takes no
//! slot). Concurrent creates of one fingerprint serialize on the cache lock, so the second one
//! reuses the first one's entry.
//!
//! Knows nothing about Terraform; progress leaves through [`Progress`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::engine::artifact::{self, ArtifactFile};
use crate::engine::build::{self, contract_env, BuildContext, BuildSettings, ContractInputs};
use crate::engine::cache::{self, BuildCache, BuildRecord, RecordFile};
use crate::engine::contract::{
    ArtifactContract, ArtifactEntry, Compression, SourceIso, VyosMetadata,
};
use crate::engine::duration::parse_go_duration;
use crate::engine::env::EngineEnv;
use crate::engine::error::EngineError;
use crate::engine::hyops_state;
use crate::engine::iso::{self, IsoRequest, VyosVersion};
use crate::engine::preflight::{self, PreflightReport, PreflightRequest, SystemProbes};
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::{self, LocalFile, ManifestMeta, PublishError, PublishTarget};
use crate::engine::spec::{BuildMethod, ImageSpec};
use crate::engine::validate::validate_spec;
use crate::engine::verify::{self, VerifyRequest};

/// Default `timeouts.create`.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// A successful create.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    /// the artifact contract
    pub contract: ArtifactContract,
    /// non-fatal findings (TCG, optional smoke verify failed, ISO warnings, …)
    pub warnings: Vec<String>,
    /// true when the build cache supplied the artifact (no builder ran)
    pub cache_hit: bool,
    /// the build cache entry holding the verified files
    pub cache_entry: PathBuf,
    /// the build log, when a build ran
    pub build_log: Option<PathBuf>,
}

/// Run the create path for `spec`.
pub async fn create(
    spec: &ImageSpec,
    env: &EngineEnv,
    cancel: CancellationToken,
    progress: &dyn Progress,
) -> Result<CreateOutcome, EngineError> {
    let problems = validate_spec(spec, env);
    if !problems.is_empty() {
        return Err(EngineError::Invalid(problems));
    }
    let settings = BuildSettings::resolve(&spec.build, env)
        .map_err(|e| EngineError::invalid(format!("build.{}", e.field), e.message))?;
    let timeout = match &spec.timeouts.create {
        Some(t) => parse_go_duration(t)
            .map_err(|e| EngineError::invalid("timeouts.create", e.to_string()))?,
        None => DEFAULT_CREATE_TIMEOUT,
    };
    // Resolve the publish target before any build work, so configuration and credential
    // problems surface first.
    let target = match &spec.publish {
        Some(p) => Some(PublishTarget::resolve(
            p,
            env.store_settings(),
            Some(env.runtime_root()),
        )?),
        None => None,
    };
    let op = cancel.child_token();
    let stage = StageCell::default();
    let fut = create_inner(spec, env, &settings, target.as_ref(), &op, progress, &stage);
    tokio::pin!(fut);
    let mut timed_out = false;
    let result = tokio::select! {
        r = &mut fut => r,
        _ = tokio::time::sleep(timeout) => {
            timed_out = true;
            op.cancel();
            fut.await
        }
    };
    match result {
        Err(e) if op.is_cancelled() || e.caused_by_cancellation() => {
            let stage = stage.get();
            tracing::info!(stage, timed_out, "create stopped: {e}");
            if timed_out {
                Err(EngineError::TimedOut {
                    after: timeout,
                    stage,
                })
            } else {
                Err(EngineError::Cancelled { stage })
            }
        }
        other => other,
    }
}

/// The stage currently running (for cancellation messages).
#[derive(Debug, Default)]
struct StageCell(Mutex<&'static str>);

impl StageCell {
    fn set(&self, stage: Stage) {
        if let Ok(mut s) = self.0.lock() {
            *s = stage.as_str();
        }
    }
    fn get(&self) -> &'static str {
        self.0.lock().map(|s| *s).unwrap_or("create")
    }
}

/// Build slots per configured `max_parallel_builds` value (process-wide).
fn build_slots(max: u32) -> Arc<Semaphore> {
    static SLOTS: OnceLock<Mutex<HashMap<u32, Arc<Semaphore>>>> = OnceLock::new();
    let map = SLOTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = match map.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    guard
        .entry(max.max(1))
        .or_insert_with(|| Arc::new(Semaphore::new(max.max(1) as usize)))
        .clone()
}

/// `<artifact_key>-<UTC yyyymmddThhmmssZ>-<fp[..8]>`
fn build_id(key: &str, now: time::OffsetDateTime, fp: &str) -> String {
    let ts = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    format!("{key}-{ts}-{}", &fp[..8])
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn create_inner(
    spec: &ImageSpec,
    env: &EngineEnv,
    settings: &BuildSettings,
    target: Option<&PublishTarget>,
    cancel: &CancellationToken,
    progress: &dyn Progress,
    stage: &StageCell,
) -> Result<CreateOutcome, EngineError> {
    let fp = cache::fingerprint(spec, settings)?;
    let cache = BuildCache::new(env.cache_dir());
    let _lock = cache.lock(&fp, cancel).await?;
    let mut warnings = Vec::new();
    let hit = if spec.rebuild_if_exists {
        None
    } else {
        cache.lookup(&fp)
    };
    let (record, cache_hit, build_log) = match hit {
        Some(record) => {
            progress.message(
                Stage::Build,
                &format!("build cache hit {} (build {})", &fp[..12], record.build_id),
            );
            (record, true, None)
        }
        None => {
            let (record, log) = build_fresh(
                spec, env, settings, target, &fp, &cache, cancel, progress, stage,
            )
            .await?;
            (record, false, Some(log))
        }
    };
    warnings.extend(record.warnings.iter().cloned());
    let entry = cache.entry_dir(&fp);
    let local = deliver(spec, &record, &entry).await?;
    let mut contract = local_contract(spec, &record, &local);
    if let Some(target) = target {
        stage.set(Stage::Publish);
        contract = publish_step(
            spec, settings, target, &record, &local, contract, cancel, progress,
        )
        .await?;
    }
    if let Some(instance) = &spec.hyops_state_instance {
        let path = hyops_state::write_instance_state(env.runtime_root(), instance, &contract)?;
        progress.message(
            Stage::Publish,
            &format!("HyOps state written to {}", path.display()),
        );
    }
    Ok(CreateOutcome {
        contract,
        warnings,
        cache_hit,
        cache_entry: entry,
        build_log,
    })
}

#[allow(clippy::too_many_arguments)]
async fn build_fresh(
    spec: &ImageSpec,
    env: &EngineEnv,
    settings: &BuildSettings,
    target: Option<&PublishTarget>,
    fp: &str,
    cache: &BuildCache,
    cancel: &CancellationToken,
    progress: &dyn Progress,
    stage: &StageCell,
) -> Result<(BuildRecord, PathBuf), EngineError> {
    let mut warnings = Vec::new();
    stage.set(Stage::Fetch);
    let mut req = IsoRequest::new(
        spec.source_iso_url.clone(),
        spec.source_iso_sha256.clone(),
        env.cache_dir(),
    );
    req.mirror_url = spec.source_iso_mirror_url.clone();
    let iso = iso::acquire(&req, cancel, progress).await?;
    warnings.extend(iso.warnings.iter().cloned());
    let vyos_version = iso.version.as_ref().map(|v| v.version.clone());
    let vyos = iso.version.as_ref().map(vyos_metadata).unwrap_or_default();
    let artifact_version = spec
        .artifact_version
        .clone()
        .or_else(|| vyos_version.clone())
        .ok_or_else(|| {
            EngineError::invalid(
                "artifact_version",
                "not set and the ISO carries no readable /version.json; set artifact_version",
            )
        })?;

    let slots = build_slots(env.max_parallel_builds());
    let _slot = tokio::select! {
        permit = slots.acquire_owned() => permit.map_err(|_| EngineError::Cancelled { stage: "build" })?,
        _ = cancel.cancelled() => return Err(EngineError::Cancelled { stage: "build" }),
    };

    let now = time::OffsetDateTime::now_utc();
    let build_id = build_id(&spec.artifact_key, now, fp);
    let logs = env.cache_dir().join("logs");
    make_private_dir(&logs)?;
    let log_path = logs.join(format!("{build_id}.log"));
    let staging = cache.staging(fp)?;
    let work = staging.path().join("work");
    make_private_dir(&work)?;
    let ext = spec.artifact_format.as_str();
    let build_output = work.join(format!("{}.{ext}", spec.artifact_key));
    let final_local = spec.artifact_local_path.clone().unwrap_or_else(|| {
        cache
            .entry_dir(fp)
            .join(format!("{}.{ext}", spec.artifact_key))
    });
    // Published names are content-addressed, so the final URL is unknown until the image is
    // hashed: builders and smoke verify see the local file's URL.
    let artifact_url = file_url(&final_local);
    let contract = contract_env(&ContractInputs {
        artifact_key: &spec.artifact_key,
        artifact_format: ext,
        artifact_version: &artifact_version,
        source_iso_url: &spec.source_iso_url,
        source_iso_path: Some(&iso.path),
        artifact_local_path: &build_output,
        artifact_url: &artifact_url,
        repo_backend: target.map(|t| t.backend),
        bucket: target.map(|t| t.bucket.as_str()),
        azure_storage_account: target.and_then(|t| t.azure_account.as_deref()),
        disk_size_gb: settings.disk_size_gb,
        cloud_init_datasources: if settings.cloud_init {
            &settings.cloud_init_datasources
        } else {
            &[]
        },
        guest_agent: &settings.guest_agent,
    });
    let mut build_env = settings.environment.clone();
    build_env.extend(contract);

    stage.set(Stage::Preflight);
    let report = if settings.skip_preflight {
        progress.message(Stage::Preflight, "skipped (build.skip_preflight)");
        PreflightReport::default()
    } else {
        let iso_bytes = std::fs::metadata(&iso.path).map(|m| m.len()).unwrap_or(0);
        let report = preflight::run_preflight(
            &SystemProbes,
            &PreflightRequest {
                method: settings.method,
                allow_tcg: settings.allow_tcg,
                work_dir: settings.workdir.clone().unwrap_or_else(|| work.clone()),
                iso_bytes,
                disk_size_gb: settings.disk_size_gb,
            },
        )
        .await?;
        progress.message(Stage::Preflight, "host checks passed");
        report
    };
    warnings.extend(report.warnings.iter().cloned());

    stage.set(Stage::Build);
    let builder = build::builder_for(settings.method);
    progress.message(
        Stage::Build,
        &format!(
            "building {build_id} with {} (log {})",
            builder.name(),
            log_path.display()
        ),
    );
    let ctx = BuildContext {
        settings,
        iso_path: &iso.path,
        iso_sha256: &iso.sha256,
        output_path: &build_output,
        work_dir: &work,
        log_path: &log_path,
        env: &build_env,
        accelerator: report.accelerator,
        use_sudo: report.use_sudo,
        cancel,
        progress,
    };
    if let Err(error) = builder.build(&ctx).await {
        let kept = if settings.method == BuildMethod::Packer && !error.is_cancelled() {
            keep_work_dir(env.cache_dir(), &work, &build_id)
        } else {
            None
        };
        return Err(EngineError::Build {
            error: Box::new(error),
            kept,
        });
    }

    stage.set(Stage::Verify);
    progress.message(Stage::Verify, "smoke verify");
    let verified = verify::smoke_verify(
        &VerifyRequest {
            image: &build_output,
            smoke: &spec.smoke_verify,
            env: &build_env,
            workdir: &work,
            log_path: &log_path,
        },
        cancel,
    )
    .await?;
    warnings.extend(verified.warnings);

    stage.set(Stage::Normalize);
    progress.message(Stage::Normalize, "normalizing and hashing");
    let files = artifact::normalize(
        &build_output,
        spec.artifact_format,
        &spec.additional_formats,
        staging.path(),
        &spec.artifact_key,
        spec.publish.is_some(),
        cancel,
    )
    .await?;
    let _ = tokio::fs::remove_dir_all(&work).await;
    let record = BuildRecord {
        schema: 1,
        fingerprint: fp.to_owned(),
        build_id,
        built_at: rfc3339(now),
        vyos_version,
        vyos,
        artifact_version,
        source_iso_sha256: iso.sha256.clone(),
        method: settings.method.as_str().to_owned(),
        tools: report.tools,
        warnings,
        files: files
            .iter()
            .map(record_file)
            .collect::<Result<Vec<_>, _>>()?,
    };
    cache.commit(fp, staging, &record)?;
    Ok((record, log_path))
}

fn record_file(f: &ArtifactFile) -> Result<RecordFile, EngineError> {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            EngineError::io("artifact without a file name", std::io::Error::other(""))
        })?;
    Ok(RecordFile {
        name,
        format: f.format.clone(),
        size: f.size,
        virtual_size: f.virtual_size,
        sha256: f.sha256.clone(),
        crc32c: f.crc32c,
        md5: f.md5.clone(),
        mtime_ns: cache::mtime_ns(&f.path)
            .map_err(|e| EngineError::io(format!("stat {}", f.path.display()), e))?,
    })
}

fn make_private_dir(dir: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))
}

/// Move a failed packer build's work directory (stage-1 disk) out of staging.
fn keep_work_dir(cache_dir: &Path, work: &Path, build_id: &str) -> Option<String> {
    let failed = cache_dir.join("failed");
    make_private_dir(&failed).ok()?;
    let dest = failed.join(build_id);
    std::fs::rename(work, &dest).ok()?;
    Some(dest.display().to_string())
}

fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", path.display()))
}

/// Where each cached file is delivered: the entry itself, or next to `artifact_local_path`.
struct Delivered {
    /// record file name → local path
    paths: BTreeMap<String, PathBuf>,
}

async fn deliver(
    spec: &ImageSpec,
    record: &BuildRecord,
    entry: &Path,
) -> Result<Delivered, EngineError> {
    let mut paths = BTreeMap::new();
    let Some(target) = &spec.artifact_local_path else {
        for f in &record.files {
            paths.insert(f.name.clone(), entry.join(&f.name));
        }
        return Ok(Delivered { paths });
    };
    let target = if target.is_absolute() {
        target.clone()
    } else {
        std::env::current_dir()
            .map_err(|e| EngineError::io("current directory", e))?
            .join(target)
    };
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    let primary_ext = format!(".{}", spec.artifact_format.as_str());
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file_name
        .strip_suffix(&primary_ext)
        .unwrap_or(&file_name)
        .to_owned();
    for (i, f) in record.files.iter().enumerate() {
        let dest = if i == 0 {
            target.clone()
        } else {
            dir.join(format!("{stem}.{}", f.format))
        };
        place(&entry.join(&f.name), &dest, f.size)?;
        paths.insert(f.name.clone(), dest);
    }
    Ok(Delivered { paths })
}

/// Put `src` at `dest` atomically (hard link when possible, else copy), unless it is already there.
fn place(src: &Path, dest: &Path, size: u64) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(a), Ok(b)) = (std::fs::metadata(src), std::fs::metadata(dest)) {
        if a.ino() == b.ino() && a.dev() == b.dev() {
            return Ok(());
        }
    }
    let dir = dest.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.hyops-tmp-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EngineError::io(format!("copying {} to {}", src.display(), tmp.display()), e)
        })?;
    }
    let copied = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    if copied != size {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io(
            format!("delivering {}", dest.display()),
            std::io::Error::other(format!("size {copied} != recorded {size}")),
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(format!("renaming into {}", dest.display()), e)
    })
}

/// The contract of a local (unpublished) artifact.
fn local_contract(spec: &ImageSpec, record: &BuildRecord, local: &Delivered) -> ArtifactContract {
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
                source_iso_url: spec.source_iso_url.clone(),
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
        source_iso_url: spec.source_iso_url.clone(),
        source_iso_sha256: record.source_iso_sha256.clone(),
        build_id: record.build_id.clone(),
        built_at: record.built_at.clone(),
        published: false,
        published_at: String::new(),
        remote_checksum: String::new(),
        remote_generation: String::new(),
        manifest_url: String::new(),
        artifacts,
    }
}

fn vyos_metadata(v: &VyosVersion) -> VyosMetadata {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    VyosMetadata {
        version: v.version.clone(),
        flavor: o(&v.flavor),
        architecture: o(&v.architecture),
        build_uuid: o(&v.build_uuid),
        build_git: o(&v.build_git),
        release_train: o(&v.release_train),
        built_on: o(&v.built_on),
    }
}

fn md5_bytes(hex_md5: Option<&str>) -> Option<[u8; 16]> {
    let bytes = hex::decode(hex_md5?).ok()?;
    bytes.try_into().ok()
}

/// Publish the delivered files and turn the local contract into the published one.
#[allow(clippy::too_many_arguments)]
async fn publish_step(
    spec: &ImageSpec,
    settings: &BuildSettings,
    target: &PublishTarget,
    record: &BuildRecord,
    local: &Delivered,
    local_contract: ArtifactContract,
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
    target.command_env = contract_env(&ContractInputs {
        artifact_key: &spec.artifact_key,
        artifact_format: spec.artifact_format.as_str(),
        artifact_version: &record.artifact_version,
        source_iso_url: &spec.source_iso_url,
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
    let meta = ManifestMeta {
        artifact_key: spec.artifact_key.clone(),
        artifact_version: record.artifact_version.clone(),
        build_id: record.build_id.clone(),
        built_at: record.built_at.clone(),
        vyos: record.vyos.clone(),
        source_iso: SourceIso {
            url: spec.source_iso_url.clone(),
            sha256: record.source_iso_sha256.clone(),
        },
        notes: spec.notes.clone(),
    };
    progress.message(
        Stage::Publish,
        &format!(
            "publishing {} file(s) to {}",
            files.len(),
            target.backend.as_str()
        ),
    );
    let set = publish::publish(&target, &files, &meta, cancel).await?;
    progress.message(
        Stage::Publish,
        &format!(
            "published ({} uploaded, {} already present); manifest {}",
            set.uploaded, set.skipped, set.manifest_url
        ),
    );
    let mut c = local_contract;
    for (i, (f, p)) in record.files.iter().zip(&set.files).enumerate() {
        let key = if i == 0 {
            spec.artifact_key.clone()
        } else {
            format!("{}+{}", spec.artifact_key, f.format)
        };
        if let Some(entry) = c.artifacts.get_mut(&key) {
            entry.artifact_url = p.url.clone();
        }
    }
    let primary = set.files.first().ok_or_else(|| {
        EngineError::Publish(PublishError::Config("nothing was published".into()))
    })?;
    c.artifact_url = primary.url.clone();
    c.artifact_storage_uri = primary.storage_uri.clone();
    c.remote_checksum = primary.remote_checksum.clone();
    c.remote_generation = primary.remote_generation.clone();
    c.published = true;
    c.published_at = set.manifest.published_at.clone();
    c.manifest_url = if set.manifest_url.is_empty() {
        set.manifest_storage_uri.clone()
    } else {
        set.manifest_url.clone()
    };
    Ok(c)
}
