//! The smoke gate's [`Verification`] of a build, kept beside the cache entry as
//! `verification.json` (written into staging before the entry is committed, so it moves with
//! it). A cache hit reads it back so the contract of a reused artifact says how that artifact was
//! verified. A sidecar rather than a field of the cache record: the record's schema belongs to the
//! cache; this file is optional (entries from before it existed simply have no verification).

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::engine::build::BuildSettings;
use crate::engine::cache::BuildRecord;
use crate::engine::contract::Verification;
use crate::engine::env::EngineEnv;
use crate::engine::error::EngineError;
use crate::engine::progress::{Progress, Stage};
use crate::engine::spec::ImageSpec;
use crate::engine::verify::boot::{self, BootError, BootRequest, BootSettings};
use crate::engine::verify::VerifyError;

const FILE: &str = "verification.json";

/// Write `v` into the staging directory `dir`.
pub(super) fn write(dir: &Path, v: &Verification) -> Result<(), EngineError> {
    let path = dir.join(FILE);
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| EngineError::io(format!("encoding {}", path.display()), e.into()))?;
    std::fs::write(&path, text)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

/// The verification recorded in the cache entry `dir`, if any.
pub(super) fn read(dir: &Path) -> Option<Verification> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A cache hit with boot verification enabled whose entry records no passed boot (built before
/// the check was enabled, or it failed under `required = false`): boot the cached primary file now,
/// so an artifact is never published as boot-verified on the strength of a build that was not.
/// Returns the verification to record (also written back beside the entry) and warnings.
#[allow(clippy::too_many_arguments)]
pub(super) async fn reverify_cached(
    spec: &ImageSpec,
    settings: &BuildSettings,
    env: &EngineEnv,
    record: &BuildRecord,
    entry: &Path,
    recorded: Option<Verification>,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<(Option<Verification>, Vec<String>), EngineError> {
    let boot = BootSettings::resolve(&spec.smoke_verify, settings)
        .map_err(|e| EngineError::invalid(format!("smoke_verify.boot.{}", e.field), e.message))?;
    let Some(boot) = boot else {
        return Ok((recorded, Vec::new()));
    };
    if recorded
        .as_ref()
        .and_then(|v| v.boot.as_ref())
        .is_some_and(|b| b.passed)
    {
        return Ok((recorded, Vec::new()));
    }
    let Some(primary) = record.files.first() else {
        return Ok((recorded, Vec::new()));
    };
    let format = if primary.format == "qcow2" {
        "qcow2"
    } else {
        "raw"
    };
    let image = entry.join(&primary.name);
    let logs = env.cache_dir().join("logs");
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let console_log = logs.join(format!("{}-reverify-{stamp}.console.log", record.build_id));
    let log_path = logs.join(format!("{}-reverify-{stamp}.log", record.build_id));
    let seed_dir = tempfile::Builder::new()
        .prefix("reverify-")
        .tempdir_in(env.cache_dir())
        .map_err(|e| EngineError::io("creating a seed directory", e))?;
    progress.message(
        Stage::Verify,
        &format!(
            "cached build {} has no passed boot verification: booting it (console log {})",
            record.build_id,
            console_log.display()
        ),
    );
    let mut v = recorded.unwrap_or_else(|| Verification {
        passed: true,
        gate: "qemu-img".to_owned(),
        boot: None,
    });
    let mut warnings = Vec::new();
    let result = boot::boot_verify(
        &BootRequest {
            image: &image,
            format,
            settings: &boot,
            work_dir: seed_dir.path(),
            console_log: &console_log,
            qemu_log: &log_path,
        },
        cancel,
    )
    .await;
    match result {
        Ok((report, warning)) => {
            warnings.extend(warning);
            v.boot = Some(report);
        }
        Err(error) => {
            let report = match &error {
                BootError::Failed { report, .. } => Some((**report).clone()),
                _ => None,
            };
            let err = VerifyError::Boot {
                image,
                error: Box::new(error),
            };
            if spec.smoke_verify.required || err.is_cancelled() {
                return Err(err.into());
            }
            warnings.push(format!("smoke verify failed but is not required: {err}"));
            v.passed = false;
            v.boot = report;
        }
    }
    write(entry, &v)?;
    Ok((Some(v), warnings))
}
