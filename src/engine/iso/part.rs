//! The resumable part file: `<sha>.iso.part` and its `.part.json` sidecar holding the validator
//! (strong ETag, else Last-Modified) sent back as `If-Range`, keyed by a hash of the requested URL
//! (the URL itself may carry secrets and is never written to disk).

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;

use reqwest::header::{self, HeaderMap};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::cache::{self, Entry};
use super::IsoError;

/// What the `.part.json` sidecar remembers about an interrupted download.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PartMeta {
    /// sha256 of the requested URL (the URL itself may hold secrets)
    url_key: String,
    /// the `If-Range` value: a strong ETag or a Last-Modified date
    validator: String,
}

/// Truncates the part file and records the response's validator (if any) for a later resume.
pub(super) fn begin_part(entry: &Entry, key: &str, headers: &HeaderMap) -> Result<(), IsoError> {
    cache::remove_quietly(&entry.part_meta);
    let file = cache::open_private(&entry.part).map_err(|e| part_error(entry, e))?;
    file.set_len(0).map_err(|e| part_error(entry, e))?;
    if let Some(validator) = validator(headers) {
        let meta = PartMeta {
            url_key: key.to_string(),
            validator,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| IsoError::Cache(e.to_string()))?;
        cache::write_atomic(&entry.part_meta, &bytes).map_err(IsoError::Cache)?;
    }
    Ok(())
}

pub(super) fn open_part_at(entry: &Entry, start: u64) -> Result<File, IsoError> {
    let mut file = cache::open_private(&entry.part).map_err(|e| part_error(entry, e))?;
    file.set_len(start).map_err(|e| part_error(entry, e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| part_error(entry, e))?;
    Ok(file)
}

fn part_error(entry: &Entry, e: io::Error) -> IsoError {
    IsoError::Cache(format!("cannot write {}: {e}", entry.part.display()))
}

/// Offset and validator to resume from, when the sidecar matches this URL and data was kept.
pub(super) fn resume_point(entry: &Entry, key: &str) -> Option<(u64, String)> {
    let meta: PartMeta = serde_json::from_slice(&fs::read(&entry.part_meta).ok()?).ok()?;
    if meta.url_key != key {
        return None;
    }
    let len = fs::symlink_metadata(&entry.part).ok()?.len();
    (len > 0).then_some((len, meta.validator))
}

/// Drops the partial download and its sidecar.
pub(super) fn discard_part(entry: &Entry) {
    cache::remove_quietly(&entry.part_meta);
    cache::remove_quietly(&entry.part);
}

/// Renames a verified part into place.
pub(super) fn commit_part(entry: &Entry) -> Result<PathBuf, IsoError> {
    fs::rename(&entry.part, &entry.iso).map_err(|e| {
        IsoError::Cache(format!(
            "cannot rename {} into {}: {e}",
            entry.part.display(),
            entry.iso.display()
        ))
    })?;
    if let Ok(dir) = File::open(entry.dir()) {
        let _ = dir.sync_all();
    }
    cache::remove_quietly(&entry.part_meta);
    Ok(entry.iso.clone())
}

/// A strong ETag, else Last-Modified: the value to send as `If-Range`.
pub(super) fn validator(headers: &HeaderMap) -> Option<String> {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match get(header::ETAG) {
        Some(etag) if !etag.starts_with("W/") => Some(etag.to_string()),
        _ => get(header::LAST_MODIFIED).map(str::to_string),
    }
}

/// A stable key for a URL that does not store the URL (nor its secrets) on disk.
pub(super) fn url_key(url: &Url) -> String {
    hex::encode(Sha256::digest(url.as_str().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_prefers_strong_etag() {
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, "W/\"weak\"".parse().unwrap());
        h.insert(
            header::LAST_MODIFIED,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            validator(&h).as_deref(),
            Some("Wed, 21 Oct 2015 07:28:00 GMT")
        );
        h.insert(header::ETAG, "\"strong\"".parse().unwrap());
        assert_eq!(validator(&h).as_deref(), Some("\"strong\""));
    }
}
