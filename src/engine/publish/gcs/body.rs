//! The request body of one resumable data request: a byte range of a file streamed from disk by a
//! reader thread through a bounded queue (memory stays near `READ_QUEUE + 2` buffers whatever the
//! range), plus a [`Progress`] the sender watches to notice a peer that stopped reading.
//!
//! Reads are plain safe `read_exact` into zeroed buffers: zeroing 1 MiB costs far less than the
//! socket write that follows, so the former uninitialised-buffer `unsafe` read bought nothing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::Body;
use tokio::sync::mpsc::Sender;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

/// Bytes per read (one `Bytes` handed to the HTTP body each).
const READ_BUF: u64 = 1024 * 1024;
/// Reads queued ahead of the socket.
const READ_QUEUE: usize = 2;

/// When the body last handed bytes to the connection, and whether it is complete.
#[derive(Debug)]
pub(super) struct Progress {
    base: Instant,
    last_ms: AtomicU64,
    finished: AtomicBool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the body has waited for the connection to take more; `None` once it is sent.
    pub(super) fn idle(&self) -> Option<Duration> {
        if self.finished.load(Ordering::Relaxed) {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.base.elapsed().saturating_sub(last))
    }
}

/// `len` bytes of `path` from `offset`, as a streamed body.
pub(super) fn file_range(path: &Path, offset: u64, len: u64) -> io::Result<(Body, Arc<Progress>)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE);
    // The reader ends on its own when the request drops the receiving side.
    drop(tokio::task::spawn_blocking(move || {
        read_range(file, len, tx)
    }));
    let progress = Arc::new(Progress::new());
    let seen = Arc::clone(&progress);
    let mut sent = 0u64;
    let stream = ReceiverStream::new(rx).map(move |item: io::Result<Bytes>| {
        if let Ok(b) = &item {
            sent += b.len() as u64;
            seen.touch();
            if sent >= len {
                seen.finished.store(true, Ordering::Relaxed);
            }
        }
        item
    });
    if len == 0 {
        progress.finished.store(true, Ordering::Relaxed);
    }
    Ok((Body::wrap_stream(stream), progress))
}

/// Reader thread: reads `len` bytes from the file's position into fresh buffers handed to the
/// body as they fill.
fn read_range(mut file: File, len: u64, tx: Sender<io::Result<Bytes>>) {
    let mut left = len;
    while left > 0 {
        let want = left.min(READ_BUF) as usize;
        let mut buf = BytesMut::zeroed(want);
        let item = match file.read_exact(&mut buf) {
            Ok(()) => Ok(buf.freeze()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(io::Error::other("file shrank during the upload"))
            }
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
        left -= want as u64;
    }
}
