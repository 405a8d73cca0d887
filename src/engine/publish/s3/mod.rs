//! S3 and S3-compatible stores through object_store. Credentials come from the standard `AWS_*`
//! environment variables ([`S3Builder::from_env`]); `s3_endpoint` / `s3_region` from the provider.
//! See the object_store adapter for idempotency and the multipart caveat.

pub(crate) mod checksum;

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::ClientConfigKey;

use self::checksum::ChecksumProbe;
use super::layout::encode_segments;
use super::objstore::{ObjStore, DEFAULT_PART_SIZE};
use super::{PublishError, Store};
use crate::engine::spec::Backend;

/// Builds an S3 [`Store`].
#[derive(Debug, Clone, Default)]
pub struct S3Builder {
    inner: Option<AmazonS3Builder>,
    bucket: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    public_base_url: Option<String>,
    access_key: Option<(String, String)>,
    part_size: Option<usize>,
}

impl S3Builder {
    /// Defaults; no environment.
    pub fn new() -> Self {
        S3Builder {
            inner: Some(AmazonS3Builder::new()),
            ..Default::default()
        }
    }

    /// Reads the standard `AWS_*` variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
    pub fn from_env() -> Self {
        S3Builder {
            inner: Some(AmazonS3Builder::from_env()),
            ..Default::default()
        }
    }

    /// The bucket.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// `s3_endpoint` (path-style requests; http allowed only to loopback).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// `s3_region`.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// `public_base_url`.
    pub fn with_public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self
    }

    /// Static keys (instead of the environment).
    pub fn with_access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.access_key = Some((id.into(), secret.into()));
        self
    }

    /// Multipart part size (≥ 5 MiB for S3).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Box<dyn Store>, PublishError> {
        let bucket = self
            .bucket
            .ok_or_else(|| PublishError::Config("s3: no bucket".into()))?;
        let region = self.region.unwrap_or_else(|| "us-east-1".into());
        let mut b = self
            .inner
            .unwrap_or_default()
            .with_bucket_name(&bucket)
            .with_region(&region)
            // Parts are 64 MiB: allow slow links (object_store's default request timeout is 30 s).
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300s");
        if let Some((id, secret)) = self.access_key {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let mut public_base = format!("https://{bucket}.s3.{region}.amazonaws.com");
        if let Some(ep) = &self.endpoint {
            let ep = ep.trim_end_matches('/');
            super::gcs::require_secure("s3_endpoint", ep)?;
            b = b
                .with_endpoint(ep)
                .with_allow_http(ep.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
            public_base = format!("{ep}/{}", encode_segments(&bucket));
        }
        if let Some(p) = self.public_base_url.filter(|p| !p.trim().is_empty()) {
            public_base = p.trim().trim_end_matches('/').to_owned();
        }
        let inner = Arc::new(
            b.with_checksum_algorithm(Checksum::SHA256)
                .build()
                .map_err(|e| PublishError::Config(format!("s3: {e}")))?,
        );
        let probe = ChecksumProbe::new(inner.clone())?;
        Ok(Box::new(ObjStore {
            inner,
            backend: Backend::S3,
            label: format!("s3://{bucket}"),
            uri_base: format!("s3://{bucket}"),
            public_base,
            part_size: self.part_size.unwrap_or(DEFAULT_PART_SIZE),
            probe: Some(probe),
            azure: None,
        }))
    }
}
