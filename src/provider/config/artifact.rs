//! `hyops_vyos_artifact` configuration → [`ArtifactQuery`].

use super::reader::{Reader, Unknowns};
use crate::cty::Value;
use crate::tfplugin5::Diagnostics;

/// Where to read an artifact contract from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    /// a manifest URL (`gs://`, `s3://`, `az://`, `https://`, `file://`)
    Manifest(String),
    /// a HyOps state reference and the artifact key inside it
    State {
        /// e.g. `core/shared/vyos-image-build#vyos_default_build`
        state_ref: String,
        /// the artifact key
        artifact_key: String,
    },
}

/// A decoded data source configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactQuery {
    /// where the contract comes from
    pub source: ArtifactSource,
    /// with a manifest: the expected artifact key, when configured
    pub artifact_key: Option<String>,
    /// check that the artifact exists with the recorded size (default true)
    pub verify: bool,
}

/// Decodes a wholly known data source configuration (validated beforehand).
pub fn artifact_query(config: &Value) -> Result<ArtifactQuery, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut unknown = Vec::new();
    let mut r = Reader::new(config, Unknowns::Refuse, &mut diags, &mut unknown);
    let manifest_url = r.string("manifest_url");
    let state_ref = r.string("artifact_state_ref");
    let artifact_key = r.string("artifact_key");
    let verify = r.bool("verify").unwrap_or(true);
    let source = match (manifest_url, state_ref, artifact_key.clone()) {
        (Some(url), None, _) => Some(ArtifactSource::Manifest(url)),
        (None, Some(state_ref), Some(artifact_key)) => Some(ArtifactSource::State {
            state_ref,
            artifact_key,
        }),
        _ => None,
    };
    match source {
        Some(source) if !diags.has_errors() => Ok(ArtifactQuery {
            source,
            artifact_key,
            verify,
        }),
        _ => {
            if !diags.has_errors() {
                diags.extend(crate::provider::validate::data_source_config(config));
            }
            if !diags.has_errors() {
                diags.error(
                    "Invalid configuration",
                    "Set manifest_url, or artifact_state_ref together with artifact_key.",
                );
            }
            Err(diags)
        }
    }
}
