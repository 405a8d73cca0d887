//! The GCE/GKE metadata server: `GET http://HOST/computeMetadata/v1/instance/service-accounts/
//! default/token?scopes=…` with `Metadata-Flavor: Google` (the answer must carry the same header).
//! HOST is `169.254.169.254` unless `GCE_METADATA_HOST` names another `host[:port]`. Plain http is
//! the metadata server's protocol (link-local, never leaves the machine).
//!
//! It is the last ADC step: when it cannot be reached, the error is "no credential", listing every
//! source tried before it.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{http, AccessToken, TokenSource};
use crate::engine::credentials::CredentialError;

/// Where the metadata server is, unless `GCE_METADATA_HOST` says otherwise.
pub(crate) const DEFAULT_METADATA_HOST: &str = "169.254.169.254";

/// How long the "is there a metadata server?" probe waits (name resolution included).
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether something accepts TCP connections at the metadata `host[:port]` (port 80 by default):
/// Google's libraries' "on GCE?" check. Blocks at most [`PROBE_TIMEOUT`], once per host and
/// process (the answer is cached); used only to decide whether reads should be credentialed.
pub(crate) fn reachable(host: &str) -> bool {
    static CACHE: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);
    if let Ok(guard) = CACHE.lock() {
        if let Some(known) = guard.as_ref().and_then(|m| m.get(host)) {
            return *known;
        }
    }
    let authority = host
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let target = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority
    } else {
        format!("{authority}:80")
    };
    let (tx, rx) = mpsc::channel();
    // A thread, so a slow name lookup cannot hold the caller past the timeout.
    std::thread::spawn(move || {
        let ok = target
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok());
        let _ = tx.send(ok);
    });
    let ok = rx.recv_timeout(PROBE_TIMEOUT * 2).unwrap_or(false);
    if let Ok(mut guard) = CACHE.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(host.to_owned(), ok);
    }
    ok
}

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
