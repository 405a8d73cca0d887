//! Service-account key: an RS256 JWT (iss, scope, aud = token_uri, iat, exp ≤ 1 h) signed with
//! aws-lc-rs and exchanged at `token_uri` with grant type jwt-bearer.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;

use super::{http, AccessToken, TokenSource};
use crate::engine::credentials::{CredentialError, GcsServiceAccount, SecretString};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const LIFETIME_SECS: u64 = 3600;

/// A service-account key as a token source.
#[derive(Debug)]
pub(crate) struct KeySource {
    account: GcsServiceAccount,
}

impl KeySource {
    pub(crate) fn new(account: GcsServiceAccount) -> Self {
        KeySource { account }
    }

    fn assertion(&self, scope: &str) -> Result<SecretString, CredentialError> {
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
            "scope": scope,
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
}

#[async_trait]
impl TokenSource for KeySource {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        scope: &str,
    ) -> Result<AccessToken, CredentialError> {
        let assertion = self.assertion(scope)?;
        let uri = self.account.token_uri();
        let name = self.describe();
        http::check_url(&name, "token_uri", uri)?;
        let req = client.post(uri).form(&[
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.expose_secret()),
        ]);
        let body = http::send_json(&name, &format!("token endpoint {uri}"), req).await?;
        http::oauth_token(&name, uri, &body)
    }

    fn describe(&self) -> String {
        self.account.to_string()
    }
}
