//! Rule: a string is an absolute URL with one of the allowed schemes.

use super::{invalid, quoted_list, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// The URL's scheme must be one of `schemes`; `example` is a valid value to suggest.
pub(crate) struct UrlScheme {
    pub(crate) schemes: &'static [&'static str],
    pub(crate) example: &'static str,
}

/// `source_iso_url`, `source_iso_mirror_url`.
pub(crate) static ISO_URL: UrlScheme = UrlScheme {
    schemes: &["http", "https", "file"],
    example: "https://github.com/vyos/vyos-nightly-build/releases/download/…/vyos-….iso",
};

/// `manifest_url`.
pub(crate) static MANIFEST_URL: UrlScheme = UrlScheme {
    schemes: &["gs", "s3", "az", "https", "file"],
    example: "gs://BUCKET/PREFIX/manifest.json",
};

/// `public_base_url`, `gcs_endpoint`, `s3_endpoint`.
pub(crate) static HTTP_URL: UrlScheme = UrlScheme {
    schemes: &["http", "https"],
    example: "https://example.com/images",
};

impl AttrRule for UrlScheme {
    fn description(&self) -> String {
        format!("must be a URL with scheme {}", quoted_list(self.schemes))
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        let wanted = quoted_list(self.schemes);
        match url::Url::parse(s) {
            Err(e) => diags.push(invalid(
                at,
                // The raw value is not repeated: it may carry a password or a signature.
                format!(
                    "not an absolute URL ({e}): write a URL with scheme {wanted}, e.g. {:?}.",
                    self.example
                ),
            )),
            Ok(u) if !self.schemes.contains(&u.scheme()) => diags.push(invalid(
                at,
                format!(
                    "URL scheme {:?} is not supported here: use {wanted}, e.g. {:?}.",
                    u.scheme(),
                    self.example
                ),
            )),
            Ok(u) if u.scheme() != "file" && u.host_str().is_none_or(str::is_empty) => {
                diags.push(invalid(
                    at,
                    format!(
                        "{:?} has no host: write e.g. {:?}.",
                        crate::engine::iso::redact(&u),
                        self.example
                    ),
                ))
            }
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_table() {
        let cases: &[(&UrlScheme, &str, usize)] = &[
            (&ISO_URL, "https://example.com/vyos.iso", 0),
            (&ISO_URL, "http://127.0.0.1:8080/vyos.iso", 0),
            (&ISO_URL, "file:///srv/iso/vyos.iso", 0),
            (&ISO_URL, "ftp://example.com/vyos.iso", 1),
            (&ISO_URL, "/srv/iso/vyos.iso", 1),
            (&ISO_URL, "https://", 1),
            (&MANIFEST_URL, "gs:///manifest.json", 1),
            (&MANIFEST_URL, "gs://b/p/manifest.json", 0),
            (&MANIFEST_URL, "s3://b/manifest.json", 0),
            (&MANIFEST_URL, "az://c/manifest.json", 0),
            (&MANIFEST_URL, "file:///srv/manifest.json", 0),
            (&MANIFEST_URL, "http://example.com/manifest.json", 1),
            (&HTTP_URL, "http://127.0.0.1:4443", 0),
            (&HTTP_URL, "gs://bucket", 1),
        ];
        for (rule, v, n) in cases {
            let mut d = Diagnostics::new();
            rule.check(&Value::string(*v), &Path::attr("u"), &mut d);
            assert_eq!(d.len(), *n, "{v:?}: {d:?}");
        }
    }
}
