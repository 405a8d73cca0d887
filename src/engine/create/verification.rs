//! The smoke gate's [`Verification`] of a build, kept beside the cache entry as
//! `verification.json` (written into staging before the entry is committed, so it moves with
//! it). A cache hit reads it back so the contract of a reused artifact says how that artifact was
//! verified. A sidecar rather than a field of the cache record: the record's schema belongs to the
//! cache; this file is optional (entries from before it existed simply have no verification).

use std::path::Path;

use crate::engine::contract::Verification;
use crate::engine::error::EngineError;

const FILE: &str = "verification.json";

/// Write `v` into the staging directory `dir`.
pub(super) fn write(dir: &Path, v: &Verification) -> Result<(), EngineError> {
    let path = dir.join(FILE);
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| EngineError::io(format!("encoding {}", path.display()), e.into()))?;
    std::fs::write(&path, text)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

/// The verification recorded in the cache entry `dir`, if any.
pub(super) fn read(dir: &Path) -> Option<Verification> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
