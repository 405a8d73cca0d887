//! The create pipeline: one spec in, one artifact contract out.
//!
//! ```text
//! validate → resolve settings → fingerprint → lock fp → cache hit? ──yes──────────────┐
//!                                                  └─no→ fetch ISO → preflight → build │
//!                                                        → smoke verify → normalize+hash → commit entry
//!   → deliver to artifact_local_path → (publish) → evict (cache limits) → ArtifactContract
//! ```
//!
//! Eviction runs last, still under this create's fingerprint lock, so the entry just used is in
//! use and kept; its failure is logged, never the create's.
//!
//! `timeouts.create` (Go duration, default `3h`) and the caller's [`CancellationToken`] both cancel
//! one child token that every step honours: running builders get SIGTERM, a grace period and
//! SIGKILL for their whole process group; staging directories are removed; nothing is claimed.
//! `max_parallel_builds` is a process-wide semaphore around the build steps (a cache hit takes no
//! slot). Concurrent creates of one fingerprint serialize on the cache lock, so the second one
//! reuses the first one's entry.
//!
//! Knows nothing about Terraform; progress leaves through [`Progress`].
//!
//! Files: this one (entry, timeout, cache decision), `fresh` (a cache miss: fetch, preflight,
//! build, verify, normalize, commit), `deliver` (placing files at `artifact_local_path`),
//! `outcome` (local and published contracts), `verification` (the smoke gate's record beside the
//! cache entry).

mod deliver;
mod fresh;
mod outcome;
mod verification;

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::engine::build::BuildSettings;
use crate::engine::cache::{self, BuildCache};
use crate::engine::contract::ArtifactContract;
use crate::engine::duration::parse_go_duration;
use crate::engine::env::EngineEnv;
use crate::engine::error::EngineError;
use crate::engine::hyops_state;
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::PublishTarget;
use crate::engine::spec::ImageSpec;
use crate::engine::validate::validate_spec;

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
        Some(p) => {
            let mut target =
                PublishTarget::resolve(p, env.store_settings(), Some(env.runtime_root()))?;
            // Publish-command logs live with the cache (kept and named in the error on failure).
            let logs = env.cache_dir().join("logs");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&logs)
                .map_err(|e| EngineError::io(format!("creating {}", logs.display()), e))?;
            target.command_log_dir = Some(logs);
            target.check_credential().await?;
            Some(target)
        }
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
pub(super) struct StageCell(Mutex<&'static str>);

impl StageCell {
    pub(super) fn set(&self, stage: Stage) {
        if let Ok(mut s) = self.0.lock() {
            *s = stage.as_str();
        }
    }
    fn get(&self) -> &'static str {
        self.0.lock().map(|s| *s).unwrap_or("create")
    }
}

/// Build slots per configured `max_parallel_builds` value (process-wide).
pub(super) fn build_slots(max: u32) -> Arc<Semaphore> {
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
pub(super) fn build_id(key: &str, now: time::OffsetDateTime, fp: &str) -> String {
    let ts = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    format!("{key}-{ts}-{}", &fp[..8])
}

pub(super) fn rfc3339(t: time::OffsetDateTime) -> String {
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
    let fingerprint = cache::fingerprint(spec, settings, cancel).await?;
    let fp = fingerprint.hex.clone();
    let cache = BuildCache::new(env.cache_dir());
    let _lock = cache.lock(&fp, cancel).await?;
    let mut warnings = Vec::new();
    let hit = if spec.rebuild_if_exists {
        None
    } else {
        cache.lookup(&fp)
    };
    let (record, cache_hit, build_log, early) = match hit {
        Some(record) => {
            cache.touch(&fp);
            progress.message(
                Stage::Build,
                &format!("build cache hit {} (build {})", &fp[..12], record.build_id),
            );
            (record, true, None, None)
        }
        None => {
            let fresh = fresh::build_fresh(
                spec,
                env,
                settings,
                target,
                &fingerprint,
                &cache,
                cancel,
                progress,
                stage,
            )
            .await?;
            (fresh.record, false, Some(fresh.log), fresh.early)
        }
    };
    warnings.extend(record.warnings.iter().cloned());
    let entry = cache.entry_dir(&fp);
    let local = deliver::deliver(spec, &record, &entry).await?;
    let mut contract = outcome::local_contract(spec, &record, &local);
    contract.verification = verification::read(&entry);
    if cache_hit {
        stage.set(Stage::Verify);
        let (v, w) = verification::reverify_cached(
            spec,
            settings,
            env,
            &record,
            &entry,
            contract.verification.take(),
            cancel,
            progress,
        )
        .await?;
        contract.verification = v;
        warnings.extend(w);
    }
    if let Some(target) = target {
        stage.set(Stage::Publish);
        contract = outcome::publish_step(
            spec, settings, target, &record, &local, contract, early, cancel, progress,
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
    evict_after_create(env, progress).await;
    Ok(CreateOutcome {
        contract,
        warnings,
        cache_hit,
        cache_entry: entry,
        build_log,
    })
}

/// After a successful create (still holding this create's fingerprint lock, so its own entry is
/// in use and kept): enforce `cache_max_size_gb` and the failed-work/log age. Skipped when another
/// prune of this cache runs; a problem is logged, never fails the create.
async fn evict_after_create(env: &EngineEnv, progress: &dyn Progress) {
    let policy = cache::eviction::PrunePolicy {
        max_size_bytes: env.cache_max_size_bytes(),
        older_than: None,
        failed_max_age: env.cache_failed_max_age(),
        dry_run: false,
    };
    let dir = env.cache_dir().to_owned();
    match tokio::task::spawn_blocking(move || cache::eviction::try_prune(&dir, &policy)).await {
        Ok(Ok(Some(report))) if !report.removed.is_empty() => progress.message(
            Stage::Publish,
            &format!(
                "build cache: removed {} item(s), {} → {} bytes of entries and ISOs",
                report.removed.len(),
                report.limited_size_before,
                report.limited_size_after
            ),
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("build cache eviction failed: {e}"),
        Err(e) => tracing::warn!("build cache eviction task failed: {e}"),
    }
}

/// `file://` URL of a local path.
pub(super) fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", path.display()))
}
