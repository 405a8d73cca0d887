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
