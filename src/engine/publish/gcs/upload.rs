//! The resumable upload: initiate with `ifGenerationMatch=0` and declared checksums, stream
//! chunks from disk (a reader thread hands 1 MiB buffers to the body through a bounded queue;
//! memory does not grow with the chunk or file size),
//! re-query the session with `Content-Range: bytes */TOTAL` after any failure and resume from the
//! server's `Range`, check the finished object against the local digests.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Body, Response, StatusCode};
use tokio::io::AsyncSeekExt;
use tokio::sync::mpsc::Sender;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{describe, error_message, GcsStore, ObjectResource};
use crate::engine::credentials::SecretString;
use crate::engine::publish::layout::encode_whole;
use crate::engine::publish::retry::{is_retryable_status, sleep_or_cancel};
use crate::engine::publish::store::{created_outcome, existing_outcome, PutOutcome, UploadSource};
use crate::engine::publish::PublishError;

/// How often a vanished session (404/410) is restarted from scratch.
const MAX_SESSION_RESTARTS: u32 = 3;
/// Bytes per read of the chunk reader (one `Bytes` handed to the HTTP body each).
const READ_BUF: u64 = 1024 * 1024;
/// Reads queued ahead of the socket: memory per upload stays near `READ_QUEUE + 2` buffers.
const READ_QUEUE: usize = 2;
/// `308 Resume Incomplete`.
const RESUME_INCOMPLETE: u16 = 308;

enum Initiated {
    Session(SecretString),
    Exists,
}

enum SessionEnd {
    Done(ObjectResource),
    Gone,
    Exists,
}

enum Progressed {
    Offset(u64),
    End(SessionEnd),
}

impl GcsStore {
    pub(super) async fn upload(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        let actual = tokio::fs::metadata(src.path)
            .await
            .map_err(|e| PublishError::local(src.path, e))?
            .len();
        if actual != src.size {
            return Err(PublishError::local(
                src.path,
                std::io::Error::other(format!(
                    "size changed since hashing: {actual} bytes, expected {}",
                    src.size
                )),
            ));
        }
        let mut restarts = 0;
        loop {
            let session = match self.initiate(name, src, cancel).await? {
                Initiated::Session(s) => s,
                Initiated::Exists => return self.raced(name, src, cancel).await,
            };
            let end = match self.send_all(&session, src, cancel).await {
                Ok(end) => end,
                Err(e) => {
                    if matches!(e, PublishError::Cancelled) {
                        self.abort_session(&session).await;
                    }
                    return Err(e);
                }
            };
            match end {
                SessionEnd::Done(obj) => {
                    return created_outcome(&self.label, name, obj.into_remote(), src);
                }
                SessionEnd::Exists => return self.raced(name, src, cancel).await,
                SessionEnd::Gone if restarts < MAX_SESSION_RESTARTS => {
                    restarts += 1;
                    tracing::warn!(store = %self.label, object = name, restarts, "upload session expired; starting a new one");
                }
                SessionEnd::Gone => {
                    return Err(PublishError::Transient {
                        store: self.label.clone(),
                        attempts: restarts + 1,
                        detail: format!("upload session for {name} kept expiring"),
                    })
                }
            }
        }
    }

    /// The precondition failed: someone created the object meanwhile. Same content is fine.
    async fn raced(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        match self.head_inner(name, cancel).await? {
            Some(existing) => existing_outcome(&self.label, name, existing, src),
            None => Err(PublishError::Transient {
                store: self.label.clone(),
                attempts: 1,
                detail: format!("{name}: precondition failed but the object is absent"),
            }),
        }
    }

