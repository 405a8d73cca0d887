//! The primary artifact: what `build.normalize` does with the builder's image.
//!
//! | mode | builder wrote the requested format | it did not |
//! |---|---|---|
//! | `auto` | kept: hard-linked (copied across file systems) byte for byte, hashed once | converted (qcow2 uncompressed, or raw) |
//! | `always` | re-encoded: compressed qcow2 with zlib, or raw | same |
//! | `compress` | re-encoded: compressed qcow2, zstd when qemu-img has it, else zlib | same |
//!
//! "The requested format" for a qcow2 primary means a self-contained qcow2 (no backing file, no
//! external data file) that passed the smoke gate; a backing chain or a tolerated gate failure is
//! converted instead, so the published file never depends on anything outside itself.

use std::fs;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::qemu::{self, ImageInfo, Qcow2Compression};
use crate::engine::contract::Normalization;
use crate::engine::spec::{ArtifactFormat, NormalizeMode};

/// How the primary is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// the builder's file as it is
    Keep,
    /// `qemu-img convert` to `format` with `compression`
    Convert {
        /// qemu-img output format (`qcow2` or `raw`)
        format: &'static str,
        /// compression inside a qcow2
        compression: Qcow2Compression,
        /// the contract's `action`
        action: &'static str,
    },
}

/// Decides what to do with `source` for `mode` and the requested `format`.
pub(super) async fn plan(
    mode: NormalizeMode,
    format: ArtifactFormat,
    source: &ImageInfo,
    gate_passed: bool,
    cancel: &CancellationToken,
) -> Plan {
    let qemu_format = match format {
        ArtifactFormat::Qcow2 => "qcow2",
        ArtifactFormat::Raw | ArtifactFormat::Img => "raw",
    };
    match mode {
        NormalizeMode::Auto => {
            let already = source.format == qemu_format
                && gate_passed
                && (qemu_format == "raw" || source.self_contained());
            if already {
                Plan::Keep
            } else {
                Plan::Convert {
                    format: qemu_format,
                    compression: Qcow2Compression::None,
                    action: "converted",
                }
            }
        }
        NormalizeMode::Always => Plan::Convert {
            format: qemu_format,
            compression: if qemu_format == "qcow2" {
                Qcow2Compression::Zlib
            } else {
                Qcow2Compression::None
            },
            action: "reencoded",
        },
        NormalizeMode::Compress => Plan::Convert {
            // validation refuses `compress` with a raw primary; should one arrive, it is raw.
            format: qemu_format,
            compression: if qemu_format != "qcow2" {
                Qcow2Compression::None
            } else if qemu::zstd_supported(cancel).await {
                Qcow2Compression::Zstd
            } else {
                Qcow2Compression::Zlib
            },
            action: "compressed",
        },
    }
}

/// What the contract records for `plan`.
pub(super) fn record(mode: NormalizeMode, plan: Plan, source: &ImageInfo) -> Normalization {
    let (action, compression) = match plan {
        Plan::Keep => ("kept", Qcow2Compression::None),
        Plan::Convert {
            action,
            compression,
            ..
        } => (action, compression),
    };
    Normalization {
        mode: mode.as_str().to_owned(),
        action: action.to_owned(),
        source_format: source.format.clone(),
        compression_type: compression.name().to_owned(),
    }
}

/// Places `input` at `tmp_path` unchanged: a hard link (no byte copied), or a copy when the two
/// are on different file systems. `tmp_path` must not exist (`AlreadyExists` otherwise, so a
/// temp-name generator can retry).
pub(super) fn keep(input: &Path, tmp_path: &Path) -> std::io::Result<()> {
    match fs::hard_link(input, tmp_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "hard link refused; copying the builder's image");
            fs::copy(input, tmp_path).map(drop)
        }
    }
}
