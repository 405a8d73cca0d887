//! Resource `hyops_vyos_image`: the calls into the engine and the contract → state mapping.
//!
//! Until the engine is wired, [`create`], [`delete`], [`read`] and [`import`] answer with a
//! clear "not implemented yet" error diagnostic — never a fake result. Wiring each is one call.

use tokio_util::sync::CancellationToken;

use crate::cty::Value;
use crate::engine::contract::ArtifactContract;
use crate::engine::spec::{ImageSpec, ProviderSettings};
use crate::provider::contract_state::computed_values;
use crate::tfplugin5::{Diagnostic, Diagnostics};

fn not_implemented(what: &str) -> Diagnostics {
    Diagnostic::error(
        format!("not implemented yet: {what}"),
        format!(
            "This build of terraform-provider-hyops does not implement {what} yet (the build \
             engine is not wired into the provider). Nothing was built, published or deleted."
        ),
    )
    .into()
}

/// Builds and publishes the image of `spec`; observes `cancel` (Terraform's `Stop`, or the RPC
/// being dropped).
pub async fn create(
    spec: &ImageSpec,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<ArtifactContract, Diagnostics> {
    let _ = (spec, settings, cancel);
    Err(not_implemented(
        "creating hyops_vyos_image (build and publish)",
    ))
}

/// Deletes the published objects and manifest of `state` (unless `retain_on_destroy`).
pub async fn delete(
    state: &Value,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<(), Diagnostics> {
    let _ = (state, settings, cancel);
    Err(not_implemented(
        "destroying hyops_vyos_image (deleting published objects)",
    ))
}

/// Refreshes `state` against the published object: `Ok(None)` when it is gone or changed.
pub async fn read(
    state: &Value,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Option<Value>, Diagnostics> {
    let _ = (state, settings, cancel);
    Err(not_implemented(
        "refreshing hyops_vyos_image (checking the published object)",
    ))
}

/// Imports the artifact whose manifest is at `manifest_url`.
pub async fn import(
    manifest_url: &str,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<ArtifactContract, Diagnostics> {
    let _ = (manifest_url, settings, cancel);
    Err(not_implemented(
        "importing hyops_vyos_image from a manifest URL",
    ))
}

/// The new state after a successful create: every input attribute as in `inputs` (the planned
/// state, or the configuration), every computed attribute from `contract`. Optional+computed
/// inputs keep a configured value and otherwise take the contract's.
pub fn contract_to_state(
    contract: &ArtifactContract,
    inputs: &Value,
) -> Result<Value, Diagnostics> {
    let mut attrs = match inputs {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    attrs.extend(computed_values(contract)?);
    for (name, from_contract) in [
        ("artifact_version", &contract.artifact_version),
        ("artifact_local_path", &contract.artifact_local_path),
    ] {
        let configured = inputs
            .get(name)
            .is_some_and(|v| !v.is_null() && !v.is_unknown());
        if !configured {
            attrs.insert(name.to_string(), Value::string(from_contract));
        }
    }
    Ok(Value::Object(attrs))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cty::{msgpack, Number};
    use crate::engine::contract::ArtifactEntry;
    use crate::provider::schema::{vyos_image_schema, COMPUTED_CONTRACT_ATTRIBUTES};

    fn contract() -> ArtifactContract {
        let entry = ArtifactEntry {
            artifact_url: "https://storage.googleapis.com/b/vyos/k.qcow2".into(),
            artifact_format: "qcow2".into(),
            artifact_version: "1.5-rolling".into(),
            artifact_sha256: "ab".repeat(32),
            source_iso_url: "https://example.com/vyos.iso".into(),
            artifact_local_path: "/cache/k.qcow2".into(),
        };
        let mut artifacts = BTreeMap::new();
        artifacts.insert("k".to_string(), entry.clone());
        artifacts.insert(
            "k+raw.xz".to_string(),
            ArtifactEntry {
                artifact_format: "raw.xz".into(),
                ..entry
            },
        );
        ArtifactContract {
            id: String::new(),
            artifact_key: "k".into(),
            artifact_format: "qcow2".into(),
            artifact_version: "1.5-rolling".into(),
            artifact_local_path: "/cache/k.qcow2".into(),
            artifact_url: "https://storage.googleapis.com/b/vyos/k.qcow2".into(),
            artifact_storage_uri: "gs://b/vyos/k.qcow2".into(),
            artifact_sha256: "ab".repeat(32),
            artifact_size_bytes: 5_000_000_000,
            artifact_virtual_size_bytes: 10 * 1024 * 1024 * 1024,
            vyos_version: "1.5-rolling".into(),
            source_iso_url: "https://example.com/vyos.iso".into(),
            source_iso_sha256: "cd".repeat(32),
            build_id: "b-123".into(),
            built_at: "2026-01-01T00:00:00Z".into(),
            published: true,
            published_at: "2026-01-01T00:10:00Z".into(),
            remote_checksum: "crc32c:AAAAAA==".into(),
            remote_generation: "17".into(),
            manifest_url: "gs://b/vyos/manifest.json".into(),
            artifacts,
        }
    }

    fn planned(artifact_version: Value) -> Value {
        let mut m: BTreeMap<String, Value> = COMPUTED_CONTRACT_ATTRIBUTES
            .iter()
            .map(|n| (n.to_string(), Value::Unknown))
            .collect();
        m.insert("artifact_key".into(), Value::string("k"));
        m.insert("notes".into(), Value::string("keep me"));
        m.insert("artifact_version".into(), artifact_version);
        m.insert("artifact_local_path".into(), Value::Unknown);
        Value::Object(m)
    }

    #[test]
    fn contract_fills_every_computed_attribute_and_keeps_inputs() {
        let state = contract_to_state(&contract(), &planned(Value::Unknown)).unwrap();
        assert!(state.is_wholly_known(), "{state:?}");
        assert_eq!(
            state.get("id"),
            Some(&Value::string("b-123")),
            "id falls back to build_id"
        );
        assert_eq!(state.get("notes"), Some(&Value::string("keep me")));
        assert_eq!(
            state.get("artifact_version"),
            Some(&Value::string("1.5-rolling"))
        );
        assert_eq!(
            state.get("artifact_local_path"),
            Some(&Value::string("/cache/k.qcow2"))
        );
        assert_eq!(
            state.get("artifact_size_bytes"),
            Some(&Value::Number(Number::from_u64(5_000_000_000)))
        );
        assert_eq!(state.get("published"), Some(&Value::Bool(true)));
        let artifacts = state.get("artifacts").unwrap();
        let Value::Map(m) = artifacts else {
            panic!("{artifacts:?}")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(
            m["k+raw.xz"].get("artifact_format"),
            Some(&Value::string("raw.xz"))
        );
        let json: serde_json::Value =
            serde_json::from_str(state.get("contract_json").unwrap().as_str().unwrap()).unwrap();
        assert_eq!(json["build_id"], "b-123");
        assert_eq!(json["artifacts"]["k"]["artifact_format"], "qcow2");
        // the state encodes with the resource's schema type
        msgpack::encode(&state, &vyos_image_schema().block.implied_type()).unwrap();
    }

    #[test]
    fn configured_optional_computed_value_wins() {
        let state =
            contract_to_state(&contract(), &planned(Value::string("custom-label"))).unwrap();
        assert_eq!(
            state.get("artifact_version"),
            Some(&Value::string("custom-label"))
        );
    }

    #[tokio::test]
    async fn unwired_create_says_not_implemented() {
        let spec: ImageSpec = serde_json::from_value(serde_json::json!({
            "artifact_key": "k",
            "source_iso_url": "https://example.com/vyos.iso",
            "source_iso_sha256": "ab".repeat(32),
        }))
        .unwrap();
        let err = create(
            &spec,
            &ProviderSettings::default(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.has_errors());
        assert!(err.0[0].summary.starts_with("not implemented yet"));
    }
}
