//! Google access tokens from every source Google Cloud users expect: a service-account key, the
//! Application Default Credentials file kinds (`authorized_user`, `external_account` for Workload
//! Identity Federation, `impersonated_service_account`), the GCE/GKE metadata server, and IAM
//! Credentials impersonation on top of any of them.
//!
//! Each kind is a [`TokenSource`] (one small trait, one file per kind: [`key`], [`user`],
//! [`external`], [`impersonate`], [`metadata`]); [`adc`] walks the documented precedence and
//! returns one [`GcsCredential`], which caches the token. Publish code asks that credential for
//! "a token" and never learns the kind. Knows nothing about buckets or uploads.
//!
//! Implemented on the project's reqwest client rather than `google-cloud-auth`: that crate's IAM
//! endpoint for impersonation on top of arbitrary credentials is fixed to
//! `https://iamcredentials.<universe>` (no loopback test endpoint), it signs service-account keys
//! as self-signed JWTs instead of the `token_uri` exchange this project verifies, and it adds
//! background access-boundary look-ups (README, "Dependencies").
//!
//! Secrecy: tokens, refresh tokens, client secrets and subject tokens live in [`SecretString`]s;
//! errors and logs carry the source's description, endpoints and status codes, never values.

pub(crate) mod adc;
mod external;
mod http;
mod impersonate;
mod key;
mod metadata;
mod user;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{CredentialError, GcsServiceAccount, ScopedSecretFile, SecretString};

pub use adc::{
    AdcInputs, ENV_ALLOW_EXECUTABLES, ENV_GCE_METADATA_HOST, ENV_GOOGLE_APPLICATION_CREDENTIALS,
    ENV_IAM_ENDPOINT, ENV_NO_GCE_CHECK,
};

/// The scope needed to create, read and delete objects.
pub const SCOPE_DEVSTORAGE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// The scope a source token needs to call IAM Credentials (impersonation).
pub const SCOPE_CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// No token is trusted to live longer than this, whatever its issuer says.
const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// One access token and how long it lives.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// the bearer token (redacted in Debug)
    pub token: SecretString,
    /// lifetime from when it was requested, when the issuer said
    pub expires_in: Option<Duration>,
}

/// One kind of token source. Implementations hold their own secrets and never log them.
#[async_trait]
pub(crate) trait TokenSource: Send + Sync + fmt::Debug {
    /// Fetches a fresh token for `scope` (sources with fixed scopes ignore it).
    async fn fetch(
        &self,
        http: &reqwest::Client,
        scope: &str,
    ) -> Result<AccessToken, CredentialError>;
    /// What this is, for logs and errors ("authorized_user (from GOOGLE_APPLICATION_CREDENTIALS
    /// /path)"); never a secret.
    fn describe(&self) -> String;
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    refresh_at: Instant,
    expires_at: SystemTime,
}

struct Inner {
    source: Box<dyn TokenSource>,
    /// the service-account key when the credential is exactly a key (handed to commands as JSON)
    key: Option<GcsServiceAccount>,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

/// A resolved GCS credential: one token source plus a token cache. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct GcsCredential {
    inner: Arc<Inner>,
}

impl fmt::Debug for GcsCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsCredential")
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for GcsCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.source.describe())
    }
}

/// What a publish command gets: a 0600 file and the variables that name it.
#[derive(Debug)]
pub struct CommandCredential {
    /// the file (removed on drop)
    pub file: ScopedSecretFile,
    /// the environment variables to set (paths, kind, expiry; never the secret)
    pub env: Vec<(String, String)>,
}

/// Env var holding the path of a service-account key file given to a publish command.
pub const ENV_COMMAND_SA_JSON_FILE: &str = "HYOPS_VYOS_GCS_SA_JSON_FILE";
/// Env var holding the path of an access-token file given to a publish command.
pub const ENV_COMMAND_ACCESS_TOKEN_FILE: &str = "HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE";
/// Env var naming what the command got: `service_account_key` or `access_token`.
pub const ENV_COMMAND_CREDENTIAL_TYPE: &str = "HYOPS_VYOS_GCS_CREDENTIAL_TYPE";
/// Env var with the access token's expiry (RFC 3339, UTC).
pub const ENV_COMMAND_TOKEN_EXPIRES_AT: &str = "HYOPS_VYOS_GCS_ACCESS_TOKEN_EXPIRES_AT";

