//! An instance's place among the users of a shared artifact: where its artifact lives
//! ([`locate`], the confinement every refresh, import and destroy goes through), its reference
//! (`reference_id` in state), releasing it on destroy and claiming one on import.
//!
//! The decision "last user gone" is the engine's (`engine::publish::refs`); this file only maps
//! state onto it. Knows no tfplugin5 messages.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::published::{additional_uris, manifest_storage_uri};
use crate::cty::Value;
use crate::engine::contract::{ArtifactContract, Manifest};
use crate::engine::publish::refs::{self, ArtifactHome, Release};
use crate::engine::publish::{PublishError, StoreSettings};
use crate::engine::spec::Backend;
use crate::provider::schema::REFERENCE_ID;

fn is_http(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

/// A published artifact's home and every object name of it an instance may touch.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// repository and layout directory
    pub(crate) home: ArtifactHome,
    /// object names, the manifest first (deletion order), then every format
    pub(crate) objects: Vec<String>,
}

/// A string attribute of the state's `publish` block.
fn publish_attr<'v>(state: &'v Value, name: &str) -> Option<&'v str> {
    state
        .get("publish")
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn backend_of(name: &str) -> Option<Backend> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Where the artifact of `c` lives, confined to the repository the instance published to: the
/// primary object must sit in the content-addressed layout, every other object (manifest,
/// additional formats) directly beside it, and the repository must agree with the state's
/// `publish` block where that names one. `None` for an artifact a publish command put wherever
/// it chose (nothing this provider deletes; refresh checks it as recorded).
pub(crate) fn locate(c: &ArtifactContract, state: &Value) -> Result<Option<Located>, PublishError> {
    if c.artifact_storage_uri.is_empty() || is_http(&c.artifact_storage_uri) {
        return Ok(None);
    }
    if publish_attr(state, "command").is_some() {
        // a publish command chose the names: no layout, no references, not ours to delete
        return Ok(None);
    }
    let backend = publish_attr(state, "backend").and_then(backend_of);
    let bucket = publish_attr(state, "bucket");
    let file_root = match backend {
        Some(Backend::File) => bucket.map(Path::new),
        _ => None,
    };
    let home = ArtifactHome::locate(
        &c.artifact_storage_uri,
        &c.artifact_key,
        &c.artifact_version,
        &c.artifact_sha256,
        file_root,
    )?;
    if state.get("publish").is_some_and(|p| !p.is_null()) {
        // a file repository without a known root cannot tell its prefix from the root
        let prefix_known = !(backend == Some(Backend::File) && file_root.is_none());
        let prefix = publish_attr(state, "prefix").unwrap_or("");
        home.check_configured(backend, bucket, prefix_known.then_some(prefix))?;
    }
    let mut uris = Vec::new();
    if let Some(m) = manifest_storage_uri(c) {
        uris.push(m);
    }
    uris.push(c.artifact_storage_uri.clone());
    uris.extend(additional_uris(c));
    let objects = uris
        .iter()
        .map(|u| home.object_of(u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Located { home, objects }))
}

/// The home of an artifact about to be imported from `manifest` (read at `url`): every storage
/// URI it lists, and the manifest's own location, must be directly in the primary object's
/// layout directory of one repository.
pub(crate) fn locate_manifest(
    manifest: &Manifest,
    url: &str,
) -> Result<Option<Located>, PublishError> {
    let contract = manifest.to_contract(url);
    if contract.artifact_storage_uri.is_empty() || is_http(&contract.artifact_storage_uri) {
        return Ok(None);
    }
    let located = locate(&contract, &Value::Null)?;
    if let Some(l) = &located {
        for f in &manifest.files {
            if f.storage_uri.is_empty() {
                return Err(PublishError::Refused {
                    store: crate::engine::publish::redact_url(url),
                    detail: format!("the manifest lists {} without a storage URI", f.format),
                });
            }
            l.home.object_of(&f.storage_uri)?;
        }
        if !is_http(url) {
            l.home.object_of(url)?;
        }
    }
    Ok(located)
}

