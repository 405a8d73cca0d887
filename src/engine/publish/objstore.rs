//! The adapter from an `object_store` backend (S3, Azure) to [`Store`]: head with user metadata,
//! put-if-absent, bounded-memory multipart upload from a file, delete, small reads.
//!
//! Idempotency: files up to one part are written with `PutMode::Create` (the store refuses an
//! existing name atomically). Larger files go through a multipart upload, which object_store
//! cannot make conditional: the name is checked before the upload and again before completing,
//! leaving a short race window with a concurrent writer of the same content-addressed name. The
//! SHA-256 is recorded as user metadata `sha256`; that is what "same content" compares.
//!
//! Integrity: S3 requests carry `x-amz-checksum-sha256` (every single put and every part; the
//! store refuses a body that does not match), and the completed object's checksum is read back
//! from the store (`x-amz-checksum-mode: ENABLED` on a presigned HEAD) and compared with the local
//! full-object or composite (per-part) SHA-256; a mismatch deletes the object and claims nothing.
//! Azure with a shared key uploads through `azure::AzureBlocks` (per-block Content-MD5, blob MD5
//! read back); with other credentials object_store cannot add Content-MD5 under its signature, so
//! `remote_checksum` stays empty with a warning. An interrupted multipart
//! upload is aborted; one left behind by a killed process keeps billing for its parts until a
//! bucket lifecycle rule removes it. Parts are uploaded `MAX_CONCURRENCY` at a time and are
//! buffered in memory: about `part_size * (MAX_CONCURRENCY + 1)` (256 MiB with the defaults).

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::layout::{encode_segments, validate_object_name};
use super::s3::checksum::ChecksumProbe;
use super::s3::checksum::{finish_part, Expected};
use super::store::{
    created_outcome, existing_outcome, PutOutcome, RemoteObject, Store, UploadSource,
};
use super::PublishError;
use crate::engine::spec::Backend;

/// Default multipart part size: 64 MiB (few requests per image; S3's minimum is 5 MiB).
pub(crate) const DEFAULT_PART_SIZE: usize = 64 * 1024 * 1024;
/// Parts in flight at once; memory is about `part_size * (MAX_CONCURRENCY + 1)`.
const MAX_CONCURRENCY: usize = 3;

/// An object_store-backed [`Store`].
#[derive(Debug)]
pub(crate) struct ObjStore {
    pub(crate) inner: Arc<dyn ObjectStore>,
    pub(crate) backend: Backend,
    /// e.g. `s3://bucket`
    pub(crate) label: String,
    /// storage URIs are this plus `/` plus the name
    pub(crate) uri_base: String,
    /// public URLs are this plus `/` plus the encoded name
    pub(crate) public_base: String,
    pub(crate) part_size: usize,
    /// S3: reads back the store's own checksum of a completed object
    pub(crate) probe: Option<ChecksumProbe>,
    /// Azure with a shared key: block uploads with Content-MD5, and the blob's MD5 read back
    pub(crate) azure: Option<super::azure::AzureBlocks>,
}

impl ObjStore {
    fn path(&self, name: &str) -> Result<ObjPath, PublishError> {
        validate_object_name(name)?;
        ObjPath::parse(name).map_err(|e| PublishError::InvalidName {
            name: name.escape_debug().to_string(),
            reason: match e {
                object_store::path::Error::BadSegment { .. } => "object_store refused a segment",
                _ => "object_store refused the path",
            },
        })
    }

    fn convert(&self, name: &str, e: object_store::Error) -> PublishError {
        let store = self.label.clone();
        match e {
            object_store::Error::NotFound { .. } => PublishError::NotFound {
                store,
                object: name.to_owned(),
            },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => PublishError::AlreadyExistsDifferent {
                store,
                object: name.to_owned(),
                detail: "the store refused to overwrite it".into(),
            },
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => PublishError::Auth {
                store,
                detail: source.to_string(),
            },
            object_store::Error::NotSupported { source } => PublishError::Refused {
                store,
                detail: source.to_string(),
            },
            other => PublishError::Transient {
                store,
                attempts: 1,
                detail: format!("{other} (after object_store's own retries)"),
            },
        }
    }

