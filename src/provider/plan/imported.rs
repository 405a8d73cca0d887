//! Plan rule after import: an imported instance has null for the inputs a manifest does not
//! record (see `resources/import.rs`). When the configuration sets such an input, the plan adopts
//! the configured value as an in-place update instead of replacing the artifact: the published
//! object is the same build either way. The marker travels in the resource's private data from
//! ImportResourceState until the first apply, which drops it; after that every input change is
//! compared as usual.

use crate::cty::{Path, PathStep, Value};

/// Private data of a freshly imported instance.
pub const IMPORTED_PRIVATE: &[u8] = br#"{"hyops_imported":true}"#;

/// Inputs (dotted, or a block name meaning every attribute in it) that import leaves null.
const NOT_IN_MANIFEST: &[&str] = &[
    "build",
    "smoke_verify",
    "rebuild_if_exists",
    "hyops_state_instance",
    "source_iso_mirror_url",
    "artifact_format",
    "artifact_local_path",
    "publish.repo_state_ref",
    "publish.command",
    "publish.public_base_url",
    "publish.workdir",
];

/// True when `private` marks a freshly imported instance.
pub fn is_imported(private: &[u8]) -> bool {
    private == IMPORTED_PRIVATE
}

fn adoptable(path: &Path) -> bool {
    let dotted = path.to_string();
    NOT_IN_MANIFEST
        .iter()
        .any(|p| dotted == *p || dotted.starts_with(&format!("{p}.")))
}

/// The value at an attribute path (null when anything on the way is null or absent).
fn at<'v>(v: &'v Value, path: &Path) -> &'v Value {
    let mut cur = v;
    for step in &path.0 {
        cur = match step {
            PathStep::Attribute(name) => cur.get(name).unwrap_or(&Value::Null),
            _ => return &Value::Null,
        };
    }
    cur
}

/// Replacement paths that stay after import adoption: those that are not unrecorded inputs
/// whose prior value is null.
pub(super) fn remaining(requires_replace: Vec<Path>, prior: &Value) -> Vec<Path> {
    requires_replace
        .into_iter()
        .filter(|p| !(adoptable(p) && at(prior, p).is_null()))
        .collect()
}

/// After import, `source_iso_url` holds the manifest's provenance form (no user info, no query).
/// A configured URL whose provenance form equals it names the same source: adopt it in place
/// instead of replacing the artifact.
pub(super) fn adopt_source_url(
    requires_replace: Vec<Path>,
    prior: &Value,
    proposed: &Value,
) -> Vec<Path> {
    let source = Path::attr("source_iso_url");
    let same_source = match (at(prior, &source).as_str(), at(proposed, &source).as_str()) {
        (Some(recorded), Some(configured)) => {
            crate::engine::iso::provenance_url(configured) == recorded
        }
        _ => false,
    };
    requires_replace
        .into_iter()
        .filter(|p| !(same_source && *p == source))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_provenance_url_adopts_the_configured_url_with_credentials() {
        let prior = Value::object([("source_iso_url", Value::string("https://h/a.iso"))]);
        let same = Value::object([(
            "source_iso_url",
            Value::string("https://u:p@h/a.iso?X-Goog-Signature=s"),
        )]);
        let other = Value::object([("source_iso_url", Value::string("https://h/b.iso"))]);
        let paths = || vec![Path::attr("source_iso_url")];
        assert!(adopt_source_url(paths(), &prior, &same).is_empty());
        assert_eq!(adopt_source_url(paths(), &prior, &other), paths());
    }

    #[test]
    fn unrecorded_null_inputs_are_adopted_recorded_ones_still_replace() {
        let prior = Value::object([
            ("build", Value::Null),
            ("source_iso_sha256", Value::string("ab")),
        ]);
        let paths = vec![
            Path::attr("build").join_attr("command"),
            Path::attr("source_iso_sha256"),
            Path::attr("publish").join_attr("bucket"),
        ];
        assert_eq!(
            remaining(paths, &prior),
            vec![
                Path::attr("source_iso_sha256"),
                Path::attr("publish").join_attr("bucket")
            ]
        );
        let set = Value::object([("rebuild_if_exists", Value::Bool(true))]);
        assert_eq!(
            remaining(vec![Path::attr("rebuild_if_exists")], &set),
            vec![Path::attr("rebuild_if_exists")],
            "a value that was set is compared as usual"
        );
        assert!(is_imported(IMPORTED_PRIVATE));
        assert!(!is_imported(b""));
    }
}
