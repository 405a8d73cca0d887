//! `file://` sources: copy a local ISO into the part file while hashing, on a blocking thread
//! whose byte counter feeds progress reports. No resume: a local copy is cheap to restart.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cache::{self, Entry};
use super::fetch::Ctx;
use super::IsoError;
use crate::engine::hash::{FileDigests, Hasher, BLOCK_SIZE};
use crate::engine::progress::{Progress, Stage};

/// Copies a local file into `entry.part` while hashing (no resume: a local copy is cheap).
pub(super) async fn fetch_file(
    source: &Path,
    entry: &Entry,
    ctx: &mut Ctx<'_>,
) -> Result<FileDigests, IsoError> {
    let counter = Arc::new(AtomicU64::new(0));
    let total = fs::metadata(source).ok().map(|m| m.len());
    let job = {
        let (source, part, counter, cancel) = (
            source.to_path_buf(),
            entry.part.clone(),
            counter.clone(),
            ctx.cancel.clone(),
        );
        move || copy_hashing(&source, &part, &counter, &cancel)
    };
    cache::remove_quietly(&entry.part_meta);
    let result = run_with_progress(job, &counter, total, ctx.progress).await;
    ctx.downloaded += counter.load(Ordering::Relaxed);
    match result {
        Ok(Ok(digests)) => Ok(digests),
        Ok(Err(CopyError::Cancelled)) => {
            cache::remove_quietly(&entry.part);
            Err(IsoError::Cancelled)
        }
        Ok(Err(CopyError::Source(e))) => {
            cache::remove_quietly(&entry.part);
            Err(IsoError::Source {
                url: format!("file://{}", source.display()),
                reason: e.to_string(),
            })
        }
        Ok(Err(CopyError::Dest(e))) => {
            cache::remove_quietly(&entry.part);
            Err(IsoError::Cache(format!(
                "cannot write {}: {e}",
                entry.part.display()
            )))
        }
        Err(e) => Err(IsoError::Cache(format!("copy thread failed: {e}"))),
    }
}

/// Runs a blocking job, reporting the bytes it counts while it runs.
pub(super) async fn run_with_progress<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
    counter: &AtomicU64,
    total: Option<u64>,
    progress: &dyn Progress,
) -> Result<T, tokio::task::JoinError> {
    let mut handle = tokio::task::spawn_blocking(job);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut handle => {
                progress.bytes(Stage::Fetch, counter.load(Ordering::Relaxed), total);
                return r;
            }
            _ = tick.tick() => progress.bytes(Stage::Fetch, counter.load(Ordering::Relaxed), total),
        }
    }
}

enum CopyError {
    Source(io::Error),
    Dest(io::Error),
    Cancelled,
}

fn copy_hashing(
    source: &Path,
    part: &Path,
    counter: &AtomicU64,
    cancel: &CancellationToken,
) -> Result<FileDigests, CopyError> {
    let mut input = File::open(source).map_err(CopyError::Source)?;
    let file = cache::open_private(part).map_err(CopyError::Dest)?;
    file.set_len(0).map_err(CopyError::Dest)?;
    let mut out = BufWriter::with_capacity(BLOCK_SIZE, file);
    let mut hasher = Hasher::new(false);
    let mut block = vec![0u8; BLOCK_SIZE];
    loop {
        if cancel.is_cancelled() {
            return Err(CopyError::Cancelled);
        }
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Source(e)),
        };
        out.write_all(&block[..n]).map_err(CopyError::Dest)?;
        hasher.update(&block[..n]);
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let file = out
        .into_inner()
        .map_err(|e| CopyError::Dest(e.into_error()))?;
    file.sync_all().map_err(CopyError::Dest)?;
    Ok(hasher.finish())
}