    async fn head_inner(&self, name: &str) -> Result<Option<RemoteObject>, PublishError> {
        let path = self.path(name)?;
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.inner.get_opts(&path, opts).await {
            Ok(r) => {
                let sha256 = r
                    .attributes
                    .get(&Attribute::Metadata("sha256".into()))
                    .map(|v| v.as_ref().to_owned());
                let store_checksum = match &self.probe {
                    Some(p) => match p.sha256(&self.path(name)?).await {
                        Ok(v) => v.map(|v| format!("sha256:{v}")),
                        Err(e) => {
                            tracing::warn!(store = %self.label, object = name, error = %e, "could not read the store's checksum");
                            None
                        }
                    },
                    None => None,
                };
                let md5 = match &self.azure {
                    Some(a) => a.content_md5(name).await?,
                    None => None,
                };
                Ok(Some(RemoteObject {
                    name: name.to_owned(),
                    size: r.meta.size,
                    crc32c: None,
                    md5,
                    sha256,
                    etag: r.meta.e_tag.clone(),
                    generation: r.meta.version.clone(),
                    store_checksum,
                    sha256_is_claim: true,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.convert(name, e)),
        }
    }

    fn attributes(src: &UploadSource<'_>) -> Attributes {
        let mut a = Attributes::new();
        a.insert(Attribute::ContentType, src.content_type.to_owned().into());
        a.insert(
            Attribute::Metadata("sha256".into()),
            src.sha256.to_owned().into(),
        );
        a
    }

    async fn upload_small(&self, name: &str, src: &UploadSource<'_>) -> Result<bool, PublishError> {
        let bytes = tokio::fs::read(src.path)
            .await
            .map_err(|e| PublishError::local(src.path, e))?;
        if bytes.len() as u64 != src.size {
            return Err(size_changed(src, bytes.len() as u64));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes: Self::attributes(src),
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&self.path(name)?, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.convert(name, e)),
        }
    }

    async fn upload_multipart(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<Vec<[u8; 32]>, PublishError> {
        let opts = PutMultipartOptions {
            attributes: Self::attributes(src),
            ..Default::default()
        };
        let upload = self
            .inner
            .put_multipart_opts(&self.path(name)?, opts)
            .await
            .map_err(|e| self.convert(name, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let digests = match self.feed(&mut writer, src, cancel).await {
            Ok(d) => d,
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(store = %self.label, object = name, error = %abort, "could not abort multipart upload");
                }
                return Err(e);
            }
        };
        if self.head_inner(name).await?.is_some() {
            let _ = writer.abort().await;
            return Err(PublishError::AlreadyExistsDifferent {
                store: self.label.clone(),
                object: name.to_owned(),
                detail: "created concurrently during the upload".into(),
            });
        }
        writer.finish().await.map_err(|e| self.convert(name, e))?;
        Ok(digests)
    }

    async fn feed(
        &self,
        writer: &mut WriteMultipart,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<Vec<[u8; 32]>, PublishError> {
        let mut file = tokio::fs::File::open(src.path)
            .await
            .map_err(|e| PublishError::local(src.path, e))?;
        let mut buf = vec![0u8; 1024 * 1024];
        let mut sent = 0u64;
        // SHA-256 per part, in the parts WriteMultipart cuts (part_size each, the rest last).
        let mut digests = Vec::new();
        let mut part = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut in_part = 0usize;
        loop {
            if cancel.is_cancelled() {
                return Err(PublishError::Cancelled);
            }
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| PublishError::local(src.path, e))?;
            if n == 0 {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(PublishError::Cancelled),
                r = writer.wait_for_capacity(MAX_CONCURRENCY) => r.map_err(|e| self.convert("(part)", e))?,
            }
            writer.write(&buf[..n]);
            sent += n as u64;
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let take = rest.len().min(self.part_size - in_part);
                part.update(&rest[..take]);
                in_part += take;
                rest = &rest[take..];
                if in_part == self.part_size {
                    digests.push(finish_part(&mut part));
                    in_part = 0;
                }
            }
        }
        if in_part > 0 {
            digests.push(finish_part(&mut part));
        }
        if sent != src.size {
            return Err(size_changed(src, sent));
        }
        Ok(digests)
    }

    /// Compares the checksum the store computed for the object just created with what was sent.
    /// No probe or no reported checksum: the object stays unverified by the store (warned).
    async fn confirm(
        &self,
        name: &str,
        remote: &RemoteObject,
        expected: Option<Expected>,
    ) -> Result<(), PublishError> {
        let reported = remote
            .store_checksum
            .as_deref()
            .and_then(|c| c.strip_prefix("sha256:"));
        let (Some(reported), Some(expected)) = (reported, expected) else {
            tracing::warn!(store = %self.label, object = name, "the store reports no checksum it computed; remote_checksum left empty (verified by size only)");
            return Ok(());
        };
        if let Err(detail) = expected.check(reported) {
            // Never leave bytes that differ from ours under a content-addressed name.
            if let Err(e) = self.inner.delete(&self.path(name)?).await {
                tracing::warn!(store = %self.label, object = name, error = %e, "could not delete the mismatching object");
            }
            return Err(PublishError::Mismatch {
                store: self.label.clone(),
                object: name.to_owned(),
                detail,
            });
        }
        Ok(())
    }
}

fn size_changed(src: &UploadSource<'_>, actual: u64) -> PublishError {
    PublishError::local(
        src.path,
        std::io::Error::other(format!(
            "size changed since hashing: {actual} bytes, expected {}",
            src.size
        )),
    )
}

#[async_trait]
impl Store for ObjStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn put_file_if_absent(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        if let Some(existing) = self.head_inner(name).await? {
            return existing_outcome(&self.label, name, existing, src);
        }
        if let Some(blocks) = &self.azure {
            let (commit, md5) = blocks.upload(name, src, self.part_size, cancel).await?;
            let remote = self
                .head_inner(name)
                .await?
                .ok_or_else(|| PublishError::Transient {
                    store: self.label.clone(),
                    attempts: 1,
                    detail: format!("{name} is not visible after upload"),
                })?;
            // The blob's MD5 is the one every block was checked against, so compare it too.
            let sent = UploadSource {
                md5: Some(md5),
                ..*src
            };
            return match commit {
                super::azure::Commit::Exists => existing_outcome(&self.label, name, remote, &sent),
                super::azure::Commit::Created => created_outcome(&self.label, name, remote, &sent),
            };
        }
        let (created, expected) = if src.size <= self.part_size as u64 {
            (
                self.upload_small(name, src).await?,
                Expected::full(src.sha256),
            )
        } else {
            let digests = self.upload_multipart(name, src, cancel).await?;
            (true, Some(Expected::composite(&digests)))
        };
        let remote = self
            .head_inner(name)
            .await?
            .ok_or_else(|| PublishError::Transient {
                store: self.label.clone(),
                attempts: 1,
                detail: format!("{name} is not visible after upload"),
            })?;
        if !created {
            return existing_outcome(&self.label, name, remote, src);
        }
        self.confirm(name, &remote, expected).await?;
        created_outcome(&self.label, name, remote, src)
    }

    async fn head(&self, name: &str) -> Result<RemoteObject, PublishError> {
        self.head_inner(name)
            .await?
            .ok_or_else(|| PublishError::NotFound {
                store: self.label.clone(),
                object: name.to_owned(),
            })
    }

    async fn delete(&self, name: &str) -> Result<bool, PublishError> {
        if self.head_inner(name).await?.is_none() {
            return Ok(false);
        }
        match self.inner.delete(&self.path(name)?).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.convert(name, e)),
        }
    }

    async fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, PublishError> {
        let path = self.path(name)?;
        let r = self
            .inner
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(|e| self.convert(name, e))?;
        if r.meta.size > limit {
            return Err(PublishError::Refused {
                store: self.label.clone(),
                detail: format!("{name} is larger than {limit} bytes"),
            });
        }
        let bytes = r.bytes().await.map_err(|e| self.convert(name, e))?;
        Ok(bytes.to_vec())
    }

    fn public_url(&self, name: &str) -> String {
        format!("{}/{}", self.public_base, encode_segments(name))
    }

    fn storage_uri(&self, name: &str) -> String {
        format!("{}/{}", self.uri_base, name)
    }
}