/// The instance's `reference_id` (null: published before references existed).
pub(crate) fn reference_of(state: &Value) -> Option<String> {
    state
        .get(REFERENCE_ID)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Releases the instance's reference and deletes the artifact when it was the last user
/// (unless `retain`).
pub(crate) async fn release(
    located: &Located,
    reference: Option<&str>,
    retain: bool,
    settings: &StoreSettings,
) -> Result<Release, PublishError> {
    let store = located.home.store(settings)?;
    refs::release(
        store.as_ref(),
        located.home.dir(),
        reference,
        &located.objects,
        retain,
    )
    .await
}

/// Claims a fresh reference for an imported artifact; returns its id.
pub(crate) async fn claim(
    located: &Located,
    artifact_key: &str,
    settings: &StoreSettings,
    cancel: &CancellationToken,
) -> Result<String, PublishError> {
    let id = refs::new_reference_id()?;
    let store = located.home.store(settings)?;
    refs::claim(
        store.as_ref(),
        located.home.dir(),
        &id,
        artifact_key,
        cancel,
    )
    .await?;
    Ok(id)
}

/// Removes only the instance's own reference (the instance leaves state because its artifact is
/// gone or changed; the recreate records a new one). Best effort: a failure is logged.
pub(crate) async fn forget(located: &Located, reference: &str, settings: &StoreSettings) {
    let dropped = match located.home.store(settings) {
        Ok(store) => refs::drop_claim(store.as_ref(), located.home.dir(), reference).await,
        Err(e) => Err(e),
    };
    match dropped {
        Ok(found) => tracing::info!(
            reference,
            found,
            "reference of the dropped instance removed"
        ),
        Err(e) => {
            tracing::warn!(reference, error = %e, "could not remove the dropped instance's reference")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::contract::ManifestFile;

    const DIR: &str = "img/k/1.5/abababababababab/";

    fn manifest(primary: &str, extra: &str) -> Manifest {
        Manifest {
            artifact_key: "k".into(),
            artifact_version: "1.5".into(),
            artifact_format: "qcow2".into(),
            files: vec![
                ManifestFile {
                    format: "qcow2".into(),
                    storage_uri: primary.into(),
                    sha256: "ab".repeat(32),
                    ..Default::default()
                },
                ManifestFile {
                    format: "raw.xz".into(),
                    storage_uri: extra.into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn import_accepts_only_manifests_confined_to_their_directory() {
        let good = manifest(
            &format!("gs://b/{DIR}k.qcow2"),
            &format!("gs://b/{DIR}k.raw.xz"),
        );
        let url = format!("gs://b/{DIR}manifest.json");
        let l = locate_manifest(&good, &url).unwrap().unwrap();
        assert_eq!(l.objects[0], format!("{DIR}manifest.json"));
        assert_eq!(
            l.objects.len(),
            2,
            "manifest and primary (no artifacts map)"
        );
        for (m, u) in [
            // a file in another bucket
            (
                manifest(&format!("gs://b/{DIR}k.qcow2"), "gs://victim/data/k.raw.xz"),
                url.clone(),
            ),
            // a manifest read from another bucket than its files
            (good.clone(), format!("gs://other/{DIR}manifest.json")),
            // `..` out of the directory
            (
                manifest(
                    &format!("gs://b/{DIR}k.qcow2"),
                    &format!("gs://b/{DIR}../../../../etc/k.raw.xz"),
                ),
                url.clone(),
            ),
            // a file:// path outside the repository
            (
                manifest(
                    &format!("file:///srv/repo/{DIR}k.qcow2"),
                    "file:///etc/k.raw.xz",
                ),
                format!("file:///srv/repo/{DIR}manifest.json"),
            ),
        ] {
            assert!(locate_manifest(&m, &u).is_err(), "{u} {:?}", m.files);
        }
    }

    #[test]
    fn state_must_agree_with_its_publish_block() {
        let c = ArtifactContract {
            artifact_key: "k".into(),
            artifact_version: "1.5".into(),
            artifact_sha256: "ab".repeat(32),
            artifact_storage_uri: format!("gs://b/{DIR}k.qcow2"),
            manifest_url: format!("gs://b/{DIR}manifest.json"),
            published: true,
            ..Default::default()
        };
        let block = |bucket: &str, prefix: &str| {
            Value::object([(
                "publish",
                Value::object([
                    ("backend", Value::string("gcs")),
                    ("bucket", Value::string(bucket)),
                    ("prefix", Value::string(prefix)),
                ]),
            )])
        };
        assert!(locate(&c, &block("b", "img/")).unwrap().is_some());
        assert!(locate(&c, &block("other", "img/")).is_err());
        assert!(locate(&c, &block("b", "elsewhere/")).is_err());
        let mut http = c.clone();
        http.artifact_storage_uri = "https://cdn.example/k.qcow2".into();
        assert!(locate(&http, &block("b", "img/")).unwrap().is_none());
    }
}
