//! Smoke verify: the gate between a builder's output and everything after it. Knows no store.
//!
//! 1. The image gate: by default `qemu-img info` + `qemu-img check` ([`image`]);
//!    `smoke_verify.command` replaces it (run via `/bin/bash -lc` with the DESIGN §2 environment
//!    contract, `HYOPS_VYOS_ARTIFACT_LOCAL_PATH` = the image; must exit 0).
//! 2. The boot check ([`boot`]), when `smoke_verify.boot` is enabled (the default for `packer`
//!    and `vyos-vm-images`): QEMU boots the image with a NoCloud seed; the console, the guest
//!    agent and cloud-init must show a working cloud image. Skipped when the image gate failed.
//!
//! With `smoke_verify.required = false`, any failure becomes a warning instead of an error and
//! the [`Verification`] records `passed = false`. Cancellation is always an error.

pub mod boot;
mod image;

pub use image::{qemu_img_info, ImageInfo, MAX_VIRTUAL_SIZE, MIN_VIRTUAL_SIZE};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::engine::contract::Verification;
use crate::engine::spec::SmokeVerifySpec;
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};
use boot::{BootError, BootRequest, BootSettings};

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest<'a> {
    /// the builder's image
    pub image: &'a Path,
    /// the `smoke_verify` block
    pub smoke: &'a SmokeVerifySpec,
    /// the resolved `smoke_verify.boot` block; `None`: no boot check
    pub boot: Option<&'a BootSettings>,
    /// contract environment (for a custom command)
    pub env: &'a BTreeMap<String, String>,
    /// working directory for a custom command (and the boot check's seed)
    pub workdir: &'a Path,
    /// log file (appended)
    pub log_path: &'a Path,
    /// serial console log of the boot check
    pub console_log: &'a Path,
}

/// A passed (or, with `required = false`, tolerated) verification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyOutcome {
    /// format `qemu-img info` detected (default gate only)
    pub detected_format: Option<String>,
    /// virtual size `qemu-img info` reported (default gate only)
    pub virtual_size: Option<u64>,
    /// non-fatal findings
    pub warnings: Vec<String>,
    /// what ran and what it found (for the contract and the manifest)
    pub verification: Verification,
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
    /// the boot check refused the image or could not run
    #[error("smoke verify refused {image}: boot verification failed: {error}")]
    Boot {
        /// the image
        image: PathBuf,
        /// why (console tail included)
        error: Box<BootError>,
    },
    /// a check could not run, failed, was cancelled or timed out
    #[error("smoke verify: {0}")]
    Process(#[from] SupervisorError),
}

impl VerifyError {
    /// True when verification stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        match self {
            VerifyError::Process(e) => e.is_cancelled(),
            VerifyError::Boot { error, .. } => error.is_cancelled(),
            VerifyError::Refused { .. } => false,
        }
    }
}

async fn image_gate(
    req: &VerifyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<VerifyOutcome, VerifyError> {
    match &req.smoke.command {
        Some(script) if !script.trim().is_empty() => {
            let spec =
                CommandSpec::bash_script(script.clone(), "smoke_verify.command", req.log_path)
                    .cwd(req.workdir)
                    .envs(req.env.clone());
            supervisor::run(&spec, cancel).await?;
            Ok(VerifyOutcome::default())
        }
        _ => image::default_gate(req, cancel).await,
    }
}

/// Verify `req.image`. With `required = false` a failure is returned as a warning in an `Ok`.
/// Cancellation is always an error.
pub async fn smoke_verify(
    req: &VerifyRequest<'_>,
    cancel: &CancellationToken,
) -> Result<VerifyOutcome, VerifyError> {
    let custom = req
        .smoke
        .command
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty());
    let gate = if custom { "command" } else { "qemu-img" };
    let tolerate = |e: VerifyError| -> Result<String, VerifyError> {
        if !req.smoke.required && !e.is_cancelled() {
            Ok(format!("smoke verify failed but is not required: {e}"))
        } else {
            Err(e)
        }
    };
    let mut outcome = match image_gate(req, cancel).await {
        Ok(o) => o,
        Err(e) => {
            let warning = tolerate(e)?;
            return Ok(VerifyOutcome {
                warnings: vec![warning],
                verification: Verification {
                    passed: false,
                    gate: gate.to_owned(),
                    boot: None,
                },
                ..VerifyOutcome::default()
            });
        }
    };
    outcome.verification = Verification {
        passed: true,
        gate: gate.to_owned(),
        boot: None,
    };
    let Some(settings) = req.boot else {
        return Ok(outcome);
    };
    let format = match &outcome.detected_format {
        Some(f) => f.clone(),
        None => match qemu_img_info(req.image, req.log_path, cancel).await {
            Ok(info) => info.format,
            Err(e) => {
                let warning = tolerate(e)?;
                outcome.warnings.push(warning);
                outcome.verification.passed = false;
                return Ok(outcome);
            }
        },
    };
    let result = boot::boot_verify(
        &BootRequest {
            image: req.image,
            format: &format,
            settings,
            work_dir: req.workdir,
            console_log: req.console_log,
            qemu_log: req.log_path,
        },
        cancel,
    )
    .await;
    match result {
        Ok((report, warning)) => {
            outcome.warnings.extend(warning);
            outcome.verification.boot = Some(report);
        }
        Err(error) => {
            let report = match &error {
                BootError::Failed { report, .. } => Some((**report).clone()),
                _ => None,
            };
            let warning = tolerate(VerifyError::Boot {
                image: req.image.to_owned(),
                error: Box::new(error),
            })?;
            outcome.warnings.push(warning);
            outcome.verification.passed = false;
            outcome.verification.boot = report;
        }
    }
    Ok(outcome)
}
