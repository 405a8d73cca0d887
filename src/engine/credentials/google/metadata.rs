//! The GCE/GKE metadata server: `GET http://HOST/computeMetadata/v1/instance/service-accounts/
//! default/token?scopes=…` with `Metadata-Flavor: Google` (the answer must carry the same header).
//! HOST is `169.254.169.254` unless `GCE_METADATA_HOST` names another `host[:port]`. Plain http is
//! the metadata server's protocol (link-local, never leaves the machine).
//!
//! It is the last ADC step: when it cannot be reached, the error is "no credential", listing every
//! source tried before it.

use std::time::Duration;

use async_trait::async_trait;

use super::{http, AccessToken, TokenSource};
use crate::engine::credentials::CredentialError;

/// Where the metadata server is, unless `GCE_METADATA_HOST` says otherwise.
pub(crate) const DEFAULT_METADATA_HOST: &str = "169.254.169.254";

/// The metadata server as a token source.
#[derive(Debug)]
pub(crate) struct MetadataSource {
    pub(crate) host: String,
    /// the earlier ADC steps and why each was passed over (for the "no credential" error)
    pub(crate) tried: Vec<String>,
}

impl MetadataSource {
    fn base(&self) -> String {
        let h = self.host.trim().trim_end_matches('/');
        if h.starts_with("http://") || h.starts_with("https://") {
            h.to_owned()
        } else {
            format!("http://{h}")
        }
    }
}

#[async_trait]
impl TokenSource for MetadataSource {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        scope: &str,
    ) -> Result<AccessToken, CredentialError> {
        let name = self.describe();
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            self.base()
        );
        let resp = client
            .get(&url)
            .query(&[("scopes", scope)])
            .header("Metadata-Flavor", "Google")
            // A metadata server answers at once; off GCE the link-local address may black-hole.
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if e.is_connect() || e.is_timeout() => {
                let mut tried = self.tried.clone();
                tried.push(format!("{name}: not reachable ({})", http::describe(e)));
                return Err(CredentialError::NoneFound { tried });
            }
            Err(e) => {
                return Err(CredentialError::Token {
                    source_name: name,
                    detail: http::describe(e),
                    transient: true,
                })
            }
        };
        let flavor = resp
            .headers()
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if flavor.as_deref() != Some("Google") {
            return Err(CredentialError::Token {
                source_name: name,
                detail: format!(
                    "{url} answered {} without `Metadata-Flavor: Google`: not a metadata server",
                    resp.status()
                ),
                transient: false,
            });
        }
        let status = resp.status();
        if !status.is_success() {
            return Err(CredentialError::Token {
                source_name: name,
                detail: format!("{url} answered {status}"),
                transient: status.is_server_error() || status.as_u16() == 429,
            });
        }
        let raw = http::read_limited(resp).await;
        let body: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|_| CredentialError::Token {
                source_name: name.clone(),
                detail: format!("{url}: answer is not JSON"),
                transient: true,
            })?;
        http::oauth_token(&name, &url, &body)
    }

    fn describe(&self) -> String {
        format!("metadata server at {}", self.base())
    }
}
