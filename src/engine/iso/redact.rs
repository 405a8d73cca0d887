//! URL redaction: userinfo and the query string can carry secrets (basic-auth passwords,
//! pre-signed URL signatures), so neither is ever shown.
//!
//! Two forms: [`redact_url`] for logs and errors keeps a visible `***` where something was
//! removed (so an operator sees that the URL had credentials); [`provenance_url`] is the clean
//! URL recorded as provenance — in the manifest, the artifact contract (state, HyOps state file)
//! and the `HYOPS_VYOS_SOURCE_ISO_URL` of every child — with userinfo, query and fragment
//! removed outright. The full URL is used for the download only and never leaves memory.

use url::Url;

/// The URL with userinfo replaced by `***` and the query string (and fragment) replaced by `***`.
/// Unparseable input is reduced to a fixed placeholder rather than echoed.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => redact(&url),
        Err(_) => "<unparseable url>".to_string(),
    }
}

/// [`redact_url`] for a parsed URL.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        // Setting credentials fails only for cannot-be-a-base URLs, which carry none.
        let _ = shown.set_username("***");
        let _ = shown.set_password(None);
    }
    if shown.query().is_some() {
        shown.set_query(Some("***"));
    }
    if shown.fragment().is_some() {
        shown.set_fragment(None);
    }
    shown.to_string()
}

/// The provenance form of a source URL: userinfo, query string and fragment removed (not
/// masked), so `https://u:p@host/a.iso?X-Goog-Signature=…` becomes `https://host/a.iso`.
/// A URL with nothing to remove is returned exactly as written (no normalization), so a clean
/// provenance URL reads the same in the configuration and in the contract. Unparseable input is
/// reduced to a fixed placeholder rather than echoed.
pub fn provenance_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return "<unparseable url>".to_string();
    };
    let clean = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if clean {
        return raw.to_owned();
    }
    // Clearing credentials fails only for cannot-be-a-base URLs, which carry none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// True when `raw` carries userinfo or a query string (what [`provenance_url`] removes).
pub fn url_carries_secrets(raw: &str) -> bool {
    Url::parse(raw)
        .is_ok_and(|u| !u.username().is_empty() || u.password().is_some() || u.query().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_table() {
        let cases = [
            (
                "https://user:pw@example.com/a.iso?X-Goog-Signature=abc&X-Goog-Credential=x#f",
                "https://example.com/a.iso",
                true,
            ),
            (
                "https://tok@host:8443/p/a.iso",
                "https://host:8443/p/a.iso",
                true,
            ),
            (
                "https://example.com/a.iso?",
                "https://example.com/a.iso",
                true,
            ),
            (
                "https://example.com/a.iso",
                "https://example.com/a.iso",
                false,
            ),
            ("file:///srv/isos/a.iso", "file:///srv/isos/a.iso", false),
            ("HTTPS://Example.com", "HTTPS://Example.com", false),
            ("not a url", "<unparseable url>", false),
        ];
        for (raw, want, secret) in cases {
            assert_eq!(provenance_url(raw), want, "{raw}");
            assert_eq!(url_carries_secrets(raw), secret, "{raw}");
        }
    }

    #[test]
    fn redaction_table() {
        let cases = [
            (
                "https://user:pw@example.com/a.iso?X-Amz-Signature=abc#frag",
                "https://***@example.com/a.iso?***",
            ),
            ("https://example.com/a.iso", "https://example.com/a.iso"),
            ("http://tok@host:8080/p?q=1", "http://***@host:8080/p?***"),
            ("file:///srv/isos/a.iso", "file:///srv/isos/a.iso"),
            ("not a url", "<unparseable url>"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }
}
