//! Impersonation through the IAM Credentials API: a source token (scope `cloud-platform`) calls
//! `generateAccessToken` for the target service account, which returns a short-lived token for
//! the requested scope. Used by `impersonated_service_account` files, by an `external_account`'s
//! `service_account_impersonation_url`, and by provider `gcs_impersonate_service_account` on top
//! of whichever source was found.

use std::time::Duration;

use async_trait::async_trait;

use super::{http, AccessToken, TokenSource, SCOPE_CLOUD_PLATFORM};
use crate::engine::credentials::CredentialError;

/// The public IAM Credentials endpoint.
pub(crate) const DEFAULT_IAM_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// A source token turned into a target service account's token.
#[derive(Debug)]
pub(crate) struct ImpersonateSource {
    pub(crate) source: Box<dyn TokenSource>,
    /// the full `…/serviceAccounts/EMAIL:generateAccessToken` URL
    pub(crate) url: String,
    pub(crate) delegates: Vec<String>,
    pub(crate) lifetime: Duration,
}

impl ImpersonateSource {
    /// `generateAccessToken` URL of `email` under `endpoint`.
    pub(crate) fn url_for(endpoint: &str, email: &str) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            endpoint.trim_end_matches('/')
        )
    }

    /// The target account (from the URL), for descriptions.
    fn target(&self) -> &str {
        self.url
            .rsplit_once("/serviceAccounts/")
            .map(|(_, t)| t.trim_end_matches(":generateAccessToken"))
            .unwrap_or(&self.url)
    }
}

#[async_trait]
impl TokenSource for ImpersonateSource {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        scope: &str,
    ) -> Result<AccessToken, CredentialError> {
        let name = self.describe();
        http::check_url(&name, "service_account_impersonation_url", &self.url)?;
        let source = self.source.fetch(client, SCOPE_CLOUD_PLATFORM).await?;
        let delegates: Vec<String> = self
            .delegates
            .iter()
            .map(|d| {
                if d.starts_with("projects/") {
                    d.clone()
                } else {
                    format!("projects/-/serviceAccounts/{d}")
                }
            })
            .collect();
        let body = serde_json::json!({
            "scope": [scope],
            "delegates": delegates,
            "lifetime": format!("{}s", self.lifetime.as_secs()),
        });
        let req = client
            .post(&self.url)
            .bearer_auth(source.token.expose_secret())
            .json(&body);
        let endpoint = format!("IAM Credentials {}", self.url);
        let answer = http::send_json(&name, &endpoint, req).await?;
        let token = answer
            .get("accessToken")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CredentialError::Token {
                source_name: name.clone(),
                detail: format!("{endpoint}: answer has no `accessToken`"),
                transient: false,
            })?;
        let expires_in = answer
            .get("expireTime")
            .and_then(|v| v.as_str())
            .and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| {
                let left = t - time::OffsetDateTime::now_utc();
                Duration::from_secs(left.whole_seconds().max(0) as u64)
            });
        Ok(AccessToken {
            token: token.to_owned().into(),
            expires_in,
        })
    }

    fn describe(&self) -> String {
        format!(
            "service account {} impersonated by {}",
            self.target(),
            self.source.describe()
        )
    }
}
