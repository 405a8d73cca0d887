//! Google Cloud Storage through the JSON API on reqwest (not object_store, whose GCS backend
//! speaks the XML API and exposes no md5/crc32c).
//!
//! Uploads are resumable sessions streamed from disk in one request (or in chunks of a multiple of
//! 256 KiB when `publish.chunk_size_mib` asks for it), resumed from the server's `Range` after a
//! cut, created with `ifGenerationMatch=0` so an existing object is
//! never overwritten, with crc32c (and md5 when known) declared up front so the server refuses
//! corrupt data. Costly caveats: an abandoned resumable session holds no billable object but does
//! count against the session limit for a week; the session URI grants upload access without a
//! token, so it is never logged or put into an error.

mod body;
mod builder;
mod error;
mod token;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio_util::sync::CancellationToken;

pub(crate) use builder::require_secure;
pub use builder::{
    GcsBuilder, CHUNK_GRANULARITY, DEFAULT_ENDPOINT, DEFAULT_STALL_TIMEOUT, ENV_GCS_ENDPOINT,
};
pub(crate) use error::describe;

use self::token::TokenCache;
use super::layout::{encode_segments, encode_whole};
use super::store::{existing_outcome, PutOutcome, RemoteObject, Store, UploadSource};
use super::{PublishError, RetryConfig};
use crate::engine::net::retry::{is_retryable_status, sleep_or_cancel, Attempts};
use crate::engine::spec::Backend;

/// A GCS bucket.
#[derive(Debug)]
pub struct GcsStore {
    label: String,
    bucket: String,
    endpoint: String,
    public_base_url: Option<String>,
    /// `None`: the whole rest of the object in one request
    chunk_size: Option<u64>,
    stall_timeout: Duration,
    retry: RetryConfig,
    http: reqwest::Client,
    tokens: Arc<TokenCache>,
}

/// The object resource fields we read.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectResource {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    md5_hash: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

impl ObjectResource {
    fn into_remote(self) -> RemoteObject {
        let b64 = base64::engine::general_purpose::STANDARD;
        let crc32c = self
            .crc32c
            .and_then(|c| b64.decode(c).ok())
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map(u32::from_be_bytes);
        let md5 = self
            .md5_hash
            .and_then(|c| b64.decode(c).ok())
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok());
        RemoteObject {
            name: self.name,
            size: self.size.and_then(|s| s.parse().ok()).unwrap_or(0),
            crc32c,
            md5,
            sha256: self.metadata.and_then(|m| m.get("sha256").cloned()),
            etag: self.etag,
            generation: self.generation,
            store_checksum: None,
            sha256_is_claim: true,
        }
    }
}

/// Largest object-resource answer read into memory.
const OBJECT_LIMIT: u64 = 1024 * 1024;
/// Largest error body read into memory (the rest is not read).
const ERROR_LIMIT: u64 = 64 * 1024;

/// A JSON answer read with a size limit.
async fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response,
    limit: u64,
    store: &str,
) -> Result<T, String> {
    let bytes = super::read_limited(resp, limit, store, "answer")
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// The `message` of a JSON-API error body, else the start of the body, else the status text.
async fn error_message(resp: Response) -> String {
    let status = resp.status();
    let text = String::from_utf8_lossy(&super::read_prefix(resp, ERROR_LIMIT).await).into_owned();
    let msg = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.chars().take(200).collect());
    format!("{status}: {msg}")
}

