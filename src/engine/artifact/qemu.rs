//! `qemu-img` calls: `info --output=json`, `convert`, and a one-time probe for qcow2 zstd
//! compression. All child processes of the artifact layer start in [`run_tool`], through the
//! engine supervisor.
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
    /// a backing file, when the image has one (reads fall through to it)
    #[serde(rename = "backing-filename", default)]
    pub(super) backing_filename: Option<String>,
    /// format-specific facts (qcow2: compression type, external data file)
    #[serde(rename = "format-specific", default)]
    format_specific: Option<FormatSpecific>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FormatSpecific {
    #[serde(default)]
    data: Option<Qcow2Specific>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Qcow2Specific {
    #[serde(rename = "data-file", default)]
    data_file: Option<String>,
}

impl ImageInfo {
    /// A qcow2 that stands alone: no backing file and no external data file.
    pub(super) fn self_contained(&self) -> bool {
        let data_file = self
            .format_specific
            .as_ref()
            .and_then(|f| f.data.as_ref())
            .and_then(|d| d.data_file.as_ref());
        self.backing_filename.is_none() && data_file.is_none()
    }
}

/// Compression inside a qcow2 written by [`convert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Qcow2Compression {
    /// uncompressed clusters
    None,
    /// `-c` with the default (zlib, readable by every qemu-img)
    Zlib,
    /// `-c -o compression_type=zstd` (QEMU 5.1 or later built with zstd)
    Zstd,
}

impl Qcow2Compression {
    /// The contract's `compression_type` (empty when uncompressed).
    pub(super) fn name(self) -> &'static str {
        match self {
            Qcow2Compression::None => "",
            Qcow2Compression::Zlib => "zlib",
            Qcow2Compression::Zstd => "zstd",
        }
    }
}

/// Whether this machine's `qemu-img` writes zstd-compressed qcow2 (asked once per process: a
/// tiny `qemu-img create -o compression_type=zstd` in a temp dir).
pub(super) async fn zstd_supported(cancel: &CancellationToken) -> bool {
    static PROBE: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    *PROBE
        .get_or_init(|| async {
            let Ok(dir) = tempfile::tempdir() else {
                return false;
            };
            let probe = dir.path().join("probe.qcow2");
            let args: Vec<OsString> = vec![
                "create".into(),
                "-q".into(),
                "-f".into(),
                "qcow2".into(),
                "-o".into(),
                "compression_type=zstd".into(),
                probe.into(),
                "1M".into(),
            ];
            let ok = run_tool(QEMU_IMG, &args, cancel).await.is_ok();
            tracing::debug!(zstd = ok, "qemu-img qcow2 zstd compression probe");
            ok
        })
        .await
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

/// `qemu-img convert -f IN_FORMAT -O OUT_FORMAT [-c [-o compression_type=zstd]] IN OUT`.
/// Compressed output is written in order (`-c` excludes out-of-order writes), so the bytes are
/// the same on every run with the same qemu-img.
pub(super) async fn convert(
    input: &Path,
    input_format: &str,
    output: &Path,
    output_format: &str,
    compression: Qcow2Compression,
    cancel: &CancellationToken,
) -> Result<(), ArtifactError> {
    let mut args: Vec<OsString> = vec![
        "convert".into(),
        "-f".into(),
        input_format.into(),
        "-O".into(),
        output_format.into(),
    ];
    match compression {
        Qcow2Compression::None => {}
        Qcow2Compression::Zlib => args.push("-c".into()),
        Qcow2Compression::Zstd => {
            args.push("-c".into());
            args.push("-o".into());
            args.push("compression_type=zstd".into());
        }
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
