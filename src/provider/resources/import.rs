//! Import: the input attributes a manifest can tell, so that a plan after importing is empty for a
//! configuration that sets only those.
//!
//! A manifest records the artifact key, format, additional formats, version, source ISO (URL and
//! sha256), notes, and — through its storage URI and the object layout
//! `<prefix><key>/<version>/<sha256[..16]>/manifest.json` — the publish backend, bucket and prefix.
//! `artifact_format` is left null when it is the default `qcow2`, as a configuration omitting it
//! reads. It does not record how the image was built (`build`, `smoke_verify`), `rebuild_if_exists`,
//! `hyops_state_instance`, `source_iso_mirror_url`, `publish.repo_state_ref`, `publish.command`
//! or `publish.public_base_url`: those stay null, and the first plan after import adopts
//! configured values for them in place (`plan/imported.rs`).

use std::collections::BTreeMap;

use crate::cty::Value;
use crate::engine::contract::Manifest;

/// Input attributes (top level and the `publish` block) derived from `manifest` read at `url`.
pub(crate) fn imported_inputs(manifest: &Manifest, url: &str) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    let s = |v: &str| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::string(v)
        }
    };
    m.insert("artifact_key".into(), s(&manifest.artifact_key));
    // `qcow2` is the default: a configuration that omits artifact_format has null here
    m.insert(
        "artifact_format".into(),
        if manifest.artifact_format == "qcow2" {
            Value::Null
        } else {
            s(&manifest.artifact_format)
        },
    );
    m.insert("artifact_version".into(), s(&manifest.artifact_version));
    m.insert(
        "source_iso_url".into(),
        s(&crate::provider::contract_state::scrub_source_url(
            &manifest.source_iso.url,
        )),
    );
    m.insert("source_iso_sha256".into(), s(&manifest.source_iso.sha256));
    m.insert(
        "notes".into(),
        manifest.notes.as_deref().map(s).unwrap_or(Value::Null),
    );
    let extra: Vec<Value> = manifest
        .files
        .iter()
        .skip(1)
        .map(|f| Value::string(&f.format))
        .collect();
    m.insert(
        "additional_formats".into(),
        if extra.is_empty() {
            Value::Null
        } else {
            Value::List(extra)
        },
    );
    m.insert(
        "publish".into(),
        publish_block(manifest, url).unwrap_or(Value::Null),
    );
    m
}

/// The `publish` block from the manifest's storage URI: backend, bucket, prefix.
fn publish_block(manifest: &Manifest, url: &str) -> Option<Value> {
    let storage = manifest
        .primary()
        .map(|f| f.storage_uri.as_str())
        .filter(|u| !u.is_empty())
        .unwrap_or(url);
    let (scheme, rest) = storage.split_once("://")?;
    let layout_dir = format!(
        "{}/{}/{}/",
        manifest.artifact_key,
        manifest.artifact_version,
        manifest
            .primary()
            .map(|f| f.sha256.get(..16).unwrap_or_default().to_ascii_lowercase())
            .unwrap_or_default()
    );
    let (backend, bucket, object) = match scheme {
        "gs" | "s3" => {
            let (bucket, object) = rest.split_once('/')?;
            let backend = if scheme == "gs" { "gcs" } else { "s3" };
            (backend, bucket.to_owned(), object.to_owned())
        }
        "az" => {
            let mut parts = rest.splitn(3, '/');
            let (_account, container, object) = (parts.next()?, parts.next()?, parts.next()?);
            ("azure", container.to_owned(), object.to_owned())
        }
        "file" => {
            // the directory is the bucket; a prefix cannot be told apart from it
            let path = url::Url::parse(storage).ok()?.to_file_path().ok()?;
            let path = path.to_string_lossy().into_owned();
            let at = path.find(&format!("/{layout_dir}"))?;
            let rest = path[at + 1..].to_owned();
            ("file", path[..at].to_owned(), rest)
        }
        _ => return None,
    };
    let at = object.find(&layout_dir)?;
    let prefix = &object[..at];
    Some(Value::object([
        ("backend", Value::string(backend)),
        ("bucket", Value::string(bucket)),
        (
            "prefix",
            if prefix.is_empty() {
                Value::Null
            } else {
                Value::string(prefix)
            },
        ),
        ("repo_state_ref", Value::Null),
        ("public_base_url", Value::Null),
        ("command", Value::Null),
        ("workdir", Value::Null),
        ("retain_on_destroy", Value::Null),
        ("chunk_size_mib", Value::Null),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::contract::{ManifestFile, SourceIso};

    fn manifest(storage_uri: &str) -> Manifest {
        Manifest {
            artifact_key: "vyos".into(),
            artifact_version: "1.5".into(),
            artifact_format: "qcow2".into(),
            source_iso: SourceIso {
                url: "https://x/v.iso".into(),
                sha256: "cd".repeat(32),
            },
            files: vec![
                ManifestFile {
                    format: "qcow2".into(),
                    storage_uri: storage_uri.into(),
                    sha256: "ab".repeat(32),
                    ..Default::default()
                },
                ManifestFile {
                    format: "raw.xz".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn gcs_storage_uri_gives_backend_bucket_and_prefix() {
        let uri = format!("gs://bkt/images/vyos/1.5/{}/vyos.qcow2", "ab".repeat(8));
        let m = imported_inputs(&manifest(&uri), "gs://bkt/x/manifest.json");
        let p = &m["publish"];
        assert_eq!(p.get("backend"), Some(&Value::string("gcs")));
        assert_eq!(p.get("bucket"), Some(&Value::string("bkt")));
        assert_eq!(p.get("prefix"), Some(&Value::string("images/")));
        assert_eq!(
            m["additional_formats"],
            Value::List(vec![Value::string("raw.xz")])
        );
        assert_eq!(m["notes"], Value::Null);
        assert_eq!(m["artifact_format"], Value::Null, "the default stays unset");
    }

    #[test]
    fn file_storage_uri_gives_the_directory_as_bucket() {
        let uri = format!("file:///srv/repo/vyos/1.5/{}/vyos.qcow2", "ab".repeat(8));
        let m = imported_inputs(&manifest(&uri), &uri);
        let p = &m["publish"];
        assert_eq!(p.get("backend"), Some(&Value::string("file")));
        assert_eq!(p.get("bucket"), Some(&Value::string("/srv/repo")));
        assert_eq!(p.get("prefix"), Some(&Value::Null));
    }
}
