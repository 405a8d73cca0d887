//! A cache miss: fetch the ISO, take a build slot, preflight, build, smoke verify, normalize and
//! commit the cache entry.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{build_id, build_slots, file_url, rfc3339, StageCell};
use crate::engine::artifact::{self, ArtifactFile, NormalizeRequest};
use crate::engine::build::{self, contract_env, BuildContext, BuildSettings, ContractInputs};
use crate::engine::cache::{self, BuildCache, BuildRecord, Fingerprint, RecordFile};
use crate::engine::contract::Compression;
use crate::engine::contract::VyosMetadata;
use crate::engine::env::EngineEnv;
use crate::engine::error::EngineError;
use crate::engine::iso::{self, IsoRequest, VyosVersion};
use crate::engine::preflight::{self, PreflightReport, PreflightRequest, SystemProbes};
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::{EarlyUploads, LocalFile, PublishTarget, UploadQueue};
use crate::engine::spec::{BuildMethod, ImageSpec};
use crate::engine::verify::boot::BootSettings;
use crate::engine::verify::{self, VerifyRequest};

use super::verification;

#[allow(clippy::too_many_arguments)]
pub(super) async fn build_fresh(
    spec: &ImageSpec,
    env: &EngineEnv,
    settings: &BuildSettings,
    target: Option<&PublishTarget>,
    fingerprint: &Fingerprint,
    cache: &BuildCache,
    cancel: &CancellationToken,
    progress: &dyn Progress,
    stage: &StageCell,
) -> Result<Fresh, EngineError> {
    let fp = fingerprint.hex.as_str();
    let mut warnings = Vec::new();
    stage.set(Stage::Fetch);
    // Held (shared) while this build may read the ISO, so eviction keeps it; taken before the
    // acquire so the ISO cannot be evicted between the acquire and the build.
    let _iso_in_use = cache::lock::shared_in_use(
        &iso::in_use_lock_path(env.cache_dir(), &spec.source_iso_sha256),
        cancel,
    )
    .await?;
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
        source_iso_url: &iso::provenance_url(&spec.source_iso_url),
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
    let build_env = child_env(settings, contract);

    let boot = BootSettings::resolve(&spec.smoke_verify, settings)
        .map_err(|e| EngineError::invalid(format!("smoke_verify.boot.{}", e.field), e.message))?;

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
                work_dir: work.clone(),
                iso_bytes,
                iso_cache_dir: Some(env.cache_dir().join("iso")),
                iso_cached: true,
                disk_size_gb: settings.disk_size_gb,
                boot_accelerator: boot.as_ref().map(|b| b.accelerator),
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
    progress.message(
        Stage::Verify,
        if boot.is_some() {
            "smoke verify (image check, then boot under QEMU)"
        } else {
            "smoke verify"
        },
    );
    let console_log = logs.join(format!("{build_id}.console.log"));
    let verified = verify::smoke_verify(
        &VerifyRequest {
            image: &build_output,
            smoke: &spec.smoke_verify,
            boot: boot.as_ref(),
            env: &build_env,
            workdir: &work,
            log_path: &log_path,
            console_log: &console_log,
        },
        cancel,
    )
    .await?;
    warnings.extend(verified.warnings);
    if let Some(b) = &verified.verification.boot {
        progress.message(
            Stage::Verify,
            &format!(
                "boot verification {} under {} in {:.1}s (console log {})",
                if b.passed {
                    "passed"
                } else {
                    "FAILED (not required)"
                },
                b.accelerator,
                b.seconds_total,
                console_log.display()
            ),
        );
    }
    verification::write(staging.path(), &verified.verification)?;

    stage.set(Stage::Normalize);
    progress.message(
        Stage::Normalize,
        &format!("normalizing ({}) and hashing", settings.normalize.as_str()),
    );
    // Uploads start as soon as each file is hashed (the store fetches its token meanwhile), so
    // the extra encodings are made while the primary uploads.
    let queue = target.and_then(|t| {
        UploadQueue::start(t, &spec.artifact_key, &artifact_version, cancel)
            // The publish step after the cache commit meets (and reports) the same problem, so
            // the build is kept.
            .unwrap_or_else(|e| {
                tracing::info!(error = %e, "no uploads while normalizing");
                None
            })
    });
    let normalized = artifact::normalize_each(
        &NormalizeRequest {
            input: &build_output,
            input_format: verified.detected_format.as_deref(),
            gate_passed: verified.verification.passed,
            format: spec.artifact_format,
            extras: &spec.additional_formats,
            mode: settings.normalize,
            out_dir: staging.path(),
            artifact_key: &spec.artifact_key,
            // No backend needs a precomputed md5 (DESIGN §7): GCS checks the declared crc32c,
            // Azure computes Content-MD5 block by block while uploading, S3 checks its own
            // checksums. Leaving it out keeps the hashing pass at SHA-NI speed.
            want_md5: false,
        },
        cancel,
        &mut |file| {
            if let Some(q) = &queue {
                q.push(local_file(file));
            }
        },
    )
    .await?;
    progress.message(
        Stage::Normalize,
        &format!(
            "primary {} ({} from {})",
            normalized.normalization.action,
            spec.artifact_format.as_str(),
            normalized.normalization.source_format
        ),
    );
    let early = match queue {
        Some(q) => Some(q.finish().await),
        None => None,
    };
    let files = normalized.files;
    let _ = tokio::fs::remove_dir_all(&work).await;
    let record = BuildRecord {
        schema: cache::RECORD_SCHEMA,
        fingerprint: fp.to_owned(),
        inputs: fingerprint.inputs.clone(),
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
        normalization: Some(normalized.normalization),
    };
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled { stage: "normalize" });
    }
    // The build is kept even when an upload failed: a retry publishes it without rebuilding.
    cache.commit(fp, staging, &record)?;
    let early = early.transpose()?;
    Ok(Fresh {
        record,
        log: log_path,
        early,
    })
}

/// A fresh build: its cache record, its log, and the uploads already made while normalizing.
pub(super) struct Fresh {
    pub(super) record: BuildRecord,
    pub(super) log: PathBuf,
    pub(super) early: Option<EarlyUploads>,
}

/// A normalized file as the publish layer takes it.
fn local_file(f: &ArtifactFile) -> LocalFile {
    LocalFile {
        path: f.path.clone(),
        format: f.format.clone(),
        compression: Compression::from_format(&f.format),
        sha256: f.sha256.clone(),
        crc32c: f.crc32c,
        md5: f
            .md5
            .as_deref()
            .and_then(|m| hex::decode(m).ok())
            .and_then(|b| b.try_into().ok()),
        size: f.size,
        virtual_size: f.virtual_size,
    }
}

/// What every operator child of this create gets on top of the supervisor's base allow-list: the
/// `build.pass_environment` values, then `build.environment`, then the contract variables (which
/// win).
pub(super) fn child_env(
    settings: &BuildSettings,
    contract: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut env = settings.passed_env();
    env.extend(settings.environment.clone());
    env.extend(contract);
    env
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
