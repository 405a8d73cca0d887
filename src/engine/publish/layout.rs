//! Object naming: immutable, content-addressed names
//! `<prefix><artifact_key>/<artifact_version>/<sha256[..16]>/<artifact_key>.<ext>` plus
//! `manifest.json` in the same directory, validation of every name and prefix (no `..`, no
//! absolute paths, no control characters), and per-segment percent-encoding for URLs.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::PublishError;

/// Largest manifest read back (here, not in `flow`, so `remote` needs nothing from `flow`).
pub(crate) const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// The manifest's file name, beside the artifacts.
pub const MANIFEST_NAME: &str = "manifest.json";

/// Longest object name accepted (GCS's limit; S3 and Azure allow at least as much).
const MAX_NAME_BYTES: usize = 1024;

/// Everything but RFC 3986 unreserved characters is encoded inside a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Checks an object name: non-empty, ≤ 1024 bytes, relative, no empty, `.` or `..` segments,
/// no control characters or backslashes.
pub fn validate_object_name(name: &str) -> Result<(), PublishError> {
    let bad = |reason| {
        Err(PublishError::InvalidName {
            name: name.escape_debug().to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad("longer than 1024 bytes");
    }
    if name.starts_with('/') {
        return bad("absolute (starts with /)");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    if name.contains('\\') {
        return bad("contains a backslash");
    }
    for seg in name.split('/') {
        match seg {
            "" => return bad("contains an empty path segment"),
            "." | ".." => return bad("contains a `.` or `..` segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks `publish.prefix`: empty, or a name that [`validate_object_name`] accepts once an
/// object follows it (a trailing `/` is allowed).
pub fn validate_prefix(prefix: &str) -> Result<(), PublishError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let probe = format!("{prefix}x");
    validate_object_name(&probe).map_err(|_| PublishError::InvalidName {
        name: prefix.escape_debug().to_string(),
        reason: "prefix must be relative, without `..`, empty segments or control characters",
    })
}

/// A single path segment (artifact key, version, extension): non-empty, no `/`.
fn validate_segment(what: &'static str, seg: &str) -> Result<(), PublishError> {
    if seg.is_empty() || seg.contains('/') || seg == "." || seg == ".." {
        return Err(PublishError::InvalidName {
            name: seg.escape_debug().to_string(),
            reason: match what {
                "artifact_key" => "artifact_key must be one non-empty path segment",
                "artifact_version" => "artifact_version must be one non-empty path segment",
                _ => "extension must be one non-empty path segment",
            },
        });
    }
    validate_object_name(seg)
}

/// The directory of one build: `<prefix><key>/<version>/<sha256[..16]>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLayout {
    dir: String,
    key: String,
}

impl ObjectLayout {
    /// Builds and validates the layout. `sha256` is the primary artifact's hex digest.
    pub fn new(prefix: &str, key: &str, version: &str, sha256: &str) -> Result<Self, PublishError> {
        validate_prefix(prefix)?;
        validate_segment("artifact_key", key)?;
        validate_segment("artifact_version", version)?;
        if sha256.len() < 16 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PublishError::InvalidName {
                name: sha256.escape_debug().to_string(),
                reason: "sha256 must be hex, at least 16 digits",
            });
        }
        let dir = format!(
            "{prefix}{key}/{version}/{}/",
            sha256[..16].to_ascii_lowercase()
        );
        validate_object_name(&format!("{dir}{MANIFEST_NAME}"))?;
        Ok(ObjectLayout {
            dir,
            key: key.to_owned(),
        })
    }

    /// The directory, ending in `/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// `<dir><artifact_key>.<ext>` for a format (`qcow2`, `raw`, `img`, `raw.xz`, ...).
    pub fn artifact(&self, ext: &str) -> Result<String, PublishError> {
        validate_segment("extension", ext)?;
        let name = format!("{}{}.{}", self.dir, self.key, ext);
        validate_object_name(&name)?;
        Ok(name)
    }

    /// `<dir>manifest.json`.
    pub fn manifest(&self) -> String {
        format!("{}{MANIFEST_NAME}", self.dir)
    }
}

/// Percent-encodes each `/`-separated segment of `name`, keeping the slashes.
pub fn encode_segments(name: &str) -> String {
    name.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes the whole name as one segment (`/` becomes `%2F`), as the GCS JSON API wants.
pub fn encode_whole(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in [
            "", "/abs", "a/../b", "..", "a//b", "a/./b", "a\nb", "a\u{7f}", "a\\b",
        ] {
            assert!(validate_object_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b.c", "images/vyos/1.5/abc/x.qcow2", "a b/ü"] {
            validate_object_name(good).unwrap();
        }
        assert!(validate_prefix("../x/").is_err());
        assert!(validate_prefix("/x/").is_err());
        validate_prefix("").unwrap();
        validate_prefix("images/").unwrap();
    }

    #[test]
    fn layout_is_content_addressed() {
        let l = ObjectLayout::new("img/", "vyos", "1.5.0", &"ab".repeat(32)).unwrap();
        assert_eq!(
            l.artifact("qcow2").unwrap(),
            "img/vyos/1.5.0/abababababababab/vyos.qcow2"
        );
        assert_eq!(
            l.manifest(),
            "img/vyos/1.5.0/abababababababab/manifest.json"
        );
        assert!(ObjectLayout::new("", "../x", "1", &"ab".repeat(32)).is_err());
        assert!(ObjectLayout::new("", "x", "a/b", &"ab".repeat(32)).is_err());
    }

    #[test]
    fn encoding_is_per_segment() {
        assert_eq!(encode_segments("a b/c+d/é"), "a%20b/c%2Bd/%C3%A9");
        assert_eq!(encode_whole("a/b c"), "a%2Fb%20c");
    }
}
