//! One-pass content digests: SHA-256 (the contract's checksum), CRC32C (GCS transport integrity) and,
//! only when a backend asks for it, MD5.
//!
//! Owns [`hash_file`] (read a file once in [`BLOCK_SIZE`] blocks) and the streaming [`Hasher`] that
//! the ISO fetcher and the artifact normalizer feed as bytes arrive. Knows nothing about where the
//! bytes come from or go to.
//!
//! Speed notes (DESIGN §7): `sha2` picks its SHA-NI backend at run time (`cpufeatures` probing CPUID
//! for `sha`, `sse2`, `ssse3`, `sse4.1`); [`sha_ni_available`] reports the same probe so callers and
//! benches can log which path runs. CRC32C uses the SSE4.2 instruction (the `crc32c` crate) and costs
//! a small fraction of SHA-256. MD5 has no hardware help and runs at about half SHA-NI speed, so when
//! requested it is computed on a side thread from shared (reference-counted) blocks and never gates
//! the main pass; CRC32C then runs on that thread too. [`hash_file`] also moves CRC32C to a side
//! thread when the machine has a second core (its blocks are shared, not copied), so SHA-256 is
//! all the reading thread computes. [`hash_file`] is blocking: call it from `spawn_blocking` in
//! async code.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

/// Read size of [`hash_file`]: large enough that per-call overhead vanishes, small enough to stay
/// cache-friendly and to notice a cancellation quickly.
pub const BLOCK_SIZE: usize = 4 << 20;

/// Blocks queued to the side thread before the main pass waits for it (bounds memory to a few
/// blocks).
const SIDE_QUEUE: usize = 4;

/// Read size of [`hash_file`] when its blocks are shared with the side thread: a fresh
/// allocation per block, so smaller than [`BLOCK_SIZE`] to keep the blocks in flight (queue,
/// side thread, reader) at a few MiB.
const SHARED_BLOCK_SIZE: usize = 1 << 20;

/// Digests of one byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// CRC32C (Castagnoli) of the whole content.
    pub crc32c: u32,
    /// MD5, lowercase hex; `Some` only when it was asked for.
    pub md5: Option<String>,
    /// Content length in bytes.
    pub size: u64,
}

impl FileDigests {
    /// CRC32C the way GCS writes it: base64 of the big-endian 4 bytes.
    pub fn crc32c_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.crc32c.to_be_bytes())
    }

    /// MD5 the way GCS and S3 `Content-MD5` write it: base64 of the 16 raw bytes.
    pub fn md5_base64(&self) -> Option<String> {
        let raw = hex::decode(self.md5.as_deref()?).ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// Why hashing stopped.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// the file
        path: PathBuf,
        /// the cause
        #[source]
        source: io::Error,
    },
    /// The cancellation token fired.
    #[error("hashing cancelled")]
    Cancelled,
}

/// Whether this CPU offers the SHA extensions `sha2` uses for SHA-256 (same feature set as its
/// run-time probe). False on other architectures.
pub fn sha_ni_available() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        false
    }
}

/// Hashes a file in one pass of [`BLOCK_SIZE`] reads. Blocking; checks `cancel` between blocks.
pub fn hash_file(
    path: &Path,
    want_md5: bool,
    cancel: &CancellationToken,
) -> Result<FileDigests, HashError> {
    hash_file_counted(path, want_md5, cancel, &AtomicU64::new(0))
}

/// Whether a second core is there to take CRC32C (and MD5) off the reading thread.
fn second_core() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// [`hash_file`] that adds the bytes hashed so far to `counter` (for progress reports from
/// another task).
pub fn hash_file_counted(
    path: &Path,
    want_md5: bool,
    cancel: &CancellationToken,
    counter: &AtomicU64,
) -> Result<FileDigests, HashError> {
    let mut hasher = Hasher::with_side_thread(want_md5, second_core());
    hash_prefix_counted(path, u64::MAX, &mut hasher, cancel, counter)?;
    Ok(hasher.finish())
}

