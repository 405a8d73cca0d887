//! Streamed compressed encodings of a raw disk (`raw.xz`, `raw.zst`, `raw.gz`), hashed as they are
//! written: the raw is read once per encoding in [`BLOCK_SIZE`] blocks and the compressed bytes are
//! digested on their way to disk, so no second pass over the output is needed.
//!
//! xz and zstd run multithreaded (liblzma's MT encoder, zstd's worker pool) with up to
//! [`MAX_THREADS`] threads; gzip is single-threaded. Blocking: call from `spawn_blocking`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::engine::hash::{FileDigests, Hasher, BLOCK_SIZE};

/// Thread ceiling for the multithreaded encoders.
const MAX_THREADS: u32 = 4;
/// xz preset (the `xz` default; level 6, 8 MiB dictionary).
const XZ_PRESET: u32 = 6;
/// zstd level (the `zstd` default).
const ZSTD_LEVEL: i32 = 3;

/// A compressed encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Xz,
    Zstd,
    Gzip,
}

impl Codec {
    /// The `compression` value reported for the artifact.
    pub(super) fn name(self) -> &'static str {
        match self {
            Codec::Xz => "xz",
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
        }
    }
}

/// Why compression stopped.
#[derive(Debug)]
pub(super) enum CompressError {
    Read(io::Error),
    Write(io::Error),
    Cancelled,
}

/// Compresses `raw` into `out` with `codec`; returns the digests of the compressed bytes.
pub(super) fn compress(
    raw: &Path,
    out: File,
    codec: Codec,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<FileDigests, CompressError> {
    let input = File::open(raw).map_err(CompressError::Read)?;
    let sink = HashingWriter {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        hasher: Hasher::new(want_md5),
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .clamp(1, MAX_THREADS);
    let sink = match codec {
        Codec::Xz => {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(threads)
                .preset(XZ_PRESET)
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .map_err(|e| CompressError::Write(io::Error::other(e)))?;
            let mut enc = liblzma::write::XzEncoder::new_stream(sink, stream);
            pump(input, &mut enc, cancel)?;
            enc.finish().map_err(CompressError::Write)?
        }
        Codec::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)
                .map_err(CompressError::Write)?;
            if threads > 1 {
                enc.multithread(threads).map_err(CompressError::Write)?;
            }
            enc.include_checksum(true).map_err(CompressError::Write)?;
            pump(input, &mut enc, cancel)?;
            enc.finish().map_err(CompressError::Write)?
        }
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(sink, flate2::Compression::default());
            pump(input, &mut enc, cancel)?;
            enc.finish().map_err(CompressError::Write)?
        }
    };
    let HashingWriter { inner, hasher } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| CompressError::Write(e.into_error()))?;
    file.sync_all().map_err(CompressError::Write)?;
    Ok(hasher.finish())
}

/// Copies `input` into `enc` block by block, checking `cancel` between blocks.
fn pump(
    mut input: File,
    enc: &mut impl Write,
    cancel: &CancellationToken,
) -> Result<(), CompressError> {
    let mut block = vec![0u8; BLOCK_SIZE];
    loop {
        if cancel.is_cancelled() {
            return Err(CompressError::Cancelled);
        }
        let n = match input.read(&mut block) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CompressError::Read(e)),
        };
        enc.write_all(&block[..n]).map_err(CompressError::Write)?;
    }
}

/// Digests everything written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