impl GcsStore {
    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            encode_whole(&self.bucket),
            encode_whole(name)
        )
    }

    /// Sends a request with a bearer token, retrying connection errors, 408/429/5xx (when
    /// `idempotent`) and one 401 (with a fresh token). Returns the first other response.
    async fn send(
        &self,
        what: &str,
        idempotent: bool,
        cancel: &CancellationToken,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, PublishError> {
        let mut attempts = Attempts::new(self.retry);
        let mut reauthed = false;
        loop {
            let attempt = attempts.count() + 1;
            let token = match self.tokens.token().await {
                Ok(t) => t,
                Err(e) if e.is_transient() => match attempts.failed(None) {
                    Some(delay) => {
                        tracing::debug!(store = %self.label, attempt, error = %e, "token request failed; retrying");
                        sleep_or_cancel(delay, cancel).await?;
                        continue;
                    }
                    None => return Err(e.into_publish(&self.label, attempt)),
                },
                Err(e) => return Err(e.into_publish(&self.label, attempt)),
            };
            let req = build(&self.http).bearer_auth(token.expose_secret());
            let result = tokio::select! {
                _ = cancel.cancelled() => return Err(PublishError::Cancelled),
                r = req.send() => r,
            };
            let failure = match result {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !reauthed => {
                    reauthed = true;
                    self.tokens.invalidate().await;
                    continue;
                }
                Ok(resp)
                    if resp.status() == StatusCode::UNAUTHORIZED
                        || resp.status() == StatusCode::FORBIDDEN =>
                {
                    return Err(PublishError::Auth {
                        store: self.label.clone(),
                        detail: format!("{what}: {}", error_message(resp).await),
                    });
                }
                Ok(resp) if idempotent && is_retryable_status(resp.status()) => {
                    format!("{what}: HTTP {}", resp.status())
                }
                Ok(resp) => return Ok(resp),
                Err(e) if idempotent => format!("{what}: {}", describe(e)),
                Err(e) => {
                    return Err(PublishError::Transient {
                        store: self.label.clone(),
                        attempts: attempt,
                        detail: format!("{what}: {}", describe(e)),
                    })
                }
            };
            let Some(delay) = attempts.failed(None) else {
                return Err(PublishError::Transient {
                    store: self.label.clone(),
                    attempts: attempt,
                    detail: failure,
                });
            };
            tracing::debug!(store = %self.label, attempt, failure = %failure, "retrying");
            sleep_or_cancel(delay, cancel).await?;
        }
    }

    async fn head_inner(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<RemoteObject>, PublishError> {
        let url = self.object_url(name);
        let resp = self
            .send("get object metadata", true, cancel, |c| {
                c.get(&url).timeout(Duration::from_secs(60))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let obj: ObjectResource = read_json(resp, OBJECT_LIMIT, &self.label)
                    .await
                    .map_err(|e| PublishError::Refused {
                        store: self.label.clone(),
                        detail: format!("unreadable object metadata for {name}: {e}"),
                    })?;
                Ok(Some(obj.into_remote()))
            }
            _ => Err(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("get {name}: {}", error_message(resp).await),
            }),
        }
    }
}

#[async_trait]
impl Store for GcsStore {
    fn backend(&self) -> Backend {
        Backend::Gcs
    }

    async fn prepare(&self) {
        if let Err(e) = self.tokens.token().await {
            tracing::debug!(store = %self.label, error = %e, "early token fetch failed; the upload retries it");
        }
    }

    async fn put_file_if_absent(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        super::layout::validate_object_name(name)?;
        if let Some(existing) = self.head_inner(name, cancel).await? {
            return existing_outcome(&self.label, name, existing, src);
        }
        self.upload(name, src, cancel).await
    }

    async fn head(&self, name: &str) -> Result<RemoteObject, PublishError> {
        self.head_inner(name, &CancellationToken::new())
            .await?
            .ok_or_else(|| PublishError::NotFound {
                store: self.label.clone(),
                object: name.to_owned(),
            })
    }

    async fn delete(&self, name: &str) -> Result<bool, PublishError> {
        let url = self.object_url(name);
        let resp = self
            .send("delete object", true, &CancellationToken::new(), |c| {
                c.delete(&url).timeout(Duration::from_secs(60))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("delete {name}: {}", error_message(resp).await),
            }),
        }
    }

    async fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, PublishError> {
        let url = format!("{}?alt=media", self.object_url(name));
        let resp = self
            .send("download object", true, &CancellationToken::new(), |c| {
                c.get(&url).timeout(Duration::from_secs(120))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Err(PublishError::NotFound {
                store: self.label.clone(),
                object: name.to_owned(),
            }),
            s if s.is_success() => super::read_limited(resp, limit, &self.label, name).await,
            _ => Err(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("download {name}: {}", error_message(resp).await),
            }),
        }
    }

    fn public_url(&self, name: &str) -> String {
        match &self.public_base_url {
            Some(base) => format!("{base}/{}", encode_segments(name)),
            None => format!(
                "{DEFAULT_ENDPOINT}/{}/{}",
                encode_segments(&self.bucket),
                encode_segments(name)
            ),
        }
    }

    fn storage_uri(&self, name: &str) -> String {
        format!("gs://{}/{}", self.bucket, name)
    }
}
