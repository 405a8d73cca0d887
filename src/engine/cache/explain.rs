//! `image explain`: the fingerprint of a spec and whether a create would reuse a cached entry —
//! and when not, which inputs differ from the closest entry of the same `artifact_key`.
//! Read-only: takes no lock and changes nothing (so it can be wrong about a create that is
//! running right now).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{diff_inputs, fingerprint, read_record, BuildCache, CacheError, ChangedInput};
use super::{FingerprintInputs, LAST_USED};
use crate::engine::build::BuildSettings;
use crate::engine::spec::ImageSpec;

/// The answer of `image explain`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// the spec's fingerprint (64 hex)
    pub fingerprint: String,
    /// what went into it
    pub inputs: FingerprintInputs,
    /// a create now would reuse a cached entry
    pub reuse: bool,
    /// why, in one sentence
    pub reason: String,
    /// the entry that would be reused (or was compared with)
    pub entry: Option<PathBuf>,
    /// the build id of that entry
    pub entry_build_id: Option<String>,
    /// inputs that differ from the compared entry (empty when reused)
    pub changed: Vec<ChangedInput>,
}

/// Explain what a create of `spec` would do with the cache in `cache_dir`.
pub async fn explain(
    spec: &ImageSpec,
    settings: &BuildSettings,
    cache_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Explanation, CacheError> {
    let fp = fingerprint(spec, settings, cancel).await?;
    let cache = BuildCache::new(cache_dir);
    let mut out = Explanation {
        fingerprint: fp.hex.clone(),
        inputs: fp.inputs.clone(),
        reuse: false,
        reason: String::new(),
        entry: None,
        entry_build_id: None,
        changed: Vec::new(),
    };
    let dir = cache.entry_dir(&fp.hex);
    if let Some(record) = read_record(&dir) {
        out.entry = Some(dir.clone());
        out.entry_build_id = Some(record.build_id.clone());
        out.changed = diff_inputs(&record.inputs, &fp.inputs);
        match cache.lookup(&fp.hex) {
            Some(_) if spec.rebuild_if_exists => {
                out.reason = "an entry with this fingerprint exists, but rebuild_if_exists is set"
                    .to_owned();
            }
            Some(_) => {
                out.reuse = true;
                out.reason =
                    "an entry with this fingerprint exists and its files are unchanged: it would be reused"
                        .to_owned();
            }
            None => {
                out.reason = "an entry with this fingerprint exists but its files changed on disk (or it was written by another version): it would be rebuilt".to_owned();
            }
        }
        return Ok(out);
    }
    // No entry: compare with the closest entry of the same artifact_key.
    let mut best: Option<(usize, std::time::SystemTime, PathBuf, super::BuildRecord)> = None;
    if let Ok(read) = std::fs::read_dir(cache.root()) {
        for e in read.flatten() {
            let path = e.path();
            let Some(record) = read_record(&path) else {
                continue;
            };
            if record.artifact_key().as_deref() != Some(spec.artifact_key.as_str()) {
                continue;
            }
            let n = diff_inputs(&record.inputs, &fp.inputs).len();
            let used = std::fs::metadata(path.join(LAST_USED))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            let better = match &best {
                None => true,
                Some((bn, bt, _, _)) => n < *bn || (n == *bn && used > *bt),
            };
            if better {
                best = Some((n, used, path, record));
            }
        }
    }
    match best {
        Some((_, _, path, record)) => {
            out.changed = diff_inputs(&record.inputs, &fp.inputs);
            let names: Vec<String> = out
                .changed
                .iter()
                .map(|c| {
                    if c.files.is_empty() {
                        c.name.clone()
                    } else {
                        format!("{} ({})", c.name, c.files.join(", "))
                    }
                })
                .collect();
            out.reason = format!(
                "no entry with this fingerprint: a build would run; the closest cached entry of artifact_key {:?} (build {}) differs in: {}",
                spec.artifact_key,
                record.build_id,
                names.join("; ")
            );
            out.entry = Some(path);
            out.entry_build_id = Some(record.build_id);
        }
        None => {
            out.reason = format!(
                "no entry with this fingerprint and none for artifact_key {:?}: a build would run",
                spec.artifact_key
            );
        }
    }
    Ok(out)
}
