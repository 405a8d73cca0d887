//! Artifact contract → cty attribute values, shared by the resource and the data source.

use std::collections::BTreeMap;

use crate::cty::{Number, Value};
use crate::engine::contract::{ArtifactContract, ArtifactEntry};
use crate::tfplugin5::Diagnostic;

/// The always-computed contract attributes (see
/// [`COMPUTED_CONTRACT_ATTRIBUTES`](super::schema::COMPUTED_CONTRACT_ATTRIBUTES)) as values.
pub(crate) fn computed_values(c: &ArtifactContract) -> Result<BTreeMap<String, Value>, Diagnostic> {
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
