//! `authorized_user` (what `gcloud auth application-default login` writes): a refresh token
//! exchanged at the OAuth token endpoint with the OAuth client's id and secret. The scopes are
//! those granted at login; the requested scope is not sent.

use async_trait::async_trait;

use super::{http, AccessToken, TokenSource};
use crate::engine::credentials::{CredentialError, SecretString, DEFAULT_TOKEN_URI};

/// A user's refresh token.
pub(crate) struct UserSource {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) refresh_token: SecretString,
    pub(crate) token_uri: String,
    pub(crate) origin: String,
}

impl std::fmt::Debug for UserSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSource")
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The fields read from an `authorized_user` file.
#[derive(serde::Deserialize)]
pub(crate) struct RawUser {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretString>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    token_uri: Option<String>,
}

impl UserSource {
    pub(crate) fn from_raw(raw: RawUser, origin: String) -> Result<Self, CredentialError> {
        let missing = |field: &str| CredentialError::Invalid {
            source_name: origin.clone(),
            detail: format!("authorized_user credential lacks `{field}`"),
        };
        let token_uri = raw
            .token_uri
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        http::check_url(&origin, "token_uri", &token_uri)?;
        Ok(UserSource {
            client_id: raw.client_id.ok_or_else(|| missing("client_id"))?,
            client_secret: raw.client_secret.ok_or_else(|| missing("client_secret"))?,
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.is_blank())
                .ok_or_else(|| missing("refresh_token"))?,
            token_uri,
            origin,
        })
    }
}

#[async_trait]
impl TokenSource for UserSource {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        _scope: &str,
    ) -> Result<AccessToken, CredentialError> {
        let name = self.describe();
        let req = client.post(&self.token_uri).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("refresh_token", self.refresh_token.expose_secret()),
        ]);
        let endpoint = format!("token endpoint {}", self.token_uri);
        let body = http::send_json(&name, &endpoint, req).await?;
        http::oauth_token(&name, &self.token_uri, &body)
    }

    fn describe(&self) -> String {
        format!(
            "authorized_user (client {}, from {})",
            self.client_id, self.origin
        )
    }
}
