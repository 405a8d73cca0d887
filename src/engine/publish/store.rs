//! The [`Store`] trait every backend implements, and the types it speaks: what to upload
//! ([`UploadSource`]), what the store holds ([`RemoteObject`]) and what a put did ([`PutOutcome`]).
//!
//! Idempotency, stated per operation: `put_file_if_absent` never overwrites (an identical object
//! counts as success, a different one is [`PublishError::AlreadyExistsDifferent`]); `head` and
//! `read_small` are read-only; `delete` of an absent object is not an error.

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use base64::Engine as _;
use tokio_util::sync::CancellationToken;

use super::PublishError;
use crate::engine::spec::Backend;

/// A local file to upload, with the digests the caller already computed.
#[derive(Debug, Clone, Copy)]
pub struct UploadSource<'a> {
    /// the file
    pub path: &'a Path,
    /// its size in bytes
    pub size: u64,
    /// lowercase hex SHA-256 (stored as object metadata where the store supports it)
    pub sha256: &'a str,
    /// CRC-32C (Castagnoli) of the content
    pub crc32c: u32,
    /// MD5 of the content, when computed
    pub md5: Option<[u8; 16]>,
    /// the Content-Type to record
    pub content_type: &'a str,
}

/// What a store reports about an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteObject {
    /// object name (key) in the bucket/container/root
    pub name: String,
    /// size in bytes
    pub size: u64,
    /// CRC-32C, when the store gives it
    pub crc32c: Option<u32>,
    /// MD5, when the store gives it
    pub md5: Option<[u8; 16]>,
    /// SHA-256 hex from object metadata, when recorded
    pub sha256: Option<String>,
    /// ETag, when the store gives it
    pub etag: Option<String>,
    /// generation / version id, when the store has one
    pub generation: Option<String>,
    /// a checksum the store computed itself and reports beyond crc32c/md5, as `kind:value`
    /// (S3 `x-amz-checksum-sha256`: `sha256:<base64>`, or `sha256:<base64>-<parts>` composite)
    pub store_checksum: Option<String>,
    /// `sha256` is only user metadata an uploader wrote (S3, Azure): it identifies content for
    /// put-if-absent but is no evidence of what the store holds, so it is never a `remote_checksum`
    pub sha256_is_claim: bool,
}

impl RemoteObject {
    /// `remote_checksum` as the store gives it: `crc32c:<base64>` (GCS), `md5:<base64>`, the
    /// store's own `sha256:<base64>[-parts]` (S3), `sha256:<hex>` (file backend, hashed from the
    /// stored bytes), else `etag:<etag>` (plain https). Empty when the store computed nothing
    /// (uploader-written metadata does not count).
    pub fn checksum_string(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Some(c) = self.crc32c {
            return format!("crc32c:{}", b64.encode(c.to_be_bytes()));
        }
        if let Some(m) = self.md5 {
            return format!("md5:{}", b64.encode(m));
        }
        if let Some(c) = &self.store_checksum {
            return c.clone();
        }
        if self.sha256_is_claim {
            return String::new();
        }
        if let Some(s) = &self.sha256 {
            return format!("sha256:{s}");
        }
        match &self.etag {
            Some(e) => format!("etag:{}", e.trim_matches('"')),
            None => String::new(),
        }
    }

    /// Checks the object against a local source: size, then every digest both sides have. At
    /// least one digest must be comparable. `Err` says what differs.
    pub fn matches_source(&self, src: &UploadSource<'_>) -> Result<(), String> {
        self.matches(src.size, Some(src.crc32c), src.md5, Some(src.sha256))
    }

