//! OAuth access tokens for a service account: an RS256 JWT (iss, scope, aud = token_uri, iat,
//! exp ≤ 1 h) signed with aws-lc-rs and exchanged at `token_uri` with grant type jwt-bearer. The
//! token is cached and refreshed five minutes before it expires (or at half-life for short-lived
//! tokens); [`TokenCache::invalidate`] drops it after a 401.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::Mutex;

use super::error::GcsError;
use crate::engine::credentials::{GcsServiceAccount, SecretString};

/// The scope needed to create, read and delete objects.
pub(super) const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const LIFETIME_SECS: u64 = 3600;
/// A token answer is never trusted to live longer than this (a huge `expires_in` must not
/// overflow an `Instant` or pin a token forever).
const MAX_LIFETIME_SECS: u64 = 12 * 3600;
/// Largest token-endpoint answer read into memory.
const ANSWER_LIMIT: u64 = 64 * 1024;

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// A per-store cache of one access token.
pub(super) struct TokenCache {
    account: GcsServiceAccount,
    http: reqwest::Client,
    cached: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenCache {
    pub(super) fn new(account: GcsServiceAccount, http: reqwest::Client) -> Self {
        TokenCache {
            account,
            http,
            cached: Mutex::new(None),
        }
    }

    /// A valid token, fetched when none is cached or the cached one is near expiry.
    pub(super) async fn token(&self) -> Result<SecretString, GcsError> {
        let mut guard = self.cached.lock().await;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *guard = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (after the store answered 401).
    pub(super) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    fn assertion(&self) -> Result<SecretString, GcsError> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = self.account.private_key_id() {
            header["kid"] = serde_json::Value::String(kid.to_owned());
        }
        let claims = serde_json::json!({
            "iss": self.account.client_email(),
            "scope": SCOPE,
            "aud": self.account.token_uri(),
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let sig = self.account.sign_rs256(signing_input.as_bytes())?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            b64.encode(sig)
        )))
    }

    async fn fetch(&self) -> Result<CachedToken, GcsError> {
        let assertion = self.assertion()?;
        let uri = self.account.token_uri();
        tracing::debug!(
            token_uri = uri,
            account = self.account.client_email(),
            "requesting access token"
        );
        let started = Instant::now();
        let resp = self
            .http
            .post(uri)
            .timeout(Duration::from_secs(60))
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.expose_secret()),
            ])
            .send()
            .await
            .map_err(|e| GcsError::Http(super::error::describe(e)))?;
        let status = resp.status();
        if !status.is_success() {
            let raw = crate::engine::publish::read_prefix(resp, ANSWER_LIMIT).await;
            let body: TokenErrorBody = serde_json::from_slice(&raw).unwrap_or_default();
            let detail = format!(
                "token endpoint {uri} answered {status}: {} {}",
                body.error, body.error_description
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                GcsError::TokenTransient(detail)
            } else {
                GcsError::TokenRefused(detail)
            });
        }
        let body: TokenResponse = super::read_json(resp, ANSWER_LIMIT, uri)
            .await
            .map_err(|e| {
                GcsError::TokenRefused(format!("token endpoint {uri}: unreadable answer: {e}"))
            })?;
        let lifetime = Duration::from_secs(
            body.expires_in
                .unwrap_or(LIFETIME_SECS)
                .min(MAX_LIFETIME_SECS),
        );
        let margin = Duration::from_secs(300).min(lifetime / 2);
        Ok(CachedToken {
            token: SecretString::new(body.access_token),
            refresh_at: started + (lifetime - margin),
        })
    }
}
