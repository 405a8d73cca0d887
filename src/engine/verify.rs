//! Smoke verify: the gate between a builder's output and everything after it.
//!
//! Default gate (no `smoke_verify.command`): `qemu-img info --output=json` must report a disk image
//! format the normalizer accepts (`qcow2` or `raw`; the *requested* format is produced by
//! normalization and checked after it) and a sane virtual size: at least 1 GiB (an installed VyOS
//! never fits below that, so anything smaller is a truncated or placeholder file) and at most
//! 16 TiB. For qcow2, `qemu-img check` must report no corruption (exit 0; exit 3, leaked clusters
//! only, is a warning).
//!
//! `smoke_verify.command` replaces the default gate: it runs via `/bin/bash -lc` with the DESIGN §2
//! environment contract (`HYOPS_VYOS_ARTIFACT_LOCAL_PATH` = the image) and must exit 0.
//! With `smoke_verify.required = false`, any failure becomes a warning instead of an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::engine::spec::SmokeVerifySpec;
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};

/// Smallest virtual size accepted by the default gate.
pub const MIN_VIRTUAL_SIZE: u64 = 1 << 30;
/// Largest virtual size accepted by the default gate.
pub const MAX_VIRTUAL_SIZE: u64 = 16 << 40;

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest<'a> {
    /// the builder's image
    pub image: &'a Path,
    /// the `smoke_verify` block
    pub smoke: &'a SmokeVerifySpec,
    /// contract environment (for a custom command)
    pub env: &'a BTreeMap<String, String>,
    /// working directory for a custom command
    pub workdir: &'a Path,
    /// log file (appended)
    pub log_path: &'a Path,
}

/// A passed (or, with `required = false`, tolerated) verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// format `qemu-img info` detected (default gate only)
    pub detected_format: Option<String>,
    /// virtual size `qemu-img info` reported (default gate only)
    pub virtual_size: Option<u64>,
    /// non-fatal findings
    pub warnings: Vec<String>,
    /// the gate failed and `required = false` let the build go on
    pub failure_tolerated: bool,
}

/// Smoke verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// a check ran and refused the image
    #[error("smoke verify refused {image}: {reason}")]
    Refused {
        /// the image
        image: PathBuf,
        /// why
        reason: String,
    },
    /// a check could not run, failed, was cancelled or timed out
    #[error("smoke verify: {0}")]
    Process(#[from] SupervisorError),
}

impl VerifyError {
    /// True when verification stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, VerifyError::Process(e) if e.is_cancelled())
    }
}

/// `qemu-img info --output=json` facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// detected format
    pub format: String,
    /// virtual size in bytes
    pub virtual_size: u64,
}

/// Run `qemu-img info --output=json` on `image`.
pub async fn qemu_img_info(
    image: &Path,
    log_path: &Path,
    cancel: &CancellationToken,
) -> Result<ImageInfo, VerifyError> {
    let spec = CommandSpec::program("qemu-img", log_path)
        .args(["info", "--output=json"])
        .arg(image)
        .capture_stdout();
    let out = supervisor::run(&spec, cancel).await?;
    let text = out.stdout.unwrap_or_default();
    let refused = |reason: String| VerifyError::Refused {
        image: image.to_owned(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| refused(format!("qemu-img info printed no JSON ({e})")))?;
    let format = v
        .get("format")
        .and_then(|f| f.as_str())
        .ok_or_else(|| refused("qemu-img info reported no format".to_owned()))?
        .to_owned();
    let virtual_size = v
        .get("virtual-size")
        .and_then(|s| s.as_u64().or_else(|| s.to_string().parse().ok()))
        .ok_or_else(|| refused("qemu-img info reported no virtual-size".to_owned()))?;
    Ok(ImageInfo {
        format,
        virtual_size,
    })
}

async fn default_gate(
    req: &VerifyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<VerifyOutcome, VerifyError> {
    let refused = |reason: String| VerifyError::Refused {
        image: req.image.to_owned(),
        reason,
    };
    let info = qemu_img_info(req.image, req.log_path, cancel).await?;
    if !matches!(info.format.as_str(), "qcow2" | "raw") {
        return Err(refused(format!(
            "format {} is not a disk image the normalizer accepts (qcow2 or raw)",
            info.format
        )));
    }
    if !(MIN_VIRTUAL_SIZE..=MAX_VIRTUAL_SIZE).contains(&info.virtual_size) {
        return Err(refused(format!(
            "virtual size {} bytes is outside the sane range 1 GiB ..= 16 TiB",
            info.virtual_size
        )));
    }
    let mut warnings = Vec::new();
    if info.format == "qcow2" {
        let spec = CommandSpec::program("qemu-img", req.log_path)
            .args(["check", "-f", "qcow2"])
            .arg(req.image);
        match supervisor::run(&spec, cancel).await {
            Ok(_) => {}
            Err(SupervisorError::Exited { code: Some(3), .. }) => warnings
                .push("qemu-img check: leaked clusters (harmless, no corruption)".to_owned()),
            Err(SupervisorError::Exited { code, tail, .. }) => {
                return Err(refused(format!(
                    "qemu-img check failed (exit {code:?}): {tail}"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(VerifyOutcome {
        detected_format: Some(info.format),
        virtual_size: Some(info.virtual_size),
        warnings,
        ..VerifyOutcome::default()
    })
}

/// Verify `req.image`. With `required = false` a failure is returned as a warning in an `Ok`.
/// Cancellation is always an error.
pub async fn smoke_verify(
    req: &VerifyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<VerifyOutcome, VerifyError> {
    let result = match &req.smoke.command {
        Some(script) if !script.trim().is_empty() => {
            let spec =
                CommandSpec::bash_script(script.clone(), "smoke_verify.command", req.log_path)
                    .cwd(req.workdir)
                    .envs(req.env.clone());
            supervisor::run(&spec, cancel)
                .await
                .map(|_| VerifyOutcome::default())
                .map_err(VerifyError::from)
        }
        _ => default_gate(req, cancel).await,
    };
    match result {
        Err(e) if !req.smoke.required && !e.is_cancelled() => Ok(VerifyOutcome {
            warnings: vec![format!("smoke verify failed but is not required: {e}")],
            failure_tolerated: true,
            ..VerifyOutcome::default()
        }),
        other => other,
    }
}