    async fn initiate(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<Initiated, PublishError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&ifGenerationMatch=0&name={}",
            self.endpoint,
            encode_whole(&self.bucket),
            encode_whole(name)
        );
        let mut meta = serde_json::json!({
            "name": name,
            "contentType": src.content_type,
            "crc32c": b64.encode(src.crc32c.to_be_bytes()),
            "metadata": { "sha256": src.sha256 },
        });
        if let Some(md5) = src.md5 {
            meta["md5Hash"] = serde_json::Value::String(b64.encode(md5));
        }
        let resp = self
            .send("start resumable upload", true, cancel, |c| {
                c.post(&url)
                    .timeout(Duration::from_secs(60))
                    .header("X-Upload-Content-Type", src.content_type)
                    .header("X-Upload-Content-Length", src.size)
                    .json(&meta)
            })
            .await?;
        match resp.status() {
            StatusCode::PRECONDITION_FAILED => Ok(Initiated::Exists),
            s if s.is_success() => {
                let loc = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
                    .ok_or_else(|| PublishError::Refused {
                        store: self.label.clone(),
                        detail: "resumable upload answer has no usable Location".into(),
                    })?;
                tracing::debug!(store = %self.label, object = name, "resumable session started");
                Ok(Initiated::Session(SecretString::new(loc.to_owned())))
            }
            StatusCode::NOT_FOUND => Err(PublishError::NotFound {
                store: self.label.clone(),
                object: "(bucket)".into(),
            }),
            _ => Err(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("start upload of {name}: {}", error_message(resp).await),
            }),
        }
    }

    /// Sends every chunk, resuming from the server's offset after failures.
    async fn send_all(
        &self,
        session: &SecretString,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<SessionEnd, PublishError> {
        let total = src.size;
        let mut offset = 0u64;
        let mut failures = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(PublishError::Cancelled);
            }
            let outcome = if total == 0 {
                self.query(session, total, cancel).await
            } else {
                let end = (offset + self.chunk_size).min(total);
                self.put_chunk(session, src, offset, end, cancel).await
            };
            let failure = match outcome {
                Ok(Progressed::End(end)) => return Ok(end),
                Ok(Progressed::Offset(next)) => {
                    if next > offset {
                        failures = 0;
                    }
                    offset = next;
                    tracing::trace!(store = %self.label, offset, total, "chunk accepted");
                    continue;
                }
                Err(ChunkFailure::Fatal(e)) => return Err(e),
                Err(ChunkFailure::Retry(detail)) => detail,
            };
            failures += 1;
            if failures >= self.retry.max_attempts {
                return Err(PublishError::Transient {
                    store: self.label.clone(),
                    attempts: failures,
                    detail: failure,
                });
            }
            tracing::debug!(store = %self.label, offset, failures, failure = %failure, "chunk failed; re-querying the session");
            sleep_or_cancel(self.retry.backoff(failures), cancel).await?;
            // Ask the server what it kept; a failing query is just another failure.
            match self.query(session, total, cancel).await {
                Ok(Progressed::Offset(next)) => offset = next,
                Ok(Progressed::End(end)) => return Ok(end),
                Err(ChunkFailure::Fatal(e)) => return Err(e),
                Err(ChunkFailure::Retry(d)) => {
                    tracing::debug!(store = %self.label, failure = %d, "session status query failed");
                }
            }
        }
    }

    async fn put_chunk(
        &self,
        session: &SecretString,
        src: &UploadSource<'_>,
        offset: u64,
        end: u64,
        cancel: &CancellationToken,
    ) -> Result<Progressed, ChunkFailure> {
        let len = end - offset;
        let mut file = tokio::fs::File::open(src.path)
            .await
            .map_err(|e| ChunkFailure::Fatal(PublishError::local(src.path, e)))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| ChunkFailure::Fatal(PublishError::local(src.path, e)))?;
        let file = file.into_std().await;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE);
        // The reader ends on its own when the request drops the receiving side.
        drop(tokio::task::spawn_blocking(move || {
            read_range(file, len, tx)
        }));
        let stream = ReceiverStream::new(rx);
        let range = format!("bytes {}-{}/{}", offset, end - 1, src.size);
        // Generous per-chunk deadline: 60 s plus 1 s per 256 KiB.
        let deadline = Duration::from_secs(60 + len / (256 * 1024));
        self.session_request(cancel, |c| {
            c.put(session.expose_secret())
                .timeout(deadline)
                .header(CONTENT_RANGE, range)
                .header(CONTENT_LENGTH, len)
                .header(CONTENT_TYPE, src.content_type)
                .body(Body::wrap_stream(stream))
        })
        .await
    }

    /// `Content-Range: bytes */TOTAL`: what did the server keep?
    async fn query(
        &self,
        session: &SecretString,
        total: u64,
        cancel: &CancellationToken,
    ) -> Result<Progressed, ChunkFailure> {
        self.session_request(cancel, |c| {
            c.put(session.expose_secret())
                .timeout(Duration::from_secs(60))
                .header(CONTENT_RANGE, format!("bytes */{total}"))
                .header(CONTENT_LENGTH, 0)
        })
        .await
    }

    async fn session_request(
        &self,
        cancel: &CancellationToken,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Progressed, ChunkFailure> {
        let token = self
            .tokens
            .token()
            .await
            .map_err(|e| match e.is_transient() {
                true => ChunkFailure::Retry(e.to_string()),
                false => ChunkFailure::Fatal(e.into_publish(&self.label, 1)),
            })?;
        let req = build(&self.http).bearer_auth(token.expose_secret());
        let resp = tokio::select! {
            _ = cancel.cancelled() => return Err(ChunkFailure::Fatal(PublishError::Cancelled)),
            r = req.send() => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Err(ChunkFailure::Retry(describe(e))),
        };
        self.classify(resp).await
    }

    async fn classify(&self, resp: Response) -> Result<Progressed, ChunkFailure> {
        let status = resp.status();
        if status.as_u16() == RESUME_INCOMPLETE {
            let next = resp
                .headers()
                .get(RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_range_end)
                .unwrap_or(0);
            return Ok(Progressed::Offset(next));
        }
        match status {
            s if s.is_success() => {
                let obj: ObjectResource = resp.json().await.map_err(|e| {
                    ChunkFailure::Retry(format!("unreadable final object: {}", describe(e)))
                })?;
                Ok(Progressed::End(SessionEnd::Done(obj)))
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(Progressed::End(SessionEnd::Gone)),
            StatusCode::PRECONDITION_FAILED => Ok(Progressed::End(SessionEnd::Exists)),
            StatusCode::UNAUTHORIZED => {
                self.tokens.invalidate().await;
                Err(ChunkFailure::Retry("HTTP 401 (token refreshed)".into()))
            }
            s if is_retryable_status(s) => Err(ChunkFailure::Retry(format!("HTTP {s}"))),
            StatusCode::FORBIDDEN => Err(ChunkFailure::Fatal(PublishError::Auth {
                store: self.label.clone(),
                detail: error_message(resp).await,
            })),
            _ => Err(ChunkFailure::Fatal(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("upload refused: {}", error_message(resp).await),
            })),
        }
    }

    /// Best effort: tell the server to drop a cancelled session.
    async fn abort_session(&self, session: &SecretString) {
        let r = self
            .http
            .delete(session.expose_secret())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Err(e) = r {
            tracing::debug!(store = %self.label, error = %describe(e), "could not cancel upload session");
        }
    }
}

