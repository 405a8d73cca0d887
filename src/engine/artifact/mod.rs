//! Artifact normalization: turn a builder's disk image into the published encodings, with digests.
//!
//! [`normalize`] writes `<out_dir>/<artifact_key>.<ext>` for the primary format (`qcow2`: compressed
//! qcow2 via `qemu-img convert -O qcow2 -c`; `raw`/`img`: `qemu-img convert -O raw`) and for each
//! extra (`raw.xz`, `raw.zst`, `raw.gz` streamed from a raw rendering; `qcow2`: compressed qcow2,
//! skipped when it is already the primary). Every output is written under a temp name in `out_dir`
//! and renamed only once all outputs succeeded: on error or cancellation nothing partial remains.
//! Final files are 0644 (they are meant to be published; nothing is group/world-writable).
//!
//! Digests: compressed extras are hashed while being written; `qemu-img` outputs are hashed in one
//! pass afterwards. MD5 only when asked (`want_md5`), on its own thread. The input format comes
//! from its extension (`.raw`/`.img` → raw, `.qcow2`) or else from one `qemu-img info` probe, and is
//! then passed explicitly (`-f`) to every conversion. Knows no storage backend.

mod compress;
mod qemu;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use tokio_util::sync::CancellationToken;

use crate::engine::hash::{self, FileDigests, HashError};
use crate::engine::spec::{ArtifactFormat, ExtraFormat};
use compress::{Codec, CompressError};

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

/// An output waiting for its rename.
struct Pending {
    tmp: NamedTempFile,
    file: ArtifactFile,
}

/// Normalizes `input` into the primary `format` plus `extras` under `out_dir` (created if missing).
/// Returns the primary first, then the extras in the order given (duplicates dropped).
pub async fn normalize(
    input: &Path,
    format: ArtifactFormat,
    extras: &[ExtraFormat],
    out_dir: &Path,
    artifact_key: &str,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<Vec<ArtifactFile>, ArtifactError> {
    validate_key(artifact_key)?;
    fs::create_dir_all(out_dir).map_err(|source| ArtifactError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let source = qemu::info(input, format_hint(input), cancel).await?;
    tracing::info!(input = %input.display(), format = %source.format, virtual_size = source.virtual_size, "normalizing");

    let mut pending = Vec::new();
    let primary_ext = format.as_str();
    let primary_tmp = temp_in(out_dir, artifact_key, primary_ext)?;
    let (out_format, compressed) = match format {
        ArtifactFormat::Qcow2 => ("qcow2", true),
        ArtifactFormat::Raw | ArtifactFormat::Img => ("raw", false),
    };
    qemu::convert(
        input,
        &source.format,
        primary_tmp.path(),
        out_format,
        compressed,
        cancel,
    )
    .await?;
    pending.push(
        finish_qemu_output(
            primary_tmp,
            out_dir,
            artifact_key,
            primary_ext,
            out_format,
            want_md5,
            cancel,
        )
        .await?,
    );

    let mut seen = Vec::new();
    let mut extra_raw: Option<NamedTempFile> = None;
    for &extra in extras {
        if seen.contains(&extra) {
            continue;
        }
        seen.push(extra);
        let codec = match extra {
            ExtraFormat::Qcow2 if format == ArtifactFormat::Qcow2 => {
                tracing::debug!("extra qcow2 is the primary format; skipped");
                continue;
            }
            ExtraFormat::Qcow2 => {
                let tmp = temp_in(out_dir, artifact_key, "qcow2")?;
                qemu::convert(input, &source.format, tmp.path(), "qcow2", true, cancel).await?;
                pending.push(
                    finish_qemu_output(
                        tmp,
                        out_dir,
                        artifact_key,
                        "qcow2",
                        "qcow2",
                        want_md5,
                        cancel,
                    )
                    .await?,
                );
                continue;
            }
            ExtraFormat::RawXz => Codec::Xz,
            ExtraFormat::RawZst => Codec::Zstd,
            ExtraFormat::RawGz => Codec::Gzip,
        };
        // The raw rendering: the primary when it is raw, else a temp conversion made once.
        let raw_path = if format == ArtifactFormat::Qcow2 {
            if extra_raw.is_none() {
                let tmp = temp_in(out_dir, artifact_key, "raw")?;
                qemu::convert(input, &source.format, tmp.path(), "raw", false, cancel).await?;
                extra_raw = Some(tmp);
            }
            extra_raw.as_ref().map(|t| t.path().to_path_buf())
        } else {
            pending.first().map(|p| p.tmp.path().to_path_buf())
        };
        let Some(raw_path) = raw_path else {
            return Err(ArtifactError::Invalid("no raw rendering available".into()));
        };
        let ext = extra.as_str();
        let tmp = temp_in(out_dir, artifact_key, ext)?;
        let digests = compress_blocking(&raw_path, &tmp, codec, want_md5, cancel).await?;
        pending.push(Pending {
            file: artifact_file(
                out_dir,
                artifact_key,
                ext,
                Some(codec.name()),
                source.virtual_size,
                digests,
            ),
            tmp,
        });
    }
    drop(extra_raw);
    commit(pending)
}

/// Hashes a `qemu-img` output and reads back its virtual size.
async fn finish_qemu_output(
    tmp: NamedTempFile,
    out_dir: &Path,
    key: &str,
    ext: &str,
    qemu_format: &str,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<Pending, ArtifactError> {
    let info = qemu::info(tmp.path(), Some(qemu_format), cancel).await?;
    let digests = hash_blocking(tmp.path(), want_md5, cancel).await?;
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

/// Renames every pending output into place; on any failure the already renamed ones are removed.
fn commit(pending: Vec<Pending>) -> Result<Vec<ArtifactFile>, ArtifactError> {
    let mut done: Vec<ArtifactFile> = Vec::with_capacity(pending.len());
    for Pending { tmp, file } in pending {
        let result = fs::set_permissions(tmp.path(), fs::Permissions::from_mode(ARTIFACT_MODE))
            .map_err(|source| ArtifactError::Io {
                path: tmp.path().to_path_buf(),
                source,
            })
            .and_then(|()| {
                tmp.persist(&file.path)
                    .map(drop)
                    .map_err(|e| ArtifactError::Io {
                        path: file.path.clone(),
                        source: e.error,
                    })
            });
        if let Err(e) = result {
            for placed in &done {
                let _ = fs::remove_file(&placed.path);
            }
            return Err(e);
        }
        done.push(file);
    }
    Ok(done)
}

/// A temp file in `out_dir` named after the output it will become.
fn temp_in(out_dir: &Path, key: &str, ext: &str) -> Result<NamedTempFile, ArtifactError> {
    tempfile::Builder::new()
        .prefix(&format!(".{key}.{ext}."))
        .suffix(".tmp")
        .tempfile_in(out_dir)
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
    tmp: &NamedTempFile,
    codec: Codec,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<FileDigests, ArtifactError> {
    let out = tmp
        .as_file()
        .try_clone()
        .map_err(|source| ArtifactError::Io {
            path: tmp.path().to_path_buf(),
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
            path: tmp.path().to_path_buf(),
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