    /// Like [`RemoteObject::matches_source`] with optional expectations.
    pub fn matches(
        &self,
        size: u64,
        crc32c: Option<u32>,
        md5: Option<[u8; 16]>,
        sha256: Option<&str>,
    ) -> Result<(), String> {
        if self.size != size {
            return Err(format!("size {} != expected {}", self.size, size));
        }
        let mut compared = false;
        if let (Some(r), Some(l)) = (self.crc32c, crc32c) {
            if r != l {
                return Err(format!("crc32c {r:08x} != expected {l:08x}"));
            }
            compared = true;
        }
        if let (Some(r), Some(l)) = (self.md5, md5) {
            if r != l {
                return Err(format!(
                    "md5 {} != expected {}",
                    hex::encode(r),
                    hex::encode(l)
                ));
            }
            compared = true;
        }
        if let (Some(r), Some(l)) = (self.sha256.as_deref(), sha256) {
            if !r.eq_ignore_ascii_case(l) {
                return Err(format!("sha256 {r} != expected {l}"));
            }
            compared = true;
        }
        if compared {
            Ok(())
        } else {
            Err("no checksum to compare (object was not written by this provider?)".into())
        }
    }
}

/// What `put_file_if_absent` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was uploaded and verified.
    Created(RemoteObject),
    /// An identical object was already there; nothing was uploaded.
    AlreadyPresent(RemoteObject),
}

impl PutOutcome {
    /// The remote object either way.
    pub fn object(&self) -> &RemoteObject {
        match self {
            PutOutcome::Created(o) | PutOutcome::AlreadyPresent(o) => o,
        }
    }
}

/// One object repository (a bucket, container or directory). Object-safe: callers hold
/// `Box<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Gets ready for requests ahead of time (a GCS store fetches its access token), so that
    /// work done meanwhile (hashing) hides the round trip. The default does nothing. A failure
    /// is not reported here: the first request that needs the credential reports it.
    async fn prepare(&self) {}

    /// Uploads `src` as `name` unless it exists. Existing and identical: `AlreadyPresent`.
    /// Existing and different: `AlreadyExistsDifferent` (never overwritten). The created object
    /// is checked against `src` before `Created` is returned.
    async fn put_file_if_absent(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError>;

    /// The object's metadata; `NotFound` when absent.
    async fn head(&self, name: &str) -> Result<RemoteObject, PublishError>;

    /// Deletes the object; `Ok(false)` when it was already absent.
    async fn delete(&self, name: &str) -> Result<bool, PublishError>;

    /// Reads a small object (a manifest) whole; refuses objects larger than `limit`.
    async fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, PublishError>;

    /// The public (https) URL of `name`.
    fn public_url(&self, name: &str) -> String;

    /// The storage URI of `name` (`gs://`, `s3://`, `az://`, `file://`).
    fn storage_uri(&self, name: &str) -> String;
}

/// Shared put-if-absent decision for an object found at the name.
/// The outcome of an upload this process just made: the stored object must match what was sent
/// (size and checksums), else [`PublishError::Mismatch`]. Nothing is claimed otherwise.
pub(crate) fn created_outcome(
    store: &str,
    name: &str,
    created: RemoteObject,
    src: &UploadSource<'_>,
) -> Result<PutOutcome, PublishError> {
    created
        .matches_source(src)
        .map_err(|detail| PublishError::Mismatch {
            store: store.to_owned(),
            object: name.to_owned(),
            detail,
        })?;
    tracing::info!(
        store,
        object = name,
        size = src.size,
        "uploaded and verified"
    );
    Ok(PutOutcome::Created(created))
}

pub(crate) fn existing_outcome(
    store: &str,
    name: &str,
    existing: RemoteObject,
    src: &UploadSource<'_>,
) -> Result<PutOutcome, PublishError> {
    match existing.matches_source(src) {
        Ok(()) => {
            tracing::info!(
                store,
                object = name,
                "identical object already published; upload skipped"
            );
            Ok(PutOutcome::AlreadyPresent(existing))
        }
        Err(detail) => Err(PublishError::AlreadyExistsDifferent {
            store: store.to_owned(),
            object: name.to_owned(),
            detail,
        }),
    }
}
