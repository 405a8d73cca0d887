//! HyOps state interop: resolve `*_state_ref` under `runtime_root`, read the object repository a
//! `repo_state_ref` points at, read an artifact for the data source, and write this resource's
//! state file atomically (mode 0600, sorted keys, HyOps output shape). Knows no publish internals.
//!
//! Layout: `<root>/state/modules/<module_id>/latest.json` or `…/instances/<instance>.json`, where
//! `module_id` is the module ref with `/` replaced by `__`. Consumers require `"status": "ok"`.

mod error;
mod reference;
mod repo;
mod write;

use std::path::PathBuf;

pub use error::HyopsStateError;
pub use reference::{read_state, StateDoc, StateRef};
pub use repo::{read_artifact, resolve_repo, ArtifactFromState, RepoInfo};
pub use write::{write_instance_state, IMAGE_MODULE_REF};

/// Env override of the runtime root.
pub const ENV_RUNTIME_ROOT: &str = "HYOPS_RUNTIME_ROOT";
/// Env naming the HyOps environment (`~/.hybridops/envs/$HYOPS_ENV`).
pub const ENV_HYOPS_ENV: &str = "HYOPS_ENV";

/// The default runtime root: `$HYOPS_RUNTIME_ROOT`, else `~/.hybridops/envs/$HYOPS_ENV` when
/// `HYOPS_ENV` is set, else `~/.hybridops`. `None` when neither that nor `HOME` is set.
pub fn default_runtime_root() -> Option<PathBuf> {
    if let Some(r) = std::env::var_os(ENV_RUNTIME_ROOT).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(r));
    }
    let home = PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?);
    match std::env::var(ENV_HYOPS_ENV) {
        Ok(env) if !env.is_empty() => Some(home.join(".hybridops").join("envs").join(env)),
        _ => Some(home.join(".hybridops")),
    }
}
