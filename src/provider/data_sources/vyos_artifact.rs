//! Data source `hyops_vyos_artifact`: read a contract from a manifest or HyOps state.
//!
//! - `manifest_url` (`gs://`, `s3://`, `az://`, `https://`, `file://`): the manifest's contract;
//!   a configured `artifact_key` must match the manifest's.
//! - `artifact_state_ref` + `artifact_key`: the state file under `runtime_root` (status `ok`),
//!   the entry of its `artifacts` map, or its top-level fields when they describe that key; when
//!   the state records a `manifest_url`, the rest of the contract (sizes, storage URI) comes from
//!   the manifest.
//! - `verify` (default true): the artifact exists with the recorded size (heads only).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cty::{Path, Value};
use crate::engine::contract::{ArtifactContract, ArtifactEntry, Manifest};
use crate::engine::hyops_state::{read_state, StateRef};
use crate::engine::publish::{fetch_manifest, verify_published, StoreSettings, Verification};
use crate::engine::spec::ProviderSettings;
use crate::provider::config::{ArtifactQuery, ArtifactSource};
use crate::provider::contract_state::computed_values;
use crate::provider::resources::bridge::{bounded, engine_env, publish_diagnostic};
use crate::provider::resources::published::{check_local, check_published, manifest_location};
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Bound on one read (a manifest GET and a few HEADs).
const READ_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Reads (and with `verify`, checks) the artifact contract `query` points at.
pub async fn read(
    query: &ArtifactQuery,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<ArtifactContract, Diagnostics> {
    bounded(read_inner(query, settings), &cancel, READ_TIMEOUT)
        .await
        .map_err(|i| Diagnostics::from(i.diagnostic("Reading hyops_vyos_artifact")))?
}

async fn read_inner(
    query: &ArtifactQuery,
    settings: &ProviderSettings,
) -> Result<ArtifactContract, Diagnostics> {
    let env = engine_env(settings);
    let store = env.store_settings();
    let (contract, manifest) = match &query.source {
        ArtifactSource::Manifest(url) => {
            let manifest = load_manifest(url, store, Path::attr("manifest_url")).await?;
            if let Some(key) = &query.artifact_key {
                if key != &manifest.artifact_key {
                    return Err(Diagnostic::error(
                        "artifact_key does not match the manifest",
                        format!(
                            "The manifest at {} describes artifact_key {:?}, not {key:?}.",
                            crate::engine::publish::redact_url(url),
                            manifest.artifact_key
                        ),
                    )
                    .at(Path::attr("artifact_key"))
                    .into());
                }
            }
            (manifest.to_contract(url), Some(manifest))
        }
        ArtifactSource::State {
            state_ref,
            artifact_key,
        } => from_state(env.runtime_root(), state_ref, artifact_key, store).await?,
    };
    if query.verify {
        verify(&contract, manifest.as_ref(), store).await?;
    }
    Ok(contract)
}

async fn load_manifest(
    url: &str,
    store: &StoreSettings,
    at: Path,
) -> Result<Manifest, Diagnostics> {
    fetch_manifest(url, store).await.map_err(|e| {
        Diagnostics::from(publish_diagnostic("Cannot read the artifact manifest", &e).at(at))
    })
}

fn state_error(e: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error("Cannot read the HyOps state", e.to_string())
        .at(Path::attr("artifact_state_ref"))
        .into()
}

fn out_str(outputs: &serde_json::Map<String, serde_json::Value>, name: &str) -> String {
    outputs
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn out_u64(outputs: &serde_json::Map<String, serde_json::Value>, name: &str) -> u64 {
    outputs.get(name).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// The contract for `artifact_key` from a HyOps state (and its manifest, when it names one).
async fn from_state(
    root: &std::path::Path,
    state_ref: &str,
    artifact_key: &str,
    store: &StoreSettings,
) -> Result<(ArtifactContract, Option<Manifest>), Diagnostics> {
    let r = StateRef::parse(state_ref).map_err(state_error)?;
    let doc = read_state(root, &r).map_err(state_error)?;
    let outputs = doc.outputs();
    let top_level_matches = out_str(&outputs, "artifact_key") == artifact_key;
    let entry: Option<ArtifactEntry> = outputs
        .get("artifacts")
        .and_then(|a| a.get(artifact_key))
        .and_then(|e| serde_json::from_value(e.clone()).ok());
    let entry = match (entry, top_level_matches) {
        (Some(e), _) => e,
        (None, true) => ArtifactEntry {
            artifact_url: out_str(&outputs, "artifact_url"),
            artifact_format: out_str(&outputs, "artifact_format"),
            artifact_version: out_str(&outputs, "artifact_version"),
            artifact_sha256: out_str(&outputs, "artifact_sha256"),
            source_iso_url: out_str(&outputs, "source_iso_url"),
            artifact_local_path: out_str(&outputs, "artifact_local_path"),
        },
        (None, false) => {
            return Err(Diagnostic::error(
                "Artifact not in the HyOps state",
                format!(
                    "{} ({}) has no artifacts[{artifact_key:?}] output and its top-level \
                     artifact_key is {:?}.",
                    r,
                    doc.path.display(),
                    out_str(&outputs, "artifact_key")
                ),
            )
            .at(Path::attr("artifact_key"))
            .into())
        }
    };
    let manifest_url = out_str(&outputs, "manifest_url");
    if !manifest_url.is_empty() {
        // the recorded https form of a GCS manifest is read through the store when possible
        let recorded = ArtifactContract {
            manifest_url: manifest_url.clone(),
            artifact_storage_uri: out_str(&outputs, "artifact_storage_uri"),
            ..Default::default()
        };
        let location = manifest_location(&recorded, store).unwrap_or_else(|| manifest_url.clone());
        let manifest = load_manifest(&location, store, Path::attr("artifact_state_ref")).await?;
        let mut contract = manifest.to_contract(&manifest_url);
        // an additional format: its own file becomes the top level
        if let Some(f) = manifest
            .files
            .iter()
            .find(|f| f.sha256.eq_ignore_ascii_case(&entry.artifact_sha256))
        {
            contract.artifact_key = artifact_key.to_owned();
            contract.artifact_format = f.format.clone();
            contract.artifact_url = f.url.clone();
            contract.artifact_storage_uri = f.storage_uri.clone();
            contract.artifact_sha256 = f.sha256.clone();
            contract.artifact_size_bytes = f.size_bytes;
            contract.artifact_virtual_size_bytes = f.virtual_size_bytes;
            contract.remote_checksum = f.remote_checksum.clone();
            contract.remote_generation = f.remote_generation.clone();
        }
        contract.artifact_local_path = entry.artifact_local_path.clone();
        let manifest = Manifest {
            files: manifest
                .files
                .into_iter()
                .filter(|f| f.sha256.eq_ignore_ascii_case(&contract.artifact_sha256))
                .collect(),
            ..manifest
        };
        return Ok((contract, Some(manifest)));
    }
    // a local (unpublished) build: the state is all there is
    let primary = top_level_matches;
    let mut artifacts = std::collections::BTreeMap::new();
    artifacts.insert(artifact_key.to_owned(), entry.clone());
    let contract = ArtifactContract {
        id: if primary {
            out_str(&outputs, "build_id")
        } else {
            format!("{}#{artifact_key}", r)
        },
        artifact_key: artifact_key.to_owned(),
        artifact_format: entry.artifact_format.clone(),
        artifact_version: entry.artifact_version.clone(),
        artifact_local_path: entry.artifact_local_path.clone(),
        artifact_url: entry.artifact_url.clone(),
        artifact_storage_uri: if primary {
            out_str(&outputs, "artifact_storage_uri")
        } else {
            entry.artifact_url.clone()
        },
        artifact_sha256: entry.artifact_sha256.clone(),
        artifact_size_bytes: if primary {
            out_u64(&outputs, "artifact_size_bytes")
        } else {
            0
        },
        artifact_virtual_size_bytes: if primary {
            out_u64(&outputs, "artifact_virtual_size_bytes")
        } else {
            0
        },
        vyos_version: out_str(&outputs, "vyos_version"),
        source_iso_url: entry.source_iso_url.clone(),
        source_iso_sha256: out_str(&outputs, "source_iso_sha256"),
        build_id: out_str(&outputs, "build_id"),
        built_at: out_str(&outputs, "built_at"),
        published: outputs
            .get("published")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        published_at: out_str(&outputs, "published_at"),
        remote_checksum: if primary {
            out_str(&outputs, "remote_checksum")
        } else {
            String::new()
        },
        remote_generation: if primary {
            out_str(&outputs, "remote_generation")
        } else {
            String::new()
        },
        manifest_url: String::new(),
        artifacts,
        normalization: None,
        build_host: String::new(),
        verification: None,
    };
    Ok((contract, None))
}

/// `verify`: the artifact exists with the recorded size.
async fn verify(
    c: &ArtifactContract,
    manifest: Option<&Manifest>,
    store: &StoreSettings,
) -> Result<(), Diagnostics> {
    let found = match manifest {
        Some(m) => {
            let uri = manifest_location(c, store);
            let primary_only = Manifest {
                files: m
                    .files
                    .iter()
                    .filter(|f| f.sha256.eq_ignore_ascii_case(&c.artifact_sha256))
                    .cloned()
                    .collect(),
                ..m.clone()
            };
            verify_published(&primary_only, uri.as_deref(), store).await
        }
        None if c.artifact_url.starts_with("file://") || !c.published => Ok(check_local(c)),
        None => check_published(c, store).await,
    }
    .map_err(|e| {
        Diagnostics::from(
            publish_diagnostic("Cannot verify the artifact", &e).at(Path::attr("verify")),
        )
    })?;
    match found {
        Verification::Present => Ok(()),
        Verification::Gone { what } | Verification::Changed { what } => Err(Diagnostic::error(
            "Artifact missing or changed",
            format!("{what}. Set verify = false to read the contract without checking the object."),
        )
        .at(Path::attr("verify"))
        .into()),
    }
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
