//! Writing this resource's HyOps state file: `status: ok`, the contract as `outputs`, sorted keys,
//! mode 0600 in 0700 directories, atomically (temp file, fsync, rename, directory fsync).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{HyopsStateError, StateRef};
use crate::engine::contract::ArtifactContract;

/// The module ref this resource writes state for.
pub const IMAGE_MODULE_REF: &str = "core/shared/vyos-image-build";

fn io(path: &Path, e: impl std::fmt::Display) -> HyopsStateError {
    HyopsStateError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Rebuilds every object with keys in sorted order (serde_json keeps insertion order here).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// Writes `<root>/state/modules/core__shared__vyos-image-build/instances/<instance>.json`.
pub fn write_instance_state(
    root: &Path,
    instance: &str,
    contract: &ArtifactContract,
) -> Result<PathBuf, HyopsStateError> {
    let r = StateRef::parse(&format!("{IMAGE_MODULE_REF}#{instance}"))?;
    let dir = r.module_dir(root).join("instances");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io(&dir, e))?;
    let outputs = serde_json::to_value(contract).map_err(|e| io(&dir, e))?;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let doc = sorted(serde_json::json!({
        "status": "ok",
        "module_ref": IMAGE_MODULE_REF,
        "instance": instance,
        "updated_at": now,
        "outputs": outputs,
    }));
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| io(&dir, e))?;
    text.push('\n');
    let path = dir.join(format!("{instance}.json"));
    let mut tmp = tempfile::Builder::new()
        .prefix(".state-")
        .tempfile_in(&dir)
        .map_err(|e| io(&dir, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io(tmp.path(), e))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| io(tmp.path(), e))?;
    tmp.persist(&path).map_err(|e| io(&path, e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}
