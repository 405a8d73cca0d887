//! Streams one http(s) source into `<sha>.iso.part` while hashing in the same pass.
//!
//! HTTP: redirects follow the engine's one policy ([`crate::engine::net::redirect`]: up to
//! [`FetchOptions::max_redirects`] hops, logged redacted, and once a chain has touched https it
//! never continues over plain http). Transient failures (connect errors, timeouts, a body cut
//! mid-way, 408/429/5xx) are retried on the engine's one backoff schedule
//! ([`crate::engine::net::retry`]) up to [`FetchOptions::max_attempts`]; a cut transfer resumes with
//! `Range` + `If-Range` (strong ETag, else Last-Modified, kept in the `.part.json` sidecar): a 206
//! appends after re-hashing the kept prefix, a 200 means the server ignored the range (or the
//! validator changed) and the body is taken from byte 0. Without a validator nothing is resumed.
//!
//! The network side runs on the async runtime; writing and hashing run on a blocking thread fed
//! through a bounded channel, so the two overlap. Knows nothing about the cache's trust rules.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::cache::Entry;
use super::part::{begin_part, discard_part, open_part_at, resume_point, url_key};
use super::redact::redact;
use super::IsoError;
use crate::engine::hash::{self, FileDigests, Hasher};
use crate::engine::net::redirect;
use crate::engine::net::retry::{sleep_unless_cancelled, Attempts, RetryConfig};
use crate::engine::progress::{Progress, Stage};

/// Network behaviour of ISO downloads.
#[derive(Clone)]
pub struct FetchOptions {
    /// Attempts per source, the first included (default 5).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time (default 1 s).
    pub initial_backoff: Duration,
    /// Backoff ceiling, also applied to `Retry-After` (default 30 s).
    pub max_backoff: Duration,
    /// Redirect hops followed (default 10).
    pub max_redirects: usize,
    /// TCP/TLS connect timeout (default 30 s).
    pub connect_timeout: Duration,
    /// Longest silence while reading a response (default 60 s).
    pub read_timeout: Duration,
    /// Extra PEM root certificates trusted besides the system roots (private mirrors, tests).
    pub extra_root_certs_pem: Vec<Vec<u8>>,
}

impl std::fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_redirects", &self.max_redirects)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("extra_root_certs", &self.extra_root_certs_pem.len())
            .finish()
    }
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_redirects: 10,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            extra_root_certs_pem: Vec::new(),
        }
    }
}

/// Channel depth between the network task and the writer thread. A chunk is a slice of the HTTP
/// client's read buffer (up to ~400 KiB) and keeps that whole buffer alive while queued, so the
/// depth bounds peak memory; 16 keeps the writer fed (it batches whatever is queued).
const WRITE_QUEUE: usize = 16;
/// Most bytes the writer thread takes from the queue for one vectored write.
const WRITE_BATCH: usize = 1 << 20;
/// Bytes written between requests to start writeback (so the final `fsync` is short).
const WRITEBACK_STEP: u64 = 32 << 20;
/// Bytes between progress reports.
const PROGRESS_STEP: u64 = 16 << 20;

/// Mutable per-acquire state shared with the caller.
pub(super) struct Ctx<'a> {
    pub(super) cancel: &'a CancellationToken,
    pub(super) progress: &'a dyn Progress,
    /// body bytes received over the network (or copied from a file) in this acquire
    pub(super) downloaded: u64,
}

/// One attempt's failure, by what to do next.
enum Attempt {
    /// Give up on this source.
    Fatal(IsoError),
    /// Try again after a backoff (or the server's `Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Try again at once (the resume state was dropped).
    RetryNow(String),
}

impl From<IsoError> for Attempt {
    fn from(e: IsoError) -> Self {
        Attempt::Fatal(e)
    }
}

/// An HTTP client configured by [`FetchOptions`].
pub(super) struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
}

impl Fetcher {
    pub(super) fn new(opts: &FetchOptions) -> Result<Fetcher, IsoError> {
        let mut builder = reqwest::Client::builder()
            .redirect(redirect::policy(opts.max_redirects))
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .user_agent(concat!(
                "terraform-provider-hyops/",
                env!("CARGO_PKG_VERSION")
            ));
        let mut extra = Vec::new();
        for pem in &opts.extra_root_certs_pem {
            extra.push(reqwest::Certificate::from_pem(pem).map_err(|e| {
                IsoError::Invalid(format!("extra root certificate is not valid PEM: {e}"))
            })?);
        }
        if !extra.is_empty() {
            builder = builder.tls_certs_merge(extra);
        }
        let client = builder
            .build()
            .map_err(|e| IsoError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Fetcher {
            client,
            opts: opts.clone(),
        })
    }

