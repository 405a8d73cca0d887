//! Shared HTTP pieces of the token sources: the client (no redirects: a token request is never
//! replayed elsewhere), URL checks (https, or plain http to loopback only) and reading a token
//! endpoint's answer into a token or a credential error without echoing any secret.

use std::time::Duration;

use crate::engine::credentials::CredentialError;

/// The client every token source uses.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// https anywhere; plain http only to a loopback host (test endpoints).
pub(super) fn check_url(source: &str, field: &str, url: &str) -> Result<url::Url, CredentialError> {
    let bad = |detail: String| CredentialError::Invalid {
        source_name: source.to_owned(),
        detail: format!("`{field}`: {detail}"),
    };
    let u = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(bad(
            "must use https (plain http only to a loopback address)".into(),
        )),
    }
}

/// A reqwest error with its causes and without its URL.
pub(super) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Sends a token request and returns the JSON body of a 2xx answer. Failures become
/// [`CredentialError::Token`]: 5xx/429 and connection errors are transient. The error body's
/// `error`/`error_description` (OAuth) or `error.message` (Google APIs) is quoted, nothing else.
pub(super) async fn send_json(
    source: &str,
    endpoint: &str,
    req: reqwest::RequestBuilder,
) -> Result<serde_json::Value, CredentialError> {
    let resp = req.send().await.map_err(|e| CredentialError::Token {
        source_name: source.to_owned(),
        detail: format!("{endpoint}: {}", describe(e)),
        transient: true,
    })?;
    let status = resp.status();
    let raw = read_limited(resp).await;
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    if !status.is_success() {
        let msg = [
            body.get("error").and_then(|v| v.as_str()),
            body.get("error_description").and_then(|v| v.as_str()),
            body.pointer("/error/message").and_then(|v| v.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        return Err(CredentialError::Token {
            source_name: source.to_owned(),
            detail: format!("{endpoint} answered {status}: {msg}"),
            transient: status.is_server_error() || status.as_u16() == 429,
        });
    }
    if body.is_null() {
        return Err(CredentialError::Token {
            source_name: source.to_owned(),
            detail: format!("{endpoint}: answer is not JSON"),
            transient: false,
        });
    }
    Ok(body)
}

/// Largest token-service answer read into memory.
pub(super) const ANSWER_LIMIT: usize = 64 * 1024;

/// The first [`ANSWER_LIMIT`] bytes of a body (a read error ends it early).
pub(super) async fn read_limited(mut resp: reqwest::Response) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = ANSWER_LIMIT - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= ANSWER_LIMIT {
            break;
        }
    }
    out
}

/// An OAuth token answer (`access_token`, `expires_in`) read into an access token.
pub(super) fn oauth_token(
    source: &str,
    endpoint: &str,
    body: &serde_json::Value,
) -> Result<super::AccessToken, CredentialError> {
    let token = body
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CredentialError::Token {
            source_name: source.to_owned(),
            detail: format!("{endpoint}: answer has no `access_token`"),
            transient: false,
        })?;
    let expires_in = body
        .get("expires_in")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .map(Duration::from_secs);
    Ok(super::AccessToken {
        token: token.to_owned().into(),
        expires_in,
    })
}
