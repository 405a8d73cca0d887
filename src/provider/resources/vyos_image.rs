//! Resource `hyops_vyos_image`: the calls into the engine and the contract → state mapping.
//!
//! - [`create`] runs [`engine::create::create`] — the same path as the operator CLI — with the
//!   provider's settings; progress goes to the log, engine warnings become warning diagnostics.
//!   A failure returns no state, so nothing half-published is ever claimed.
//! - [`read`] re-checks what the state says was published (heads only, no download); gone or
//!   changed → `None` plus a warning, so the next plan recreates the instance.
//! - [`delete`] removes the published objects and manifest unless `publish.retain_on_destroy`;
//!   the local build cache stays.
//! - [`import`] reads a manifest and fills every input it records (see `import.rs`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::bridge::{bounded, engine_diagnostics, engine_env, publish_diagnostic, LogProgress};
use super::import::imported_inputs;
use super::published::{
    check_local, check_published, deletion_manifest, manifest_storage_uri, recorded_contract,
};
use crate::cty::Value;
use crate::engine;
use crate::engine::contract::ArtifactContract;
use crate::engine::duration::parse_go_duration;
use crate::engine::publish::{delete_published, fetch_manifest, Verification};
use crate::engine::spec::{ImageSpec, ProviderSettings};
use crate::provider::contract_state::computed_values;
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Default `timeouts.delete`.
pub const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bound on a refresh or import (a few HEAD/GET requests).
const READ_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A successful create.
#[derive(Debug)]
pub struct Created {
    /// the artifact contract
    pub contract: ArtifactContract,
    /// engine warnings (TCG, optional smoke verify failed, …) as warning diagnostics
    pub warnings: Diagnostics,
}

