//! `qemu-img` calls: `info --output=json` and `convert`. All child processes of the artifact layer
//! start in [`run_tool`], through the engine supervisor.
//!
//! Children get a cleared environment (only `PATH` and `LC_ALL=C`), so no secret held in this
//! process's environment reaches them; cancellation terminates their process group.

use std::ffi::OsString;
use std::path::Path;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::ArtifactError;
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};

/// The image tool; resolved through `PATH`.
const QEMU_IMG: &str = "qemu-img";

/// The parts of `qemu-img info --output=json` used here.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ImageInfo {
    /// detected format (`raw`, `qcow2`, …)
    pub(super) format: String,
    /// guest-visible size in bytes
    #[serde(rename = "virtual-size")]
    pub(super) virtual_size: u64,
}

/// `qemu-img info --output=json [-f FORMAT] PATH`.
pub(super) async fn info(
    path: &Path,
    format: Option<&str>,
    cancel: &CancellationToken,
) -> Result<ImageInfo, ArtifactError> {
    let mut args: Vec<OsString> = vec!["info".into(), "--output=json".into()];
    if let Some(format) = format {
        args.push("-f".into());
        args.push(format.into());
    }
    args.push(path.into());
    let stdout = run_tool(QEMU_IMG, &args, cancel).await?;
    serde_json::from_slice(&stdout).map_err(|e| {
        ArtifactError::Parse(format!(
            "qemu-img info of {} returned unexpected JSON: {e}",
            path.display()
        ))
    })
}

/// `qemu-img convert -f IN_FORMAT -O OUT_FORMAT [-c] IN OUT`.
pub(super) async fn convert(
    input: &Path,
    input_format: &str,
    output: &Path,
    output_format: &str,
    compressed: bool,
    cancel: &CancellationToken,
) -> Result<(), ArtifactError> {
    let mut args: Vec<OsString> = vec![
        "convert".into(),
        "-f".into(),
        input_format.into(),
        "-O".into(),
        output_format.into(),
    ];
    if compressed {
        args.push("-c".into());
    }
    args.push(input.into());
    args.push(output.into());
    run_tool(QEMU_IMG, &args, cancel).await.map(drop)
}

/// Runs a tool to completion through the engine supervisor (own process group, killed as a group
/// on cancellation) and returns its stdout. A non-zero exit becomes [`ArtifactError::Tool`] carrying
/// the tail of its stderr log; the log is a temporary file removed afterwards.
pub(super) async fn run_tool(
    program: &str,
    args: &[OsString],
    cancel: &CancellationToken,
) -> Result<Vec<u8>, ArtifactError> {
    let log = tempfile::Builder::new()
        .prefix("hyops-qemu-img-")
        .suffix(".log")
        .tempfile()
        .map_err(|source| ArtifactError::Spawn {
            program: program.to_string(),
            source,
        })?;
    let mut spec = CommandSpec::program(program, log.path())
        .args(args.iter().cloned())
        .clear_env()
        .env("LC_ALL", "C")
        .capture_stdout();
    if let Some(path) = std::env::var_os("PATH") {
        spec = spec.env("PATH", path.to_string_lossy().into_owned());
    }
    let shown = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    tracing::debug!(command = %shown, "running");
    match supervisor::run(&spec, cancel).await {
        Ok(out) => Ok(out.stdout.unwrap_or_default().into_bytes()),
        Err(SupervisorError::Cancelled { .. }) => Err(ArtifactError::Cancelled),
        Err(SupervisorError::Exited { status, tail, .. }) => Err(ArtifactError::Tool {
            command: shown,
            status,
            stderr_tail: tail.trim().to_string(),
        }),
        Err(SupervisorError::TimedOut { after, tail, .. }) => Err(ArtifactError::Tool {
            command: shown,
            status: format!("timed out after {after:?}"),
            stderr_tail: tail.trim().to_string(),
        }),
        Err(e) => Err(ArtifactError::Spawn {
            program: program.to_string(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}