/// Feeds at most `limit` bytes from the start of `path` into `hasher` (all of it with
/// `u64::MAX`); returns the bytes fed. Used to resume a stream whose prefix is already on disk.
/// Blocking; checks `cancel` between blocks.
pub fn hash_prefix_into(
    path: &Path,
    limit: u64,
    hasher: &mut Hasher,
    cancel: &CancellationToken,
) -> Result<u64, HashError> {
    hash_prefix_counted(path, limit, hasher, cancel, &AtomicU64::new(0))
}

fn hash_prefix_counted(
    path: &Path,
    limit: u64,
    hasher: &mut Hasher,
    cancel: &CancellationToken,
    counter: &AtomicU64,
) -> Result<u64, HashError> {
    let io_err = |source| HashError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut file = file.take(limit);
    let mut fed = 0u64;
    let shared = hasher.side.is_some();
    let mut reused = if shared {
        Vec::new()
    } else {
        vec![0u8; BLOCK_SIZE]
    };
    loop {
        if cancel.is_cancelled() {
            return Err(HashError::Cancelled);
        }
        if shared {
            // Fresh blocks, shared with the side thread without copying; read into spare
            // capacity, so no block is zeroed first.
            let mut block = Vec::with_capacity(SHARED_BLOCK_SIZE);
            let n = (&mut file)
                .take(SHARED_BLOCK_SIZE as u64)
                .read_to_end(&mut block)
                .map_err(io_err)?;
            if n == 0 {
                break;
            }
            hasher.update_bytes(Bytes::from(block));
            fed += n as u64;
            counter.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            let n = read_full(&mut file, &mut reused).map_err(io_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&reused[..n]);
            fed += n as u64;
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(fed)
}

/// Fills `buf` as far as the file allows; returns the bytes read (0 at end of file).
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Streaming digests: feed bytes in order, then [`Hasher::finish`].
///
/// SHA-256 runs on the caller's thread. CRC32C runs there too, unless a side thread exists: it
/// is started for MD5 (when asked for) or on request ([`Hasher::with_side_thread`]), and then
/// computes CRC32C and MD5 from the same blocks.
pub struct Hasher {
    sha256: Sha256,
    crc32c: u32,
    size: u64,
    side: Option<SideWorker>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("size", &self.size)
            .field("side_thread", &self.side.is_some())
            .finish()
    }
}

impl Hasher {
    /// A fresh hasher; `want_md5` starts the side thread (MD5 and CRC32C).
    pub fn new(want_md5: bool) -> Hasher {
        Hasher::with_side_thread(want_md5, false)
    }

    /// A fresh hasher whose CRC32C (and MD5 when `want_md5`) runs on a side thread when
    /// `side_thread` or `want_md5`. Feed it with [`Hasher::update_bytes`] to avoid copies.
    pub fn with_side_thread(want_md5: bool, side_thread: bool) -> Hasher {
        Hasher {
            sha256: Sha256::new(),
            crc32c: 0,
            size: 0,
            side: if want_md5 || side_thread {
                SideWorker::start(want_md5)
            } else {
                None
            },
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds a slice (copied once for the side thread when there is one).
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.side {
            Some(worker) => {
                worker.send(Bytes::copy_from_slice(data));
                self.sha256.update(data);
                self.size += data.len() as u64;
            }
            None => self.update_local(data),
        }
    }

    /// Feeds a shared buffer (no copy for the side thread).
    pub fn update_bytes(&mut self, data: Bytes) {
        match &mut self.side {
            Some(worker) => {
                self.sha256.update(&data);
                self.size += data.len() as u64;
                worker.send(data);
            }
            None => self.update_local(&data),
        }
    }

    fn update_local(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.crc32c = crc32c::crc32c_append(self.crc32c, data);
        self.size += data.len() as u64;
    }

    /// Final digests (waits for the side thread to drain).
    pub fn finish(self) -> FileDigests {
        let sha256 = hex::encode(self.sha256.finalize());
        let (crc32c, md5) = match self.side {
            Some(worker) => worker.finish(),
            None => (self.crc32c, None),
        };
        FileDigests {
            sha256,
            crc32c,
            md5,
            size: self.size,
        }
    }
}

/// The side thread: receives blocks in order over a bounded channel and returns their CRC32C and,
/// when asked, MD5.
struct SideWorker {
    tx: Option<SyncSender<Bytes>>,
    handle: Option<JoinHandle<(u32, Option<String>)>>,
}

impl SideWorker {
    /// `None` when no thread can be started (then everything runs on the caller's thread and
    /// there is no MD5; the caller decides what that means).
    fn start(want_md5: bool) -> Option<SideWorker> {
        let (tx, rx) = sync_channel::<Bytes>(SIDE_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("hyops-digest".into())
            .spawn(move || {
                let mut md5 = want_md5.then(Md5::new);
                let mut crc = 0u32;
                for block in rx {
                    crc = crc32c::crc32c_append(crc, &block);
                    if let Some(m) = &mut md5 {
                        m.update(&block);
                    }
                }
                (crc, md5.map(|m| hex::encode(m.finalize())))
            });
        match spawned {
            Ok(handle) => Some(SideWorker {
                tx: Some(tx),
                handle: Some(handle),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the digest thread");
                None
            }
        }
    }

    fn send(&mut self, block: Bytes) {
        if let Some(tx) = &self.tx {
            // The receiver only goes away when the thread panicked; finish() re-raises that.
            if tx.send(block).is_err() {
                self.tx = None;
            }
        }
    }

    fn finish(mut self) -> (u32, Option<String>) {
        drop(self.tx.take());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(out)) => out,
            // A panic in the digest thread is a bug: surface it where the digests were wanted
            // (a blocking task turns it into an error) rather than report a wrong checksum.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => (0, None),
        }
    }
}

impl Drop for SideWorker {
    fn drop(&mut self) {
        // Close the channel so the thread ends; it is detached if finish() never ran.
        drop(self.tx.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_of_abc() {
        let mut h = Hasher::new(true);
        h.update(b"a");
        h.update_bytes(Bytes::from_static(b"bc"));
        let d = h.finish();
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.md5.as_deref(), Some("900150983cd24fb0d6963f7d28e17f72"));
        // CRC32C check value of "123456789" is 0xE3069283; "abc" is 0x364B3FB7.
        assert_eq!(d.crc32c, 0x364B_3FB7);
        assert_eq!(d.size, 3);
        assert_eq!(d.md5_base64().as_deref(), Some("kAFQmDzST7DWlj99KOF/cg=="));
    }

    #[test]
    fn file_and_stream_agree_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(BLOCK_SIZE * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let cancel = CancellationToken::new();
        let from_file = hash_file(&path, true, &cancel).unwrap();
        let plain = hash_file(&path, false, &cancel).unwrap();
        let mut h = Hasher::new(true);
        for chunk in data.chunks(7919) {
            h.update(chunk);
        }
        let streamed = h.finish();
        let mut side = Hasher::with_side_thread(false, true);
        for chunk in data.chunks(1 << 20) {
            side.update_bytes(Bytes::copy_from_slice(chunk));
        }
        let side = side.finish();
        assert_eq!(from_file, streamed);
        assert_eq!((side.crc32c, side.size), (streamed.crc32c, streamed.size));
        assert_eq!(side.md5, None);
        assert_eq!(plain.sha256, streamed.sha256);
        assert_eq!(plain.md5, None);
        assert_eq!(from_file.size, data.len() as u64);
    }

    #[test]
    fn cancelled_before_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(matches!(
            hash_file(&path, false, &cancel),
            Err(HashError::Cancelled)
        ));
    }
}
