//! Rule (warning only): a URL argument that carries credentials — userinfo (`user:pass@`) or a
//! query string (a pre-signed URL's `X-Goog-Signature`, `X-Amz-Signature`, `sig`…).
//!
//! Terraform stores a configured argument in state exactly as written; the provider cannot
//! change it. The engine records only the provenance form (no userinfo, no query) in the
//! manifest, the artifact contract and children's environments, but the argument itself stays in
//! state. The warning says so and where such a URL belongs. The diagnostic never repeats the URL.

use super::AttrRule;
use crate::cty::{Path, Value};
use crate::engine::iso::url_carries_secrets;
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Warns when the URL carries userinfo or a query string; `advice` says what to do instead.
pub(crate) struct UrlSecrets {
    pub(crate) advice: &'static str,
}

/// `source_iso_url`: provenance, so the credential belongs in the mirror URL.
pub(crate) static SOURCE_URL_SECRETS: UrlSecrets = UrlSecrets {
    advice: "source_iso_url is provenance: keep it the public, official URL (the manifest, the \
             artifact contract and builders only ever get it without user info and query). \
             Download from an authenticated or pre-signed location with source_iso_mirror_url \
             instead, preferably a short-lived signed URL or a file:// path.",
};

/// `source_iso_mirror_url`: used for the download only, but still an argument in state.
pub(crate) static MIRROR_URL_SECRETS: UrlSecrets = UrlSecrets {
    advice: "source_iso_mirror_url is used for the download only and never recorded in the \
             manifest, the contract or a child's environment, but Terraform keeps it in state as \
             written: prefer a short-lived signed URL or a file:// path, and protect the state.",
};

impl AttrRule for UrlSecrets {
    fn description(&self) -> String {
        "warns when the URL carries credentials (user info or a query string); Terraform keeps \
         the argument in state as written"
            .to_owned()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        if url_carries_secrets(s) {
            diags.push(
                Diagnostic::warning(
                    format!("{at} carries credentials"),
                    format!(
                        "The URL has user info or a query string, which may be a password or a \
                         signature. Terraform stores this argument in state exactly as written. \
                         {}",
                        self.advice
                    ),
                )
                .at(at.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_without_repeating_the_url() {
        let cases = [
            ("https://u:SECRETPW@example.com/a.iso", 1),
            ("https://example.com/a.iso?X-Goog-Signature=SECRETSIG", 1),
            ("https://example.com/a.iso", 0),
            ("file:///srv/a.iso", 0),
        ];
        for (url, n) in cases {
            let mut d = Diagnostics::new();
            SOURCE_URL_SECRETS.check(&Value::string(url), &Path::attr("source_iso_url"), &mut d);
            assert_eq!(d.len(), n, "{url}");
            for diag in d.iter() {
                assert!(!diag.is_error());
                assert!(!format!("{diag:?}").contains("SECRET"), "{diag:?}");
            }
        }
    }
}
