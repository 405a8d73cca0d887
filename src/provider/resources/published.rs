//! What an instance in state says was published, and the checks refresh and destroy run on it.
//!
//! The state's `contract_json` holds the whole contract, so refresh needs no download: it heads
//! the manifest and the primary object (size and store checksum against the recorded ones), and
//! heads every additional format for existence (the contract records no size for those).
//! Objects of additional formats live next to the primary one (one layout directory), so their
//! storage URIs are the primary's directory plus the file name of their `artifact_url`.
//!
//! Knows no Terraform types beyond reading a state value.

use std::path::PathBuf;

use crate::cty::Value;
use crate::engine::contract::{ArtifactContract, Compression, Manifest, ManifestFile};
use crate::engine::publish::{
    store_for_uri, verify_published, PublishError, StoreSettings, Verification,
};

/// The contract recorded in a state value (`contract_json`), or `None` when absent/unreadable.
pub(crate) fn recorded_contract(state: &Value) -> Option<ArtifactContract> {
    let text = state.get("contract_json")?.as_str()?;
    serde_json::from_str(text).ok()
}

fn is_http(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

/// The last path segment of a URL, percent-decoded.
fn url_file_name(u: &str) -> Option<String> {
    let parsed = url::Url::parse(u).ok()?;
    let last = parsed.path_segments()?.next_back()?.to_owned();
    Some(
        percent_encoding::percent_decode_str(&last)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Storage URIs of the additional formats (`<artifact_key>+<format>` entries).
pub(crate) fn additional_uris(c: &ArtifactContract) -> Vec<String> {
    let Some((dir, _)) = c.artifact_storage_uri.rsplit_once('/') else {
        return Vec::new();
    };
    if is_http(&c.artifact_storage_uri) {
        return Vec::new();
    }
    c.artifacts
        .iter()
        .filter(|(k, _)| *k != &c.artifact_key)
        .filter_map(|(_, e)| url_file_name(&e.artifact_url))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(|name| format!("{dir}/{name}"))
        .collect()
}

/// Where the manifest is stored: `manifest_url` itself when it is a storage URI; for an http(s)
/// form (GCS public URL, `public_base_url`) the object next to the primary artifact with the
/// URL's file name; `None` when neither is a storage URI (a publish command's http URLs).
pub(crate) fn manifest_storage_uri(c: &ArtifactContract) -> Option<String> {
    if c.manifest_url.is_empty() {
        return None;
    }
    if !is_http(&c.manifest_url) {
        return Some(c.manifest_url.clone());
    }
    if is_http(&c.artifact_storage_uri) {
        return None;
    }
    let (dir, _) = c.artifact_storage_uri.rsplit_once('/')?;
    let name = url_file_name(&c.manifest_url).filter(|n| !n.is_empty())?;
    Some(format!("{dir}/{name}"))
}

/// Where to read or head a contract's manifest from: its storage URI (see
/// [`manifest_storage_uri`]) when the store can be reached with the settings at hand, else the
/// recorded URL (a consumer of a public GCS bucket without a credential reads it over https).
pub(crate) fn manifest_location(c: &ArtifactContract, settings: &StoreSettings) -> Option<String> {
    let uri = manifest_storage_uri(c)?;
    if uri.starts_with("gs://") && is_http(&c.manifest_url) && !settings.credentials.is_set() {
        return Some(c.manifest_url.clone());
    }
    Some(uri)
}

/// A one-file manifest of the primary artifact as recorded (what refresh compares against).
fn primary_manifest(c: &ArtifactContract) -> Manifest {
    Manifest {
        artifact_key: c.artifact_key.clone(),
        artifact_format: c.artifact_format.clone(),
        files: vec![ManifestFile {
            format: c.artifact_format.clone(),
            compression: Compression::from_format(&c.artifact_format),
            url: c.artifact_url.clone(),
            storage_uri: c.artifact_storage_uri.clone(),
            sha256: c.artifact_sha256.clone(),
            size_bytes: c.artifact_size_bytes,
            virtual_size_bytes: c.artifact_virtual_size_bytes,
            remote_checksum: c.remote_checksum.clone(),
            remote_generation: c.remote_generation.clone(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Refresh check of a published contract: heads only.
pub(crate) async fn check_published(
    c: &ArtifactContract,
    settings: &StoreSettings,
) -> Result<Verification, PublishError> {
    let manifest_uri = manifest_location(c, settings);
    match verify_published(&primary_manifest(c), manifest_uri.as_deref(), settings).await? {
        Verification::Present => {}
        other => return Ok(other),
    }
    for uri in additional_uris(c) {
        let (store, name) = store_for_uri(&uri, settings)?;
        match store.head(&name).await {
            Ok(_) => {}
            Err(PublishError::NotFound { .. }) => {
                return Ok(Verification::Gone {
                    what: crate::engine::publish::redact_url(&uri),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Verification::Present)
}

/// Refresh check of an unpublished build: the local file exists with the recorded size.
pub(crate) fn check_local(c: &ArtifactContract) -> Verification {
    let path = if c.artifact_local_path.is_empty() {
        url::Url::parse(&c.artifact_storage_uri)
            .ok()
            .and_then(|u| u.to_file_path().ok())
    } else {
        Some(PathBuf::from(&c.artifact_local_path))
    };
    let Some(path) = path else {
        return Verification::Gone {
            what: "the local artifact (no path recorded)".into(),
        };
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.len() == c.artifact_size_bytes => Verification::Present,
        Ok(m) => Verification::Changed {
            what: format!(
                "{}: size {} != recorded {}",
                path.display(),
                m.len(),
                c.artifact_size_bytes
            ),
        },
        Err(_) => Verification::Gone {
            what: path.display().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::contract::ArtifactEntry;

    #[test]
    fn additional_formats_sit_next_to_the_primary_object() {
        let mut c = ArtifactContract {
            artifact_key: "k".into(),
            artifact_storage_uri: "gs://b/p/k/1.5/abcd/k.qcow2".into(),
            ..Default::default()
        };
        c.artifacts.insert(
            "k".into(),
            ArtifactEntry {
                artifact_url: "https://storage.googleapis.com/b/p/k/1.5/abcd/k.qcow2".into(),
                ..Default::default()
            },
        );
        c.artifacts.insert(
            "k+raw.xz".into(),
            ArtifactEntry {
                artifact_url: "https://storage.googleapis.com/b/p/k/1.5/abcd/k.raw.xz".into(),
                ..Default::default()
            },
        );
        assert_eq!(additional_uris(&c), vec!["gs://b/p/k/1.5/abcd/k.raw.xz"]);
        c.manifest_url = "https://storage.googleapis.com/b/p/k/1.5/abcd/manifest.json".into();
        assert_eq!(
            manifest_storage_uri(&c).as_deref(),
            Some("gs://b/p/k/1.5/abcd/manifest.json")
        );
    }

    #[test]
    fn local_check_compares_the_recorded_size() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.qcow2");
        std::fs::write(&f, b"12345").unwrap();
        let mut c = ArtifactContract {
            artifact_local_path: f.display().to_string(),
            artifact_size_bytes: 5,
            ..Default::default()
        };
        assert_eq!(check_local(&c), Verification::Present);
        c.artifact_size_bytes = 6;
        assert!(matches!(check_local(&c), Verification::Changed { .. }));
        std::fs::remove_file(&f).unwrap();
        assert!(matches!(check_local(&c), Verification::Gone { .. }));
    }
}
