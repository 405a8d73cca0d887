//! Data source `hyops_vyos_artifact`: read a contract from a manifest or HyOps state.
//!
//! Until the engine is wired, [`read`] answers "not implemented yet"; [`contract_to_state`] is
//! real.

use tokio_util::sync::CancellationToken;

use crate::cty::Value;
use crate::engine::contract::ArtifactContract;
use crate::engine::spec::ProviderSettings;
use crate::provider::config::ArtifactQuery;
use crate::provider::contract_state::computed_values;
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Reads (and with `verify`, checks) the artifact contract `query` points at.
pub async fn read(
    query: &ArtifactQuery,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<ArtifactContract, Diagnostics> {
    let _ = (query, settings, cancel);
    Err(Diagnostic::error(
        "not implemented yet: reading hyops_vyos_artifact",
        "This build of terraform-provider-hyops cannot read manifests or HyOps state yet (the \
         engine is not wired into the provider).",
    )
    .into())
}

/// The data source state: configured inputs kept, everything else from `contract`.
pub fn contract_to_state(
    contract: &ArtifactContract,
    config: &Value,
) -> Result<Value, Diagnostics> {
    let mut attrs = match config {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    for (name, v) in computed_values(contract)? {
        if attrs.get(&name).is_none_or(Value::is_null) {
            attrs.insert(name, v);
        }
    }
    for (name, v) in [
        ("artifact_key", &contract.artifact_key),
        ("artifact_format", &contract.artifact_format),
        ("artifact_version", &contract.artifact_version),
        ("artifact_local_path", &contract.artifact_local_path),
        ("source_iso_url", &contract.source_iso_url),
        ("source_iso_sha256", &contract.source_iso_sha256),
    ] {
        if attrs.get(name).is_none_or(Value::is_null) {
            attrs.insert(name.to_string(), Value::string(v));
        }
    }
    Ok(Value::Object(attrs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::msgpack;
    use crate::provider::schema::vyos_artifact_schema;

    #[test]
    fn configured_inputs_are_kept_and_the_rest_comes_from_the_contract() {
        let contract = ArtifactContract {
            id: "gs://b/vyos/manifest.json".into(),
            artifact_key: "vyos-default".into(),
            artifact_format: "qcow2".into(),
            manifest_url: "gs://b/vyos/manifest.json".into(),
            source_iso_sha256: "ab".repeat(32),
            artifact_size_bytes: 7,
            ..ArtifactContract::default()
        };
        let by_ref = Value::object([
            (
                "artifact_state_ref",
                Value::string("core/shared/vyos-image-build#x"),
            ),
            ("artifact_key", Value::string("vyos-default")),
            ("manifest_url", Value::Null),
            ("verify", Value::Null),
        ]);
        let state = contract_to_state(&contract, &by_ref).unwrap();
        assert_eq!(
            state.get("manifest_url"),
            Some(&Value::string("gs://b/vyos/manifest.json")),
            "filled from the contract when not configured"
        );
        assert_eq!(
            state.get("verify"),
            Some(&Value::Null),
            "optional input stays as configured"
        );
        assert_eq!(state.get("artifact_format"), Some(&Value::string("qcow2")));
        assert!(state.is_wholly_known());
        msgpack::encode(&state, &vyos_artifact_schema().block.implied_type()).unwrap();

        let by_url = Value::object([("manifest_url", Value::string("https://h/m.json"))]);
        let state = contract_to_state(&contract, &by_url).unwrap();
        assert_eq!(
            state.get("manifest_url"),
            Some(&Value::string("https://h/m.json")),
            "a configured manifest_url is never overwritten"
        );
        assert_eq!(
            state.get("artifact_key"),
            Some(&Value::string("vyos-default"))
        );
    }
}