/// Builds and publishes the image of `spec`; observes `cancel` (Terraform's `Stop`, or the RPC
/// being dropped) and `timeouts.create` (inside the engine).
pub async fn create(
    spec: &ImageSpec,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Created, Diagnostics> {
    let env = engine_env(settings);
    let outcome = engine::create::create(spec, &env, cancel, &LogProgress::default())
        .await
        .map_err(|e| {
            tracing::warn!(artifact_key = %spec.artifact_key, "create failed: {e}");
            engine_diagnostics(&e)
        })?;
    tracing::info!(
        artifact_key = %spec.artifact_key,
        cache_hit = outcome.cache_hit,
        published = outcome.contract.published,
        "created"
    );
    let mut warnings = Diagnostics::new();
    for w in &outcome.warnings {
        warnings.warning("hyops_vyos_image build warning", w.clone());
    }
    Ok(Created {
        contract: outcome.contract,
        warnings,
    })
}

/// `publish.retain_on_destroy` of a state value.
fn retain_on_destroy(state: &Value) -> bool {
    state
        .get("publish")
        .and_then(|p| p.get("retain_on_destroy"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `timeouts.delete` of a state value (Go duration), default 30m.
fn delete_timeout(state: &Value) -> Result<Duration, Diagnostics> {
    match state
        .get("timeouts")
        .and_then(|t| t.get("delete"))
        .and_then(Value::as_str)
    {
        Some(t) => parse_go_duration(t).map_err(|e| {
            Diagnostic::error("Invalid timeouts.delete", e.to_string())
                .at(crate::cty::Path::attr("timeouts").join_attr("delete"))
                .into()
        }),
        None => Ok(DEFAULT_DELETE_TIMEOUT),
    }
}

/// Deletes the published objects and manifest of `state` (unless `retain_on_destroy`). Returns
/// warnings (e.g. objects published by a command at an http URL cannot be deleted).
pub async fn delete(
    state: &Value,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Diagnostics, Diagnostics> {
    let mut warnings = Diagnostics::new();
    let Some(contract) = recorded_contract(state) else {
        warnings.warning(
            "No artifact contract in state",
            "The state records no contract_json, so nothing published is known; only the \
             instance was removed from state.",
        );
        return Ok(warnings);
    };
    if !contract.published {
        tracing::info!("unpublished build: nothing remote to delete; the local cache stays");
        return Ok(warnings);
    }
    if retain_on_destroy(state) {
        tracing::info!(manifest = %contract.manifest_url, "retain_on_destroy: published objects kept");
        return Ok(warnings);
    }
    let limit = delete_timeout(state)?;
    let env = engine_env(settings);
    let manifest = deletion_manifest(&contract);
    let manifest_uri = manifest_storage_uri(&contract);
    let deleted = bounded(
        delete_published(&manifest, manifest_uri.as_deref(), env.store_settings()),
        &cancel,
        limit,
    )
    .await
    .map_err(|i| Diagnostics::from(i.diagnostic("Deleting the published image")))?
    .map_err(|e| Diagnostics::from(publish_diagnostic("Cannot delete the published image", &e)))?;
    tracing::info!(deleted, "published objects deleted");
    if contract.artifact_storage_uri.starts_with("http") {
        warnings.warning(
            "Published objects not deleted",
            format!(
                "{} was published by a publish command at an http(s) URL; delete it with the \
                 tool that published it.",
                crate::engine::publish::redact_url(&contract.artifact_url)
            ),
        );
    }
    Ok(warnings)
}

/// Refreshes `state` against the published object (heads only) or, for an unpublished build,
/// the local file: `None` plus a warning when it is gone or changed.
pub async fn read(
    state: &Value,
    settings: &ProviderSettings,
    runner: Option<&crate::runner::Session>,
    cancel: CancellationToken,
) -> Result<(Option<Value>, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::new();
    let Some(contract) = recorded_contract(state) else {
        // nothing to compare against: keep the state as it is
        return Ok((Some(state.clone()), diags));
    };
    let verification = if contract.published {
        let env = engine_env(settings);
        bounded(
            check_published(&contract, env.store_settings()),
            &cancel,
            READ_TIMEOUT,
        )
        .await
        .map_err(|i| Diagnostics::from(i.diagnostic("Checking the published image")))?
        .map_err(|e| {
            Diagnostics::from(publish_diagnostic("Cannot check the published image", &e))
        })?
    } else if !contract.build_host.is_empty() {
        // the file stays on the build runner that made it
        match runner {
            Some(session) => super::on_runner::check(session, &contract, &cancel).await?,
            None => {
                diags.warning(
                    "Runner-local artifact not checked",
                    format!(
                        "{} is on build runner {}, and this provider configuration has no \
                         build_runner; the state is kept unchecked.",
                        contract.artifact_local_path, contract.build_host
                    ),
                );
                return Ok((Some(state.clone()), diags));
            }
        }
    } else {
        check_local(&contract)
    };
    match verification {
        Verification::Present => Ok((Some(state.clone()), diags)),
        Verification::Gone { what } | Verification::Changed { what } => {
            tracing::warn!(%what, "artifact gone or changed; removing the instance from state");
            diags.warning(
                "hyops_vyos_image artifact gone or changed",
                format!(
                    "{what}. The instance of {} was removed from state; the next plan \
                     recreates it.",
                    contract.artifact_key
                ),
            );
            Ok((None, diags))
        }
    }
}

/// Imports the artifact whose manifest is at `manifest_url`: the full state, inputs included
/// where the manifest records them.
pub async fn import(
    manifest_url: &str,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Value, Diagnostics> {
    let env = engine_env(settings);
    let manifest = bounded(
        fetch_manifest(manifest_url, env.store_settings()),
        &cancel,
        READ_TIMEOUT,
    )
    .await
    .map_err(|i| Diagnostics::from(i.diagnostic("Reading the manifest")))?
    .map_err(|e| {
        Diagnostics::from(publish_diagnostic(
            "Cannot import hyops_vyos_image: the manifest could not be read",
            &e,
        ))
    })?;
    let contract = manifest.to_contract(manifest_url);
    let inputs = Value::Object(imported_inputs(&manifest, manifest_url));
    contract_to_state(&contract, &inputs)
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
            normalization: None,
            build_host: String::new(),
            verification: None,
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
}
