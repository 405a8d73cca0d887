//! `qemu-img` calls: `info --output=json` and `convert`. All child processes of the artifact layer
//! start in [`run_tool`], the one function to swap for the engine supervisor.
//!
//! Children get a cleared environment (only `PATH` and `LC_ALL=C`), so no secret held in this
//! process's environment reaches them; they are killed when their future is dropped (cancellation).

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::ArtifactError;

/// The image tool; resolved through `PATH`.
const QEMU_IMG: &str = "qemu-img";
/// Bytes of stderr kept for an error message.
const STDERR_TAIL: usize = 4096;

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

/// Runs a tool to completion and returns its stdout. A non-zero exit becomes
/// [`ArtifactError::Tool`] carrying the tail of stderr; cancellation kills the child.
pub(super) async fn run_tool(
    program: &str,
    args: &[OsString],
    cancel: &CancellationToken,
) -> Result<Vec<u8>, ArtifactError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let shown = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    tracing::debug!(command = %shown, "running");
    let child = command.spawn().map_err(|source| ArtifactError::Spawn {
        program: program.to_string(),
        source,
    })?;
    let output = tokio::select! {
        () = cancel.cancelled() => return Err(ArtifactError::Cancelled),
        out = child.wait_with_output() => out.map_err(|source| ArtifactError::Spawn {
            program: program.to_string(),
            source,
        })?,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let start = stderr.len().saturating_sub(STDERR_TAIL);
        let start = (start..stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(stderr.len());
        return Err(ArtifactError::Tool {
            command: shown,
            status: output.status.to_string(),
            stderr_tail: stderr[start..].trim().to_string(),
        });
    }
    Ok(output.stdout)
}
