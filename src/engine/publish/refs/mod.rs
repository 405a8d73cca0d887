//! References next to an artifact: the one place that decides "last user gone".
//!
//! Object names are content-addressed, so several instances (a `create_before_destroy`
//! replacement, other workspaces, imports) can hold the same artifact. Each records a claim,
//! `<dir>refs/<reference_id>.json`, written create-if-absent next to the artifact before it
//! publishes or adopts anything. [`release`] removes the caller's own claim, then lists the
//! claims left *after* that removal (so two last users destroying at once both see "none left"
//! and neither leaks), and deletes the manifest, then every file, only when none is left. Deletes
//! are conditional on the generation seen just before where the store has them (GCS
//! `ifGenerationMatch`): an object re-uploaded meanwhile by a new claimant survives. The `file`
//! backend holds an advisory lock over claims and releases, which closes every window there.
//! What other backends leave open is written down in docs/design/publish.md.
//!
//! An artifact with no claim at all was published before references existed: the destroying
//! instance is then the only known user, as before.
//!
//! Knows stores and object names ([`ArtifactHome`] confines them); knows nothing of Terraform.

mod home;

use std::io::Write;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub use home::{ArtifactHome, Repository};

use super::store::{Store, UploadSource};
use super::PublishError;

/// The claims' directory inside an artifact's layout directory.
pub const REFS_DIR: &str = "refs/";

/// A claim as stored (small JSON; only the name matters for counting).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    schema_version: u32,
    reference_id: String,
    artifact_key: String,
    claimed_at: String,
}

/// A fresh random reference id: 32 lowercase hex digits (128 bits from the system RNG).
pub fn new_reference_id() -> Result<String, PublishError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| PublishError::Config("the system random generator failed".into()))?;
    Ok(hex::encode(bytes))
}

/// A reference id: 8 to 64 characters of `[a-z0-9-]` (one object-name segment).
pub fn validate_reference_id(id: &str) -> Result<(), PublishError> {
    let ok = (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PublishError::InvalidName {
            name: id.escape_debug().to_string(),
            reason: "a reference id is 8 to 64 characters of a-z, 0-9 and -",
        })
    }
}

/// `<dir>refs/<id>.json`
pub fn reference_name(dir: &str, id: &str) -> String {
    format!("{dir}{REFS_DIR}{id}.json")
}