    /// Downloads `url` into `entry.part` (resuming when possible) and returns its digests.
    pub(super) async fn fetch_http(
        &self,
        url: &Url,
        entry: &Entry,
        ctx: &mut Ctx<'_>,
    ) -> Result<FileDigests, IsoError> {
        let shown = redact(url);
        let key = url_key(url);
        let cancel = ctx.cancel;
        let mut attempts = Attempts::new(RetryConfig {
            max_attempts: self.opts.max_attempts,
            initial_backoff: self.opts.initial_backoff,
            max_backoff: self.opts.max_backoff,
        });
        loop {
            let attempt = attempts.count() + 1;
            let resume = resume_point(entry, &key);
            let outcome = tokio::select! {
                () = cancel.cancelled() => Err(Attempt::Fatal(IsoError::Cancelled)),
                r = self.attempt(url, &key, entry, resume, ctx) => r,
            };
            let (reason, after) = match outcome {
                Ok(digests) => return Ok(digests),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::RetryNow(reason)) => (reason, Some(Duration::ZERO)),
                Err(Attempt::Retry { reason, after }) => (reason, after),
            };
            let Some(delay) = attempts.failed(after) else {
                return Err(IsoError::Transient {
                    url: shown,
                    attempts: attempt,
                    reason,
                });
            };
            tracing::warn!(url = %shown, attempt, ?delay, %reason, "ISO download attempt failed; retrying");
            ctx.progress.message(
                Stage::Fetch,
                &format!("attempt {attempt} failed ({reason}); retrying in {delay:?}"),
            );
            sleep_unless_cancelled(delay, cancel)
                .await
                .map_err(|()| IsoError::Cancelled)?;
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        key: &str,
        entry: &Entry,
        resume: Option<(u64, String)>,
        ctx: &mut Ctx<'_>,
    ) -> Result<FileDigests, Attempt> {
        let resp = self.send(url, resume.as_ref()).await?;
        let status = resp.status();
        let shown = redact(resp.url());
        let (start, total) = match (status, &resume) {
            (StatusCode::PARTIAL_CONTENT, Some((offset, _))) => {
                match parse_content_range(resp.headers()) {
                    Some((first, total)) if first == *offset => (first, total),
                    other => {
                        discard_part(entry);
                        return Err(Attempt::RetryNow(format!(
                            "server answered a range from {offset} with {other:?}; restarting"
                        )));
                    }
                }
            }
            (StatusCode::OK, _) => {
                if resume.is_some() {
                    tracing::info!(url = %shown, "server ignored Range or the file changed; restarting from byte 0");
                    ctx.progress
                        .message(Stage::Fetch, "server sent the whole file; restarting");
                }
                (0, resp.content_length())
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, Some(_)) => {
                discard_part(entry);
                return Err(Attempt::RetryNow(
                    "range not satisfiable; restarting".into(),
                ));
            }
            (s, _) if is_transient(s) => {
                return Err(Attempt::Retry {
                    reason: format!("HTTP {s}"),
                    after: retry_after(resp.headers()),
                })
            }
            (s, _) => {
                return Err(Attempt::Fatal(IsoError::Http {
                    url: shown,
                    status: s.as_u16(),
                }))
            }
        };
        let hasher = if start == 0 {
            begin_part(entry, key, resp.headers())?;
            Hasher::new(false)
        } else {
            ctx.progress
                .message(Stage::Fetch, &format!("resuming at byte {start}"));
            rehash_prefix(entry, start, ctx.cancel).await?
        };
        let file = open_part_at(entry, start)?;
        if let Some(total) = total {
            ctx.progress.bytes(Stage::Fetch, start, Some(total));
        }
        self.stream_body(resp, file, hasher, start, total, entry, ctx)
            .await
    }

