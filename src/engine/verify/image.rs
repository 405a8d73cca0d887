//! The image gate: `qemu-img info --output=json` must report a disk image format the normalizer
//! accepts (`qcow2` or `raw`) and a sane virtual size (1 GiB ..= 16 TiB: an installed VyOS never
//! fits below that, so anything smaller is a truncated or placeholder file). For qcow2,
//! `qemu-img check` must report no corruption (exit 0; exit 3, leaked clusters only, is a warning).
//!
//! An empty `qemu-img create` disk passes this gate; only the boot check refuses it.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{VerifyError, VerifyOutcome, VerifyRequest};
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};

/// Smallest virtual size accepted by the default gate.
pub const MIN_VIRTUAL_SIZE: u64 = 1 << 30;
/// Largest virtual size accepted by the default gate.
pub const MAX_VIRTUAL_SIZE: u64 = 16 << 40;

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

pub(super) async fn default_gate(
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