/// The reference ids recorded next to the artifact in `dir`.
pub async fn references(store: &dyn Store, dir: &str) -> Result<Vec<String>, PublishError> {
    let prefix = format!("{dir}{REFS_DIR}");
    Ok(store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|o| {
            o.name
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect())
}

/// Records reference `id` next to the artifact in `dir`, create-if-absent (an existing claim
/// of the same id counts as made: a retried create).
pub async fn claim(
    store: &dyn Store,
    dir: &str,
    id: &str,
    artifact_key: &str,
    cancel: &CancellationToken,
) -> Result<(), PublishError> {
    validate_reference_id(id)?;
    let claim = Claim {
        schema_version: 1,
        reference_id: id.to_owned(),
        artifact_key: artifact_key.to_owned(),
        claimed_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let mut text = serde_json::to_vec_pretty(&claim)
        .map_err(|e| PublishError::Config(format!("reference serialization: {e}")))?;
    text.push(b'\n');
    let name = reference_name(dir, id);
    let _lock = store.lock_references().await?;
    match put_small(store, &name, &text, cancel).await {
        Ok(()) | Err(PublishError::AlreadyExistsDifferent { .. }) => {
            tracing::info!(object = %name, "reference recorded");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes reference `id` only (best effort after a failed create: the objects stay).
pub async fn drop_claim(store: &dyn Store, dir: &str, id: &str) -> Result<bool, PublishError> {
    validate_reference_id(id)?;
    let _lock = store.lock_references().await?;
    store.delete(&reference_name(dir, id)).await
}

/// What [`release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// `retain_on_destroy`: only the caller's reference was removed
    Retained {
        /// whether the caller's reference existed
        removed: bool,
    },
    /// other references remain; nothing but the caller's reference was removed
    KeptForOthers {
        /// whether the caller's reference existed
        removed: bool,
        /// the references left
        others: usize,
    },
    /// the caller was the last user: the objects were deleted
    Deleted {
        /// objects actually deleted (absent ones do not count)
        objects: usize,
        /// references that appeared while deleting (a concurrent create; see the design note)
        late_references: usize,
    },
}

/// Releases reference `own` (none: an instance from before references existed) of the artifact
/// in `dir`, and deletes `objects` — names directly in `dir`, the manifest first — when no other
/// reference is left and `retain` is false.
pub async fn release(
    store: &dyn Store,
    dir: &str,
    own: Option<&str>,
    objects: &[String],
    retain: bool,
) -> Result<Release, PublishError> {
    for name in objects {
        let direct = name
            .strip_prefix(dir)
            .is_some_and(|f| !f.is_empty() && !f.contains('/'));
        if !direct {
            return Err(PublishError::Refused {
                store: store.storage_uri(""),
                detail: format!("{name} is not directly in the artifact's directory {dir}"),
            });
        }
    }
    let _lock = store.lock_references().await?;
    let removed = match own {
        Some(id) => {
            validate_reference_id(id)?;
            store.delete(&reference_name(dir, id)).await?
        }
        None => false,
    };
    if retain {
        return Ok(Release::Retained { removed });
    }
    // listed after our own removal: concurrent last users both see none left
    let others = references(store, dir).await?.len();
    if others > 0 {
        tracing::info!(dir, others, "other references remain; artifact kept");
        return Ok(Release::KeptForOthers { removed, others });
    }
    let mut deleted = 0;
    for name in objects {
        let generation = match store.head(name).await {
            Ok(o) => o.generation,
            Err(PublishError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if store
            .delete_if_generation(name, generation.as_deref())
            .await?
        {
            deleted += 1;
        }
    }
    let late_references = references(store, dir).await?.len();
    if late_references > 0 {
        tracing::warn!(
            dir,
            late_references,
            "a reference appeared while the artifact was being deleted"
        );
    }
    Ok(Release::Deleted {
        objects: deleted,
        late_references,
    })
}

/// Uploads a small in-memory object create-if-absent.
async fn put_small(
    store: &dyn Store,
    name: &str,
    text: &[u8],
    cancel: &CancellationToken,
) -> Result<(), PublishError> {
    let mut tmp = tempfile::Builder::new()
        .prefix("hyops-ref-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| PublishError::local(&std::env::temp_dir(), e))?;
    tmp.write_all(text)
        .and_then(|()| tmp.flush())
        .map_err(|e| PublishError::local(tmp.path(), e))?;
    let sha = hex::encode(Sha256::digest(text));
    let md5: [u8; 16] = {
        use md5::Digest as _;
        md5::Md5::digest(text).into()
    };
    let src = UploadSource {
        path: tmp.path(),
        size: text.len() as u64,
        sha256: &sha,
        crc32c: crc32c::crc32c(text),
        md5: Some(md5),
        content_type: "application/json",
    };
    store
        .put_file_if_absent(name, &src, cancel)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::publish::file::FileBuilder;

    fn dir() -> String {
        format!("k/1.5/{}/", "ab".repeat(8))
    }

    async fn put(store: &dyn Store, name: &str) {
        put_small(store, name, b"x", &CancellationToken::new())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn last_reference_deletes_and_others_keep() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileBuilder::new().with_root(tmp.path()).build().unwrap();
        let dir = dir();
        let objects = vec![format!("{dir}manifest.json"), format!("{dir}k.qcow2")];
        for o in &objects {
            put(&store, o).await;
        }
        let (a, b) = (new_reference_id().unwrap(), new_reference_id().unwrap());
        assert_ne!(a, b);
        let cancel = CancellationToken::new();
        claim(&store, &dir, &a, "k", &cancel).await.unwrap();
        claim(&store, &dir, &a, "k", &cancel).await.unwrap();
        claim(&store, &dir, &b, "k", &cancel).await.unwrap();
        let mut refs = references(&store, &dir).await.unwrap();
        refs.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(refs, want);

        let r = release(&store, &dir, Some(&a), &objects, false)
            .await
            .unwrap();
        assert_eq!(
            r,
            Release::KeptForOthers {
                removed: true,
                others: 1
            }
        );
        for o in &objects {
            store.head(o).await.unwrap();
        }
        let r = release(&store, &dir, Some(&b), &objects, false)
            .await
            .unwrap();
        assert_eq!(
            r,
            Release::Deleted {
                objects: 2,
                late_references: 0
            }
        );
        assert!(std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .all(|e| e.file_name().to_string_lossy().starts_with('.')));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_last_users_releasing_at_once_neither_leak_nor_double_count() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = dir();
        let objects = vec![format!("{dir}manifest.json"), format!("{dir}k.qcow2")];
        let store = FileBuilder::new().with_root(tmp.path()).build().unwrap();
        for o in &objects {
            put(&store, o).await;
        }
        let ids: Vec<String> = (0..2).map(|_| new_reference_id().unwrap()).collect();
        for id in &ids {
            claim(&store, &dir, id, "k", &CancellationToken::new())
                .await
                .unwrap();
        }
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                // separate stores (as separate processes would have) on one root
                let store = FileBuilder::new().with_root(tmp.path()).build().unwrap();
                let (dir, objects, id) = (dir.clone(), objects.clone(), id.clone());
                tokio::spawn(async move { release(&store, &dir, Some(&id), &objects, false).await })
            })
            .collect();
        let mut deleted = 0;
        let mut kept = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Release::Deleted { objects, .. } => deleted += objects,
                Release::KeptForOthers { .. } => kept += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((deleted, kept), (2, 1), "exactly one last user deletes");
        for o in &objects {
            assert!(matches!(
                store.head(o).await,
                Err(PublishError::NotFound { .. })
            ));
        }
        assert!(references(&store, &dir).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn release_refuses_objects_outside_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileBuilder::new().with_root(tmp.path()).build().unwrap();
        let r = release(&store, &dir(), None, &["other/x".to_string()], false).await;
        assert!(r.is_err());
        let r = release(
            &store,
            &dir(),
            None,
            &[format!("{}refs/a.json", dir())],
            false,
        )
        .await;
        assert!(r.is_err());
        assert!(validate_reference_id("../x").is_err());
    }
}