    /// Sends a GET; redirects follow the shared policy ([`crate::engine::net::redirect`]).
    async fn send(&self, url: &Url, range: Option<&(u64, String)>) -> Result<Response, Attempt> {
        let mut req = self.client.get(url.clone());
        if let Some((offset, validator)) = range {
            req = req
                .header(header::RANGE, format!("bytes={offset}-"))
                .header(header::IF_RANGE, validator.as_str());
        }
        req.send().await.map_err(|e| {
            if e.is_redirect() {
                Attempt::Fatal(IsoError::Redirect {
                    url: redact(url),
                    reason: redirect::refusal(&e),
                })
            } else if e.is_builder() {
                Attempt::Fatal(IsoError::Source {
                    url: redact(url),
                    reason: e.without_url().to_string(),
                })
            } else {
                Attempt::Retry {
                    reason: describe(&e),
                    after: None,
                }
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_body(
        &self,
        mut resp: Response,
        file: File,
        hasher: Hasher,
        start: u64,
        total: Option<u64>,
        entry: &Entry,
        ctx: &mut Ctx<'_>,
    ) -> Result<FileDigests, Attempt> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || write_loop(file, hasher, rx, start));
        let mut received = start;
        let mut reported = start;
        let outcome: Result<(), Attempt> = loop {
            match resp.chunk().await {
                Ok(None) => break Ok(()),
                Ok(Some(chunk)) => {
                    received += chunk.len() as u64;
                    ctx.downloaded += chunk.len() as u64;
                    if tx.send(chunk).await.is_err() {
                        break Ok(()); // the writer failed; its error is reported below
                    }
                    if received - reported >= PROGRESS_STEP {
                        reported = received;
                        ctx.progress.bytes(Stage::Fetch, received, total);
                    }
                }
                Err(e) => {
                    break Err(Attempt::Retry {
                        reason: format!("transfer cut after {received} bytes: {}", describe(&e)),
                        after: None,
                    })
                }
            }
        };
        drop(tx);
        let written = writer
            .await
            .map_err(|e| Attempt::Fatal(IsoError::Cache(format!("writer thread failed: {e}"))))?;
        let hasher = written.map_err(|e| {
            Attempt::Fatal(IsoError::Cache(format!(
                "cannot write {}: {e}",
                entry.part.display()
            )))
        })?;
        outcome?;
        ctx.progress.bytes(Stage::Fetch, received, total);
        if let Some(total) = total {
            if received != total {
                return Err(Attempt::Retry {
                    reason: format!("body ended at {received} of {total} bytes"),
                    after: None,
                });
            }
        }
        Ok(hasher.finish())
    }
}

/// Writer thread: appends chunks in order and hashes them.
///
/// Chunks already queued are taken together (up to [`WRITE_BATCH`] bytes) and written with one
/// vectored write, without copying them into a user-space buffer. Every [`WRITEBACK_STEP`] bytes
/// the kernel is asked to start writing the new range back to disk, so the final `fsync` does
/// not have to flush the whole file at once.
fn write_loop(
    mut file: File,
    mut hasher: Hasher,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    start: u64,
) -> io::Result<Hasher> {
    let mut batch: Vec<Bytes> = Vec::with_capacity(WRITE_QUEUE);
    let mut offset = start;
    let mut flushed = start;
    while let Some(first) = rx.blocking_recv() {
        let mut len = first.len();
        batch.push(first);
        while len < WRITE_BATCH {
            match rx.try_recv() {
                Ok(chunk) => {
                    len += chunk.len();
                    batch.push(chunk);
                }
                Err(_) => break,
            }
        }
        write_all_vectored(&mut file, &batch)?;
        for chunk in batch.drain(..) {
            hasher.update_bytes(chunk);
        }
        offset += len as u64;
        if offset - flushed >= WRITEBACK_STEP {
            start_writeback(&file, flushed, offset - flushed);
            flushed = offset;
        }
    }
    file.sync_all()?;
    Ok(hasher)
}

/// Writes every byte of `chunks`, in order, with as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
    let mut index = 0;
    let mut skip = 0;
    while index < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[index..]
            .iter()
            .enumerate()
            .map(|(i, c)| IoSlice::new(if i == 0 { &c[skip..] } else { c }))
            .collect();
        let mut written = match file.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while index < chunks.len() && written >= chunks[index].len() - skip {
            written -= chunks[index].len() - skip;
            skip = 0;
            index += 1;
        }
        skip += written;
    }
    Ok(())
}

/// Asks the kernel to start writing `len` bytes at `offset` back to disk (no wait; Linux only).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the duration of the call; the call only reads its
    // arguments. A failure is harmless: the final fsync still flushes everything.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "sync_file_range failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// `Content-Range: bytes FIRST-LAST/TOTAL` → (FIRST, TOTAL when known).
fn parse_content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    if last < first {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    Some((first, total))
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A reqwest error without its URL (which may carry secrets), with its cause chain.
fn describe(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = current {
        let piece = if first {
            // reqwest's own Display prints the URL; rebuild it without.
            let kind = if e.is_connect() {
                "connect error"
            } else if e.is_timeout() {
                "timed out"
            } else if e.is_body() || e.is_decode() {
                "body error"
            } else {
                "request error"
            };
            kind.to_string()
        } else {
            err.to_string()
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&piece);
        first = false;
        current = err.source();
    }
    text
}

/// Hashes the kept prefix so the stream can continue after it.
async fn rehash_prefix(
    entry: &Entry,
    start: u64,
    cancel: &CancellationToken,
) -> Result<Hasher, Attempt> {
    let (part, cancel) = (entry.part.clone(), cancel.clone());
    let job = tokio::task::spawn_blocking(move || {
        let mut hasher = Hasher::new(false);
        hash::hash_prefix_into(&part, start, &mut hasher, &cancel).map(|fed| (fed, hasher))
    });
    match job.await {
        Ok(Ok((fed, hasher))) if fed == start => Ok(hasher),
        Ok(Ok((fed, _))) => {
            discard_part(entry);
            Err(Attempt::RetryNow(format!(
                "kept prefix shrank to {fed} of {start} bytes; restarting"
            )))
        }
        Ok(Err(hash::HashError::Cancelled)) => Err(Attempt::Fatal(IsoError::Cancelled)),
        Ok(Err(e)) => Err(Attempt::Fatal(IsoError::Cache(e.to_string()))),
        Err(e) => Err(Attempt::Fatal(IsoError::Cache(format!(
            "hash thread failed: {e}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_table() {
        let cases = [
            ("bytes 100-199/1000", Some((100, Some(1000)))),
            ("bytes 0-0/*", Some((0, None))),
            ("bytes 5-3/10", None),
            ("items 1-2/3", None),
            ("bytes x-2/3", None),
        ];
        for (raw, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_RANGE, raw.parse().unwrap());
            assert_eq!(parse_content_range(&h), want, "{raw}");
        }
    }
}
