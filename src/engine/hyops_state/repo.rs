//! What a `repo_state_ref` says about the object repository, and what an `artifact_state_ref`
//! says about an artifact.

use std::path::Path;

use super::{read_state, HyopsStateError, StateRef};
use crate::engine::contract::ArtifactEntry;
use crate::engine::spec::Backend;

/// The object repository described by a repo state's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// `repo_backend`, else `repo_provider` mapped (`gcp`→gcs, `azblob`/`blob`→azure)
    pub backend: Backend,
    /// `repo_bucket_name`, else `bucket_name` (for azure: the container, see below)
    pub bucket: String,
    /// azure: `storage_account_name`, else `repo_principal_name`
    pub azure_account: Option<String>,
    /// the state file that was read
    pub state_path: std::path::PathBuf,
}

fn backend_from(s: &str) -> Option<Backend> {
    match s.trim().to_ascii_lowercase().as_str() {
        "gcs" | "gcp" | "google" => Some(Backend::Gcs),
        "s3" | "aws" => Some(Backend::S3),
        "azure" | "azblob" | "blob" => Some(Backend::Azure),
        "file" | "local" => Some(Backend::File),
        _ => None,
    }
}

/// Resolves `repo_state_ref` under `root`.
pub fn resolve_repo(root: &Path, reference: &str) -> Result<RepoInfo, HyopsStateError> {
    let r = StateRef::parse(reference)?;
    let state = read_state(root, &r)?;
    let out = state.outputs();
    let s = |k: &str| {
        out.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let raw_backend = s("repo_backend")
        .or_else(|| s("repo_provider"))
        .ok_or_else(|| HyopsStateError::MissingOutput {
            reference: r.to_string(),
            field: "repo_backend (or repo_provider)".into(),
        })?;
    let backend = backend_from(&raw_backend).ok_or_else(|| HyopsStateError::UnknownBackend {
        reference: r.to_string(),
        backend: raw_backend.clone(),
    })?;
    let (bucket, azure_account) = if backend == Backend::Azure {
        let container = s("container_name")
            .or_else(|| s("repo_bucket_name"))
            .ok_or_else(|| HyopsStateError::MissingOutput {
                reference: r.to_string(),
                field: "container_name (or repo_bucket_name)".into(),
            })?;
        let account = s("storage_account_name").or_else(|| s("repo_principal_name"));
        (container, account)
    } else {
        let bucket = s("repo_bucket_name")
            .or_else(|| s("bucket_name"))
            .ok_or_else(|| HyopsStateError::MissingOutput {
                reference: r.to_string(),
                field: "repo_bucket_name (or bucket_name)".into(),
            })?;
        (bucket, None)
    };
    Ok(RepoInfo {
        backend,
        bucket,
        azure_account,
        state_path: state.path,
    })
}

/// An artifact read from a HyOps state.
#[derive(Debug, Clone)]
pub struct ArtifactFromState {
    /// `outputs.artifacts[artifact_key]`
    pub entry: ArtifactEntry,
    /// `outputs.manifest_url`, when the state has one
    pub manifest_url: Option<String>,
    /// all outputs
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// the state file that was read
    pub state_path: std::path::PathBuf,
}

/// Reads `artifact_state_ref` and picks `artifact_key` from its `artifacts` output.
pub fn read_artifact(
    root: &Path,
    reference: &str,
    artifact_key: &str,
) -> Result<ArtifactFromState, HyopsStateError> {
    let r = StateRef::parse(reference)?;
    let state = read_state(root, &r)?;
    let outputs = state.outputs();
    let raw = outputs
        .get("artifacts")
        .and_then(|a| a.get(artifact_key))
        .cloned()
        .ok_or_else(|| HyopsStateError::MissingOutput {
            reference: r.to_string(),
            field: format!("artifacts[{artifact_key:?}]"),
        })?;
    let entry: ArtifactEntry = serde_json::from_value(raw).map_err(|e| HyopsStateError::Io {
        path: state.path.clone(),
        detail: format!("artifacts[{artifact_key:?}] is not an artifact entry: {e}"),
    })?;
    let manifest_url = outputs
        .get("manifest_url")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    Ok(ArtifactFromState {
        entry,
        manifest_url,
        outputs,
        state_path: state.path,
    })
}
