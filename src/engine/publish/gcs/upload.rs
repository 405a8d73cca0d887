//! The resumable upload: initiate with `ifGenerationMatch=0` and declared checksums, then send
//! the whole object in ONE streamed PUT (or, with `publish.chunk_size_mib`, in chunks), from disk
//! with bounded memory ([`super::body`]). After any failure the session is asked what it kept
//! (`Content-Range: bytes */TOTAL`) and the upload goes on from there; the finished object is
//! checked against the local digests.
//!
//! Bounds: a Location on another origin than the endpoint is refused before the token could go
//! there; failures, 308s without progress and stalled bodies (no byte taken for the stall
//! timeout) all count against `max_attempts`, with backoff; a 412 at finalize adopts the object
//! that is there only when the store's own checksums say it is byte-identical.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

use super::body::{file_range, Progress};
use super::{describe, error_message, GcsStore, ObjectResource, OBJECT_LIMIT};
use crate::engine::credentials::SecretString;
use crate::engine::net::retry::{is_retryable_status, sleep_or_cancel, Attempts};
use crate::engine::publish::layout::encode_whole;
use crate::engine::publish::store::{created_outcome, existing_outcome, PutOutcome, UploadSource};
use crate::engine::publish::PublishError;

/// How often a vanished session (404/410) is restarted from scratch.
const MAX_SESSION_RESTARTS: u32 = 3;
/// `308 Resume Incomplete`.
const RESUME_INCOMPLETE: u16 = 308;
/// How often a running data request checks its body for a stall.
const STALL_TICK: Duration = Duration::from_millis(250);

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

    /// The precondition failed: someone else published the object meanwhile. It is adopted only
    /// when the store's own digests (crc32c, and md5 when both sides have it) and size equal ours:
    /// metadata such as a recorded sha256 is someone's claim, not evidence.
    async fn raced(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        match self.head_inner(name, cancel).await? {
            Some(existing) => {
                let computed = existing.crc32c.is_some()
                    && (existing.md5.is_none() || src.md5.is_none() || existing.md5 == src.md5);
                if !computed || existing.crc32c != Some(src.crc32c) || existing.size != src.size {
                    return Err(PublishError::AlreadyExistsDifferent {
                        store: self.label.clone(),
                        object: name.to_owned(),
                        detail: "someone else published this name while we uploaded, and the \
                                 store's checksums show different bytes (or none); kept theirs, \
                                 claimed nothing"
                            .into(),
                    });
                }
                tracing::warn!(store = %self.label, object = name, "someone else published identical bytes meanwhile; adopting them");
                existing_outcome(&self.label, name, existing, src)
            }
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
                    .ok_or_else(|| PublishError::Refused {
                        store: self.label.clone(),
                        detail: "resumable upload answer has no usable Location".into(),
                    })?;
                if !same_origin(&self.endpoint, loc) {
                    return Err(PublishError::Refused {
                        store: self.label.clone(),
                        detail: format!(
                            "the upload session Location is not on {} (scheme, host or port \
                             differ); refused without sending it the token",
                            crate::engine::publish::redact_url(&self.endpoint)
                        ),
                    });
                }
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

    /// Sends the rest of the object (one request, or one per chunk), resuming from the server's
    /// offset after failures. After a failure the offset is unknown until a status query answers;
    /// no data is sent from a guess. Every failure (of data requests and queries alike), 308
    /// without progress and stall counts against `max_attempts`, with backoff; a data request
    /// that made progress resets the count.
    async fn send_all(
        &self,
        session: &SecretString,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<SessionEnd, PublishError> {
        let total = src.size;
        let mut offset = 0u64;
        let mut attempts = Attempts::new(self.retry);
        let mut known = true;
        loop {
            if cancel.is_cancelled() {
                return Err(PublishError::Cancelled);
            }
            let querying = !known || total == 0;
            let outcome = if querying {
                self.query(session, total, cancel).await
            } else {
                let end = match self.chunk_size {
                    Some(c) => (offset + c).min(total),
                    None => total,
                };
                self.put_range(session, src, offset, end, cancel).await
            };
            let failure = match outcome {
                Ok(Progressed::End(end)) => return Ok(end),
                Ok(Progressed::Offset(next)) if querying && total > 0 => {
                    tracing::debug!(store = %self.label, offset = next, total, "resuming from the committed offset");
                    known = true;
                    offset = next;
                    continue;
                }
                Ok(Progressed::Offset(next)) if next > offset => {
                    attempts.reset();
                    offset = next;
                    tracing::trace!(store = %self.label, offset, total, "data accepted");
                    continue;
                }
                Ok(Progressed::Offset(next)) => {
                    offset = next;
                    format!("308 without progress at byte {next}")
                }
                Err(ChunkFailure::Fatal(e)) => return Err(e),
                Err(ChunkFailure::Retry(detail)) => {
                    known = false;
                    detail
                }
            };
            let Some(delay) = attempts.failed(None) else {
                return Err(PublishError::Transient {
                    store: self.label.clone(),
                    attempts: attempts.count(),
                    detail: failure,
                });
            };
            tracing::debug!(store = %self.label, offset, failures = attempts.count(), failure = %failure, "upload request failed; backing off");
            sleep_or_cancel(delay, cancel).await?;
        }
    }

    /// One data request: bytes `offset..end` of the file.
    async fn put_range(
        &self,
        session: &SecretString,
        src: &UploadSource<'_>,
        offset: u64,
        end: u64,
        cancel: &CancellationToken,
    ) -> Result<Progressed, ChunkFailure> {
        let len = end - offset;
        let (body, progress) = file_range(src.path, offset, len)
            .map_err(|e| ChunkFailure::Fatal(PublishError::local(src.path, e)))?;
        let range = format!("bytes {}-{}/{}", offset, end - 1, src.size);
        // Generous overall deadline: 60 s plus 1 s per 256 KiB (stalls are caught much sooner).
        let deadline = Duration::from_secs(60 + len / (256 * 1024));
        self.session_request(cancel, Some(&progress), |c| {
            c.put(session.expose_secret())
                .timeout(deadline)
                .header(CONTENT_RANGE, range)
                .header(CONTENT_LENGTH, len)
                .header(CONTENT_TYPE, src.content_type)
                .body(body)
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
        self.session_request(cancel, None, |c| {
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
        progress: Option<&Progress>,
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
        let send = build(&self.http).bearer_auth(token.expose_secret()).send();
        tokio::pin!(send);
        let resp = loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(ChunkFailure::Fatal(PublishError::Cancelled)),
                r = &mut send => break r,
                _ = tokio::time::sleep(STALL_TICK), if progress.is_some() => {
                    let idle = progress.and_then(Progress::idle).unwrap_or_default();
                    if idle >= self.stall_timeout {
                        return Err(ChunkFailure::Retry(format!(
                            "upload stalled: the server took no data for {} s",
                            idle.as_secs()
                        )));
                    }
                }
            }
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
                let obj: ObjectResource = super::read_json(resp, OBJECT_LIMIT, &self.label)
                    .await
                    .map_err(|e| {
                    ChunkFailure::Retry(format!("unreadable final object: {e}"))
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

enum ChunkFailure {
    Retry(String),
    Fatal(PublishError),
}

/// Whether a session Location is on the endpoint's origin (scheme, host and port): the bearer
/// token goes to the session URI, so anything else is refused.
fn same_origin(endpoint: &str, location: &str) -> bool {
    match (url::Url::parse(endpoint), url::Url::parse(location)) {
        (Ok(e), Ok(l)) => {
            e.scheme() == l.scheme()
                && e.host_str().is_some()
                && e.host_str() == l.host_str()
                && e.port_or_known_default() == l.port_or_known_default()
        }
        _ => false,
    }
}

/// `bytes=0-N` → N + 1 (the next offset to send).
fn parse_range_end(v: &str) -> Option<u64> {
    let (_, last) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    last.trim().parse::<u64>().ok().map(|n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::{parse_range_end, same_origin};

    #[test]
    fn session_location_must_share_the_endpoint_origin() {
        let e = "https://storage.googleapis.com";
        assert!(same_origin(
            e,
            "https://storage.googleapis.com/upload/x?upload_id=1"
        ));
        assert!(same_origin(
            e,
            "https://storage.googleapis.com:443/upload/x"
        ));
        assert!(!same_origin(e, "http://storage.googleapis.com/upload/x"));
        assert!(!same_origin(e, "https://evil.example/upload/x"));
        assert!(!same_origin(
            e,
            "https://storage.googleapis.com:8443/upload/x"
        ));
        assert!(!same_origin(e, "/upload/x"));
        assert!(!same_origin("http://127.0.0.1:9", "http://localhost:9/u"));
    }

    #[test]
    fn range_header_gives_next_offset() {
        assert_eq!(parse_range_end("bytes=0-262143"), Some(262144));
        assert_eq!(parse_range_end("bytes=0-0"), Some(1));
        assert_eq!(parse_range_end("garbage"), None);
    }
}
