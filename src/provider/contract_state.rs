//! Artifact contract → cty attribute values, shared by the resource and the data source.
//!
//! The one place a contract enters Terraform state, so it also scrubs source URLs: the engine
//! already records only their provenance form, but a manifest or HyOps state written by an older
//! version (read by import or the data source) may still carry user info or a signed query.

use std::collections::BTreeMap;

use crate::cty::{Number, Value};
use crate::engine::contract::{ArtifactContract, ArtifactEntry};
use crate::engine::iso::{provenance_url, url_carries_secrets};
use crate::tfplugin5::Diagnostic;

/// The always-computed contract attributes (see
/// [`COMPUTED_CONTRACT_ATTRIBUTES`](super::schema::COMPUTED_CONTRACT_ATTRIBUTES)) as values.
pub(crate) fn computed_values(c: &ArtifactContract) -> Result<BTreeMap<String, Value>, Diagnostic> {
    let c = &scrubbed(c);
    let contract_json = serde_json::to_string(c).map_err(|e| {
        Diagnostic::error(
            "Provider bug: cannot serialize the artifact contract",
            format!("contract_json could not be produced: {e}"),
        )
    })?;
    let id = if c.id.is_empty() { &c.build_id } else { &c.id };
    let s = |v: &str| Value::string(v);
    let values = [
        ("id", s(id)),
        ("artifact_url", s(&c.artifact_url)),
        ("artifact_storage_uri", s(&c.artifact_storage_uri)),
        ("artifact_sha256", s(&c.artifact_sha256)),
        (
            "artifact_size_bytes",
            Value::Number(Number::from_u64(c.artifact_size_bytes)),
        ),
        (
            "artifact_virtual_size_bytes",
            Value::Number(Number::from_u64(c.artifact_virtual_size_bytes)),
        ),
        ("vyos_version", s(&c.vyos_version)),
        ("build_id", s(&c.build_id)),
        ("built_at", s(&c.built_at)),
        ("published", Value::Bool(c.published)),
        ("published_at", s(&c.published_at)),
        ("remote_checksum", s(&c.remote_checksum)),
        ("remote_generation", s(&c.remote_generation)),
        ("manifest_url", s(&c.manifest_url)),
        ("artifacts", artifacts_value(&c.artifacts)),
        ("contract_json", Value::String(contract_json)),
    ];
    Ok(values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// A recorded source URL in its provenance form (unchanged when it carries nothing to remove).
pub(crate) fn scrub_source_url(u: &str) -> String {
    if url_carries_secrets(u) {
        provenance_url(u)
    } else {
        u.to_owned()
    }
}

/// `c` with every source URL in its provenance form.
fn scrubbed(c: &ArtifactContract) -> ArtifactContract {
    let clean = scrub_source_url;
    let mut c = c.clone();
    c.source_iso_url = clean(&c.source_iso_url);
    for e in c.artifacts.values_mut() {
        e.source_iso_url = clean(&e.source_iso_url);
    }
    c
}

fn artifacts_value(entries: &BTreeMap<String, ArtifactEntry>) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(key, e)| {
                let entry = Value::object([
                    ("artifact_url", Value::string(&e.artifact_url)),
                    ("artifact_format", Value::string(&e.artifact_format)),
                    ("artifact_version", Value::string(&e.artifact_version)),
                    ("artifact_sha256", Value::string(&e.artifact_sha256)),
                    ("source_iso_url", Value::string(&e.source_iso_url)),
                    ("artifact_local_path", Value::string(&e.artifact_local_path)),
                ]);
                (key.clone(), entry)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_source_url_with_credentials_enters_state_scrubbed() {
        let raw = "https://u:pw-5a1f@h/a.iso?X-Goog-Signature=sig-77e0";
        let mut c = ArtifactContract {
            source_iso_url: raw.into(),
            ..ArtifactContract::default()
        };
        c.artifacts.insert(
            "k".into(),
            ArtifactEntry {
                source_iso_url: raw.into(),
                ..ArtifactEntry::default()
            },
        );
        let values = computed_values(&c).unwrap();
        let shown = format!("{values:?}");
        assert!(
            !shown.contains("pw-5a1f") && !shown.contains("sig-77e0"),
            "{shown}"
        );
        assert!(shown.contains("https://h/a.iso"), "{shown}");
        assert_eq!(scrub_source_url(""), "");
        assert_eq!(scrub_source_url("file:///srv/a.iso"), "file:///srv/a.iso");
    }
}