/// Reader thread of one chunk: reads `len` bytes from the file's position into fresh buffers
/// handed to the request body as they fill (no copy between the read and the socket write, and
/// no zeroing of the buffers first).
fn read_range(file: File, len: u64, tx: Sender<io::Result<Bytes>>) {
    let mut left = len;
    while left > 0 {
        let want = left.min(READ_BUF) as usize;
        let item = read_exact_into(&file, want);
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
        left -= want as u64;
    }
}

/// Reads exactly `want` bytes from the file's position into a new, not pre-zeroed buffer.
fn read_exact_into(file: &File, want: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        let room = want - buf.len();
        let spare = buf.spare_capacity_mut();
        // SAFETY: `spare` is writable, owned memory of at least `room` bytes (capacity ≥ want);
        // read(2) writes at most `room` bytes there and the descriptor stays open meanwhile.
        let n = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), room) };
        match n {
            0 => return Err(io::Error::other("file shrank during the upload")),
            n if n > 0 => {
                // SAFETY: read(2) initialised exactly `n` (≤ room) bytes after the current end.
                unsafe { buf.set_len(buf.len() + n as usize) };
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf.freeze())
}

enum ChunkFailure {
    Retry(String),
    Fatal(PublishError),
}

/// `bytes=0-N` → N + 1 (the next offset to send).
fn parse_range_end(v: &str) -> Option<u64> {
    let (_, last) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    last.trim().parse::<u64>().ok().map(|n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::parse_range_end;

    #[test]
    fn range_header_gives_next_offset() {
        assert_eq!(parse_range_end("bytes=0-262143"), Some(262144));
        assert_eq!(parse_range_end("bytes=0-0"), Some(1));
        assert_eq!(parse_range_end("garbage"), None);
    }
}
