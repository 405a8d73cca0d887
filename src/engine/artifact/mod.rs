//! Artifact normalization: turn a builder's disk image into the published encodings, with digests.
//!
//! [`normalize_each`] writes `<out_dir>/<artifact_key>.<ext>` for the primary format as
//! `build.normalize` says (see [`primary`]: `auto` keeps a builder output that already is the
//! requested format, byte for byte; `always` re-encodes; `compress` re-encodes as compressed
//! qcow2) and then each extra (`raw.xz`, `raw.zst`, `raw.gz` streamed from a raw rendering;
//! `qcow2`: compressed qcow2, skipped when it is already the primary). Each output is written
//! under a temp name in `out_dir`, renamed into place as soon as it is complete and hashed, and
//! handed to the caller's callback then (so it can be uploaded while the next one is encoded). On
//! error or cancellation the temp files and every output already placed are removed: nothing
//! partial remains. Final files are 0644 (they are meant to be published; nothing is
//! group/world-writable). [`normalize`] is the same without a callback.
//!
//! Digests: compressed extras are hashed while being written; `qemu-img` outputs and kept files
//! are hashed in one pass afterwards (crc32c and md5 on a second thread beside sha256). MD5 only
//! when asked (`want_md5`). The input format is the one the smoke gate read when the caller
//! passes it, else it comes from its extension (`.raw`/`.img` → raw) or one `qemu-img info`
//! probe, and is then passed explicitly (`-f`) to every conversion. Knows no storage backend.

mod compress;
mod primary;
mod qemu;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use tokio_util::sync::CancellationToken;

use crate::engine::contract::Normalization;
use crate::engine::hash::{self, FileDigests, HashError};
use crate::engine::spec::{ArtifactFormat, ExtraFormat, NormalizeMode};
use compress::{Codec, CompressError};
use primary::Plan;
use qemu::Qcow2Compression;

/// Mode of finished artifacts.
const ARTIFACT_MODE: u32 = 0o644;

/// One normalized output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// final path: `<out_dir>/<artifact_key>.<format>`
    pub path: PathBuf,
    /// `qcow2`, `raw`, `img`, `raw.xz`, `raw.zst` or `raw.gz`
    pub format: String,
    /// outer compression of the file: `xz`, `zstd`, `gzip`; `None` for qcow2 (compressed inside
    /// the format) and raw
    pub compression: Option<String>,
    /// bytes on disk (apparent size)
    pub size: u64,
    /// guest-visible disk size in bytes
    pub virtual_size: u64,
    /// sha256 of the file, lowercase hex
    pub sha256: String,
    /// crc32c of the file
    pub crc32c: u32,
    /// md5 of the file, lowercase hex, when asked for
    pub md5: Option<String>,
}

/// Why normalization failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// A bad argument (artifact key, paths).
    #[error("invalid artifact request: {0}")]
    Invalid(String),
    /// A tool could not be started or waited for.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// the program
        program: String,
        /// the cause
        #[source]
        source: std::io::Error,
    },
    /// A tool exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr_tail}")]
    Tool {
        /// the command line
        command: String,
        /// exit status
        status: String,
        /// the end of its stderr
        stderr_tail: String,
    },
    /// Tool output could not be understood.
    #[error("{0}")]
    Parse(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// the file
        path: PathBuf,
        /// the cause
        #[source]
        source: std::io::Error,
    },
    /// The cancellation token fired; temp outputs were removed.
    #[error("normalization cancelled")]
    Cancelled,
}

/// What to normalize and how.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeRequest<'a> {
    /// the builder's image
    pub input: &'a Path,
    /// its format as the smoke gate's `qemu-img info` read it; `None`: decided here
    pub input_format: Option<&'a str>,
    /// the smoke gate ran and passed (false for a tolerated failure): `auto` keeps only a file
    /// that passed
    pub gate_passed: bool,
    /// `artifact_format`
    pub format: ArtifactFormat,
    /// `additional_formats`
    pub extras: &'a [ExtraFormat],
    /// `build.normalize`
    pub mode: NormalizeMode,
    /// where the outputs go (created if missing)
    pub out_dir: &'a Path,
    /// `artifact_key` (the outputs' file stem)
    pub artifact_key: &'a str,
    /// compute md5 too (a publish backend wants it)
    pub want_md5: bool,
}

/// The outputs of a normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// the primary first, then the extras in the order asked (duplicates dropped)
    pub files: Vec<ArtifactFile>,
    /// what was done to make the primary
    pub normalization: Normalization,
}

/// An output waiting for its rename.
struct Pending {
    tmp: TempPath,
    file: ArtifactFile,
}

/// Outputs already renamed into place; removed again unless [`Placed::done`] is called.
struct Placed(Vec<ArtifactFile>);

impl Placed {
    fn done(mut self) -> Vec<ArtifactFile> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = fs::remove_file(&f.path);
        }
    }
}

/// [`normalize_each`] without a callback.
pub async fn normalize(
    req: &NormalizeRequest<'_>,
    cancel: &CancellationToken,
) -> Result<Normalized, ArtifactError> {
    normalize_each(req, cancel, &mut |_| {}).await
}

