//! URL redaction for logs and errors: userinfo and the query string can carry secrets (basic-auth
//! passwords, pre-signed URL signatures), so neither is ever shown.

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

#[cfg(test)]
mod tests {
    use super::*;

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
