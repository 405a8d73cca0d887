//! [`GcsBuilder`]: configuration of the GCS backend (bucket, JSON-API endpoint, public URL base,
//! service account, optional chunk size, stall timeout, retries). Reads env `HYOPS_GCS_ENDPOINT` in [`GcsBuilder::from_env`].

use std::sync::Arc;
use std::time::Duration;

use super::token::TokenCache;
use super::GcsStore;
use crate::engine::credentials::{GcsCredential, GcsServiceAccount};
use crate::engine::publish::{PublishError, RetryConfig};

/// Env override of the JSON-API base URL (emulators, private endpoints).
pub const ENV_GCS_ENDPOINT: &str = "HYOPS_GCS_ENDPOINT";
/// The public JSON-API endpoint (also the public download host).
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// Resumable chunks must be multiples of this.
pub const CHUNK_GRANULARITY: u64 = 256 * 1024;
/// A data request whose body the server takes no byte of for this long is abandoned and the
/// session re-queried.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds a [`GcsStore`].
#[derive(Debug, Clone)]
pub struct GcsBuilder {
    bucket: Option<String>,
    endpoint: Option<String>,
    public_base_url: Option<String>,
    credential: Option<GcsCredential>,
    chunk_size: Option<u64>,
    stall_timeout: Duration,
    retry: RetryConfig,
}

impl Default for GcsBuilder {
    fn default() -> Self {
        GcsBuilder {
            bucket: None,
            endpoint: None,
            public_base_url: None,
            credential: None,
            chunk_size: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            retry: RetryConfig::default(),
        }
    }
}

impl GcsBuilder {
    /// Defaults only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults plus env `HYOPS_GCS_ENDPOINT`.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Ok(e) = std::env::var(ENV_GCS_ENDPOINT) {
            if !e.trim().is_empty() {
                b.endpoint = Some(e.trim().to_owned());
            }
        }
        b
    }

    /// The bucket.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// The JSON-API base URL (default `https://storage.googleapis.com`).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// `public_base_url`: artifact URLs become this plus the object name.
    pub fn with_public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self
    }

    /// The service account that signs token requests.
    pub fn with_service_account(self, account: GcsServiceAccount) -> Self {
        self.with_credential(GcsCredential::from_service_account(account))
    }

    /// The credential tokens come from (any source kind).
    pub fn with_credential(mut self, credential: GcsCredential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Send the object in chunks of this size (a positive multiple of 256 KiB) instead of the
    /// default single request. Only worth it behind proxies that cap request bodies.
    pub fn with_chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// How long a data request may wait for the server to take more of its body (default 60 s).
    pub fn with_stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// Retry policy.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<GcsStore, PublishError> {
        let bucket = self
            .bucket
            .ok_or_else(|| PublishError::Config("gcs: no bucket".into()))?;
        validate_bucket(&bucket)?;
        let endpoint = self
            .endpoint
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim_end_matches('/')
            .to_owned();
        require_secure("gcs_endpoint", &endpoint)?;
        let credential = self.credential.ok_or(PublishError::Credentials(
            crate::engine::credentials::CredentialError::Missing,
        ))?;
        if let Some(account) = credential.service_account() {
            require_secure("token_uri", account.token_uri())?;
        }
        if let Some(c) = self
            .chunk_size
            .filter(|c| *c == 0 || c % CHUNK_GRANULARITY != 0)
        {
            return Err(PublishError::Config(format!(
                "gcs: chunk size {c} is not a positive multiple of 256 KiB"
            )));
        }
        let public_base_url = match self.public_base_url {
            Some(b) if !b.trim().is_empty() => {
                let b = b.trim().trim_end_matches('/').to_owned();
                url::Url::parse(&b).map_err(|e| {
                    PublishError::Config(format!("public_base_url {b:?} is not a URL: {e}"))
                })?;
                Some(b)
            }
            _ => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PublishError::Config(format!("gcs: HTTP client: {e}")))?;
        Ok(GcsStore {
            label: format!("gs://{bucket}"),
            tokens: Arc::new(TokenCache::new(credential)),
            bucket,
            endpoint,
            public_base_url,
            chunk_size: self.chunk_size,
            stall_timeout: self.stall_timeout,
            retry: self.retry,
            http,
        })
    }
}

/// GCS bucket naming: 3–222 characters of lowercase letters, digits, `-`, `_`, `.`, starting and
/// ending with a letter or digit.
fn validate_bucket(b: &str) -> Result<(), PublishError> {
    let ok = (3..=222).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c))
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(PublishError::Config(format!(
            "gcs: {b:?} is not a valid bucket name"
        )))
    }
}

/// https anywhere; plain http only to a loopback host (emulators, test token endpoints).
pub(crate) fn require_secure(what: &str, url: &str) -> Result<(), PublishError> {
    let u = url::Url::parse(url)
        .map_err(|e| PublishError::Config(format!("{what} {url:?} is not a URL: {e}")))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        _ => Err(PublishError::Config(format!(
            "{what} must use https (plain http is allowed only to a loopback address)"
        ))),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