/// Normalizes `req.input` into the primary format plus the extras under `req.out_dir`, calling
/// `ready` with each output as soon as it is in place with its digests (the primary first).
pub async fn normalize_each(
    req: &NormalizeRequest<'_>,
    cancel: &CancellationToken,
    ready: &mut (dyn FnMut(&ArtifactFile) + Send),
) -> Result<Normalized, ArtifactError> {
    let (out_dir, key, want_md5) = (req.out_dir, req.artifact_key, req.want_md5);
    validate_key(key)?;
    fs::create_dir_all(out_dir).map_err(|source| ArtifactError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let source = match (req.input_format, format_hint(req.input)) {
        (Some(known), _) => qemu::info(req.input, Some(known), cancel).await?,
        // A `.qcow2` name is only a hint: a builder may have written raw bytes there.
        (None, Some("qcow2")) => match qemu::info(req.input, Some("qcow2"), cancel).await {
            Err(ArtifactError::Tool { .. }) => qemu::info(req.input, None, cancel).await?,
            other => other?,
        },
        (None, hint) => qemu::info(req.input, hint, cancel).await?,
    };
    let plan = primary::plan(req.mode, req.format, &source, req.gate_passed, cancel).await;
    let normalization = primary::record(req.mode, plan, &source);
    tracing::info!(input = %req.input.display(), format = %source.format,
        virtual_size = source.virtual_size, mode = req.mode.as_str(),
        action = %normalization.action, "normalizing");

    let mut placed = Placed(Vec::new());
    let primary_ext = req.format.as_str();
    let primary = match plan {
        Plan::Keep => {
            let tmp = tempfile::Builder::new()
                .prefix(&format!(".{key}.{primary_ext}."))
                .suffix(".tmp")
                .make_in(out_dir, |path| primary::keep(req.input, path))
                .map_err(|source| ArtifactError::Io {
                    path: out_dir.to_path_buf(),
                    source,
                })?
                .into_temp_path();
            let digests = hash_blocking(&tmp, want_md5, cancel).await?;
            Pending {
                file: artifact_file(
                    out_dir,
                    key,
                    primary_ext,
                    None,
                    source.virtual_size,
                    digests,
                ),
                tmp,
            }
        }
        Plan::Convert {
            format,
            compression,
            ..
        } => {
            let tmp = temp_in(out_dir, key, primary_ext)?;
            qemu::convert(req.input, &source.format, &tmp, format, compression, cancel).await?;
            finish_qemu_output(tmp, out_dir, key, primary_ext, format, want_md5, cancel).await?
        }
    };
    place(primary, &mut placed, ready)?;

    let mut seen = Vec::new();
    let mut extra_raw: Option<TempPath> = None;
    for &extra in req.extras {
        if seen.contains(&extra) {
            continue;
        }
        seen.push(extra);
        let codec = match extra {
            ExtraFormat::Qcow2 if req.format == ArtifactFormat::Qcow2 => {
                tracing::debug!("extra qcow2 is the primary format; skipped");
                continue;
            }
            ExtraFormat::Qcow2 => {
                let compression =
                    if req.mode == NormalizeMode::Compress && qemu::zstd_supported(cancel).await {
                        Qcow2Compression::Zstd
                    } else {
                        Qcow2Compression::Zlib
                    };
                let tmp = temp_in(out_dir, key, "qcow2")?;
                qemu::convert(
                    req.input,
                    &source.format,
                    &tmp,
                    "qcow2",
                    compression,
                    cancel,
                )
                .await?;
                let done =
                    finish_qemu_output(tmp, out_dir, key, "qcow2", "qcow2", want_md5, cancel)
                        .await?;
                place(done, &mut placed, ready)?;
                continue;
            }
            ExtraFormat::RawXz => Codec::Xz,
            ExtraFormat::RawZst => Codec::Zstd,
            ExtraFormat::RawGz => Codec::Gzip,
        };
        // The raw rendering: the primary when it is raw, else a temp conversion made once.
        let raw_path = if req.format == ArtifactFormat::Qcow2 {
            if extra_raw.is_none() {
                let tmp = temp_in(out_dir, key, "raw")?;
                qemu::convert(
                    req.input,
                    &source.format,
                    &tmp,
                    "raw",
                    Qcow2Compression::None,
                    cancel,
                )
                .await?;
                extra_raw = Some(tmp);
            }
            extra_raw.as_ref().map(|t| t.to_path_buf())
        } else {
            placed.0.first().map(|p| p.path.clone())
        };
        let Some(raw_path) = raw_path else {
            return Err(ArtifactError::Invalid("no raw rendering available".into()));
        };
        let ext = extra.as_str();
        let tmp = temp_in(out_dir, key, ext)?;
        let digests = compress_blocking(&raw_path, &tmp, codec, want_md5, cancel).await?;
        let done = Pending {
            file: artifact_file(
                out_dir,
                key,
                ext,
                Some(codec.name()),
                source.virtual_size,
                digests,
            ),
            tmp,
        };
        place(done, &mut placed, ready)?;
    }
    drop(extra_raw);
    Ok(Normalized {
        files: placed.done(),
        normalization,
    })
}

/// Hashes a `qemu-img` output and reads back its virtual size.
async fn finish_qemu_output(
    tmp: TempPath,
    out_dir: &Path,
    key: &str,
    ext: &str,
    qemu_format: &str,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<Pending, ArtifactError> {
    let info = qemu::info(&tmp, Some(qemu_format), cancel).await?;
    let digests = hash_blocking(&tmp, want_md5, cancel).await?;
    Ok(Pending {
        file: artifact_file(out_dir, key, ext, None, info.virtual_size, digests),
        tmp,
    })
}

fn artifact_file(
    out_dir: &Path,
    key: &str,
    ext: &str,
    compression: Option<&str>,
    virtual_size: u64,
    digests: FileDigests,
) -> ArtifactFile {
    ArtifactFile {
        path: out_dir.join(format!("{key}.{ext}")),
        format: ext.to_string(),
        compression: compression.map(str::to_string),
        size: digests.size,
        virtual_size,
        sha256: digests.sha256,
        crc32c: digests.crc32c,
        md5: digests.md5,
    }
}

/// Renames a finished output into place (0644) and hands it to `ready`; `placed` removes it
/// again should a later output fail.
fn place(
    pending: Pending,
    placed: &mut Placed,
    ready: &mut (dyn FnMut(&ArtifactFile) + Send),
) -> Result<(), ArtifactError> {
    let Pending { tmp, file } = pending;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(ARTIFACT_MODE)).map_err(|source| {
        ArtifactError::Io {
            path: tmp.to_path_buf(),
            source,
        }
    })?;
    tmp.persist(&file.path).map_err(|e| ArtifactError::Io {
        path: file.path.clone(),
        source: e.error,
    })?;
    placed.0.push(file.clone());
    ready(&file);
    Ok(())
}

/// A temp file in `out_dir` named after the output it will become (removed on drop).
fn temp_in(out_dir: &Path, key: &str, ext: &str) -> Result<TempPath, ArtifactError> {
    tempfile::Builder::new()
        .prefix(&format!(".{key}.{ext}."))
        .suffix(".tmp")
        .tempfile_in(out_dir)
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|source| ArtifactError::Io {
            path: out_dir.to_path_buf(),
            source,
        })
}