impl GcsCredential {
    pub(crate) fn new(source: Box<dyn TokenSource>, key: Option<GcsServiceAccount>) -> Self {
        GcsCredential {
            inner: Arc::new(Inner {
                source,
                key,
                http: http::client(),
                cached: Mutex::new(None),
            }),
        }
    }

    /// A credential that signs with a service-account key (jwt-bearer at its `token_uri`).
    pub fn from_service_account(account: GcsServiceAccount) -> Self {
        Self::new(
            Box::new(key::KeySource::new(account.clone())),
            Some(account),
        )
    }

    /// The service-account key, when this credential is exactly one (no impersonation).
    pub fn service_account(&self) -> Option<&GcsServiceAccount> {
        self.inner.key.as_ref()
    }

    /// A valid GCS token (`devstorage.read_write`), cached until five minutes before expiry (or
    /// half its life for short-lived tokens).
    pub async fn token(&self) -> Result<SecretString, CredentialError> {
        Ok(self.cached_token().await?.token)
    }

    async fn cached_token(&self) -> Result<Cached, CredentialError> {
        let mut guard = self.inner.cached.lock().await;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.clone());
            }
        }
        let started = Instant::now();
        let started_wall = SystemTime::now();
        tracing::debug!(credential = %self, "requesting access token");
        let t = self
            .inner
            .source
            .fetch(&self.inner.http, SCOPE_DEVSTORAGE)
            .await?;
        // A huge `expires_in` must neither overflow an `Instant` nor pin a token forever.
        let lifetime = t
            .expires_in
            .unwrap_or(Duration::from_secs(3600))
            .min(MAX_LIFETIME);
        let margin = Duration::from_secs(300).min(lifetime / 2);
        let fresh = Cached {
            token: t.token,
            refresh_at: started + (lifetime - margin),
            expires_at: started_wall + lifetime,
        };
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the cached token (after the store answered 401).
    pub async fn invalidate(&self) {
        *self.inner.cached.lock().await = None;
    }

    /// The credential a publish command gets, by path only: the key JSON
    /// (`HYOPS_VYOS_GCS_SA_JSON_FILE`) for a plain key, else a short-lived access token
    /// (`HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE`: the token's ASCII characters alone, no newline, the
    /// format `gcloud --access-token-file` reads; expiry in `HYOPS_VYOS_GCS_ACCESS_TOKEN_EXPIRES_AT`).
    pub async fn command_credential(&self) -> Result<CommandCredential, CredentialError> {
        if let Some(key) = &self.inner.key {
            let file = key.to_scoped_file()?;
            let env = vec![
                (
                    ENV_COMMAND_SA_JSON_FILE.to_owned(),
                    file.path().display().to_string(),
                ),
                (
                    ENV_COMMAND_CREDENTIAL_TYPE.to_owned(),
                    "service_account_key".to_owned(),
                ),
            ];
            return Ok(CommandCredential { file, env });
        }
        let t = self.cached_token().await?;
        let file = ScopedSecretFile::create("gcs-access-token", t.token.expose_secret().as_bytes())
            .map_err(CredentialError::ScopedFile)?;
        let expires = time::OffsetDateTime::from(t.expires_at)
            .replace_nanosecond(0)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let env = vec![
            (
                ENV_COMMAND_ACCESS_TOKEN_FILE.to_owned(),
                file.path().display().to_string(),
            ),
            (
                ENV_COMMAND_CREDENTIAL_TYPE.to_owned(),
                "access_token".to_owned(),
            ),
            (ENV_COMMAND_TOKEN_EXPIRES_AT.to_owned(), expires),
        ];
        Ok(CommandCredential { file, env })
    }
}