async fn hash_blocking(
    path: &Path,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<FileDigests, ArtifactError> {
    let (owned, token) = (path.to_path_buf(), cancel.clone());
    match tokio::task::spawn_blocking(move || hash::hash_file(&owned, want_md5, &token)).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(HashError::Cancelled)) => Err(ArtifactError::Cancelled),
        Ok(Err(HashError::Io { path, source })) => Err(ArtifactError::Io { path, source }),
        Err(e) => Err(ArtifactError::Parse(format!("hash thread failed: {e}"))),
    }
}

async fn compress_blocking(
    raw: &Path,
    tmp: &TempPath,
    codec: Codec,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<FileDigests, ArtifactError> {
    let out = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(tmp)
        .map_err(|source| ArtifactError::Io {
            path: tmp.to_path_buf(),
            source,
        })?;
    let (raw_owned, token) = (raw.to_path_buf(), cancel.clone());
    let job = tokio::task::spawn_blocking(move || {
        compress::compress(&raw_owned, out, codec, want_md5, &token)
    });
    let result = tokio::select! {
        // Stop waiting at once; the job sees the token between blocks and its temp is unlinked.
        () = cancel.cancelled() => return Err(ArtifactError::Cancelled),
        r = job => r,
    };
    match result {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(CompressError::Cancelled)) => Err(ArtifactError::Cancelled),
        Ok(Err(CompressError::Read(source))) => Err(ArtifactError::Io {
            path: raw.to_path_buf(),
            source,
        }),
        Ok(Err(CompressError::Write(source))) => Err(ArtifactError::Io {
            path: tmp.to_path_buf(),
            source,
        }),
        Err(e) => Err(ArtifactError::Parse(format!(
            "compression thread failed: {e}"
        ))),
    }
}

/// The input format implied by its extension: a `.raw`/`.img` file is opened as raw so that guest
/// data resembling an image header can never be probed as another format; anything else is probed.
fn format_hint(input: &Path) -> Option<&'static str> {
    match input.extension().and_then(|e| e.to_str()) {
        Some("raw" | "img") => Some("raw"),
        Some("qcow2") => Some("qcow2"),
        _ => None,
    }
}

/// `^[a-z0-9][a-z0-9._-]{1,62}$` (also keeps the key a safe file-name component).
fn validate_key(key: &str) -> Result<(), ArtifactError> {
    let bytes = key.as_bytes();
    let ok = (2..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ArtifactError::Invalid(format!(
            "artifact_key {key:?} must match ^[a-z0-9][a-z0-9._-]{{1,62}}$"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_key_table() {
        for (key, ok) in [
            ("vyos-1.5", true),
            ("a1", true),
            ("a", false),
            ("-a", false),
            ("A1", false),
            ("a/b", false),
            ("..", false),
            (".a", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ] {
            assert_eq!(validate_key(key).is_ok(), ok, "{key}");
        }
    }
}
