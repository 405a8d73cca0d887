//! Reading back what was published: [`fetch_manifest`] (gs://, s3://, az://, https://, file://),
//! [`verify_published`] (present, gone or changed) and [`delete_published`]. A store is built
//! from each storage URI with the provider's settings; https URLs are checked with plain HTTP
//! (redirects limited, never from https down to http).

use std::time::Duration;

use super::file::FileBuilder;
use super::layout::validate_object_name;
use super::layout::MANIFEST_LIMIT;
use super::store::{RemoteObject, Store};
use super::target::StoreSettings;
use super::PublishError;
use crate::engine::contract::{Manifest, MANIFEST_SCHEMA_VERSION};
use crate::engine::net::redact_url;

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// every file (and the manifest) exists with the recorded size and checksum
    Present,
    /// something is gone
    Gone {
        /// what
        what: String,
    },
    /// something has another size or checksum
    Changed {
        /// what and how
        what: String,
    },
}

/// Builds the store a storage URI lives in and returns it with the object name.
pub fn store_for_uri(
    uri: &str,
    settings: &StoreSettings,
) -> Result<(Box<dyn Store>, String), PublishError> {
    let bad = |detail: &str| PublishError::Manifest {
        url: redact_url(uri),
        detail: detail.to_owned(),
    };
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| bad("not a storage URI"))?;
    match scheme {
        "gs" | "s3" => {
            let (bucket, name) = rest
                .split_once('/')
                .ok_or_else(|| bad("expected SCHEME://BUCKET/OBJECT"))?;
            validate_object_name(name)?;
            let store = if scheme == "gs" {
                settings.gcs_store(bucket, settings.credentials.resolve_gcs()?, None)?
            } else {
                settings.s3_store(bucket, None)?
            };
            Ok((store, name.to_owned()))
        }
        "az" => {
            let mut parts = rest.splitn(3, '/');
            let (Some(account), Some(container), Some(name)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected az://ACCOUNT/CONTAINER/OBJECT"));
            };
            validate_object_name(name)?;
            Ok((
                settings.azure_store(Some(account), container, None)?,
                name.to_owned(),
            ))
        }
        "file" => {
            let path = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| bad("not an absolute file URL"))?;
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(bad("file URL names no file"));
            };
            let name = name.to_string_lossy().into_owned();
            let store = FileBuilder::new().with_root(dir).build()?;
            Ok((Box::new(store), name))
        }
        _ => Err(bad(
            "unsupported scheme (expected gs, s3, az, file, http or https)",
        )),
    }
}

fn http_client() -> Result<reqwest::Client, PublishError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .redirect(crate::engine::net::redirect::policy(10))
        .build()
        .map_err(|e| PublishError::Config(format!("HTTP client: {e}")))
}

/// `https://storage.googleapis.com/BUCKET/OBJECT` → `gs://BUCKET/OBJECT` (segments decoded).
fn gcs_uri_from_public_url(u: &str) -> Option<String> {
    let p = url::Url::parse(u).ok()?;
    if p.scheme() != "https" || p.host_str() != Some("storage.googleapis.com") {
        return None;
    }
    let mut segs = p.path_segments()?;
    let bucket = segs.next().filter(|b| !b.is_empty())?;
    let rest: Vec<String> = segs
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if rest.is_empty() {
        return None;
    }
    Some(format!("gs://{bucket}/{}", rest.join("/")))
}

fn is_http(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

/// Fetches and parses a `manifest.json`.
pub async fn fetch_manifest(url: &str, settings: &StoreSettings) -> Result<Manifest, PublishError> {
    let shown = redact_url(url);
    let bytes = if is_http(url) {
        let resp = http_client()?
            .get(url)
            .send()
            .await
            .map_err(|e| PublishError::Manifest {
                url: shown.clone(),
                detail: super::gcs::describe(e),
            })?;
        match resp.status() {
            s if s.is_success() => {
                super::read_limited(resp, MANIFEST_LIMIT, &shown, "manifest").await?
            }
            s if s.as_u16() == 404 || s.as_u16() == 410 => {
                return Err(PublishError::NotFound {
                    store: shown,
                    object: "manifest".into(),
                })
            }
            s if (s.as_u16() == 401 || s.as_u16() == 403) && settings.credentials.is_set() => {
                // A private bucket: read the same object through the JSON API with credentials.
                match gcs_uri_from_public_url(url) {
                    Some(gs) => {
                        let (store, name) = store_for_uri(&gs, settings)?;
                        store.read_small(&name, MANIFEST_LIMIT).await?
                    }
                    None => {
                        return Err(PublishError::Manifest {
                            url: shown,
                            detail: format!("HTTP {s}"),
                        })
                    }
                }
            }
            s => {
                return Err(PublishError::Manifest {
                    url: shown,
                    detail: format!("HTTP {s}"),
                })
            }
        }
    } else {
        let (store, name) = store_for_uri(url, settings)?;
        store.read_small(&name, MANIFEST_LIMIT).await?
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| PublishError::Manifest {
        url: shown.clone(),
        detail: format!("not a manifest: {e}"),
    })?;
    if m.schema_version == 0 || m.schema_version > MANIFEST_SCHEMA_VERSION {
        return Err(PublishError::Manifest {
            url: shown,
            detail: format!(
                "schema_version {} is not supported (this provider reads up to {})",
                m.schema_version, MANIFEST_SCHEMA_VERSION
            ),
        });
    }
    Ok(m)
}

/// HEAD an http(s) URL: `NotFound` when 404/410; size checked when the server gives one.
async fn head_http(url: &str, size: u64) -> Result<RemoteObject, PublishError> {
    let shown = redact_url(url);
    let resp = http_client()?
        .head(url)
        .send()
        .await
        .map_err(|e| PublishError::Transient {
            store: shown.clone(),
            attempts: 1,
            detail: super::gcs::describe(e),
        })?;
    let status = resp.status();
    if status.as_u16() == 404 || status.as_u16() == 410 {
        return Err(PublishError::NotFound {
            store: shown,
            object: String::new(),
        });
    }
    if !status.is_success() {
        return Err(PublishError::Refused {
            store: shown,
            detail: format!("HEAD answered {status}"),
        });
    }
    let len = resp
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(l) = len {
        if l != size {
            return Err(PublishError::Mismatch {
                store: shown,
                object: String::new(),
                detail: format!("size {l} != expected {size}"),
            });
        }
    }
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RemoteObject {
        name: shown,
        size: len.unwrap_or(size),
        etag,
        ..Default::default()
    })
}

/// HEAD an http(s) URL for existence only.
async fn http_exists(url: &str) -> Result<(), PublishError> {
    match head_http(url, 0).await {
        Ok(_) | Err(PublishError::Mismatch { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Confirms a URL printed by a publish command: http(s) by HEAD (size), storage URIs by the
/// store's head (size and every checksum it has; size alone when it has none).
pub(crate) async fn verify_url(
    url: &str,
    size: u64,
    sha256: &str,
    settings: &StoreSettings,
) -> Result<RemoteObject, PublishError> {
    if is_http(url) {
        return head_http(url, size).await;
    }
    let (store, name) = store_for_uri(url, settings)?;
    let remote = store.head(&name).await?;
    match remote.matches(size, None, None, Some(sha256)) {
        Ok(()) => Ok(remote),
        Err(d) if d.starts_with("no checksum") && remote.size == size => {
            tracing::warn!(url = %redact_url(url), "store records no checksum; verified by size only");
            Ok(remote)
        }
        Err(detail) => Err(PublishError::Mismatch {
            store: redact_url(url),
            object: name,
            detail,
        }),
    }
}

/// Checks every file of a manifest (and the manifest object, when given) still exists with the
/// recorded size and checksum. Errors are returned only when the check itself could not run.
pub async fn verify_published(
    manifest: &Manifest,
    manifest_uri: Option<&str>,
    settings: &StoreSettings,
) -> Result<Verification, PublishError> {
    if let Some(m) = manifest_uri.filter(|m| !m.is_empty()) {
        let head = if is_http(m) {
            http_exists(m).await
        } else {
            let (store, name) = store_for_uri(m, settings)?;
            store.head(&name).await.map(|_| ())
        };
        match head {
            Ok(_) => {}
            Err(PublishError::NotFound { .. }) => {
                return Ok(Verification::Gone {
                    what: format!("manifest {}", redact_url(m)),
                })
            }
            Err(e) => return Err(e),
        }
    }
    for f in &manifest.files {
        // Without a GCS credential (a consumer of a public bucket) check the public URL instead.
        let public_only =
            f.storage_uri.starts_with("gs://") && !settings.credentials.is_set() && is_http(&f.url);
        let uri = if f.storage_uri.is_empty() || public_only {
            &f.url
        } else {
            &f.storage_uri
        };
        let what = redact_url(uri);
        let head = if is_http(uri) {
            head_http(uri, f.size_bytes).await
        } else {
            let (store, name) = store_for_uri(uri, settings)?;
            store.head(&name).await
        };
        let remote = match head {
            Ok(r) => r,
            Err(PublishError::NotFound { .. }) => return Ok(Verification::Gone { what }),
            Err(PublishError::Mismatch { detail, .. }) => {
                return Ok(Verification::Changed {
                    what: format!("{what}: {detail}"),
                })
            }
            Err(e) => return Err(e),
        };
        if remote.size != f.size_bytes {
            return Ok(Verification::Changed {
                what: format!("{what}: size {} != recorded {}", remote.size, f.size_bytes),
            });
        }
        if let Some(s) = &remote.sha256 {
            if !s.eq_ignore_ascii_case(&f.sha256) {
                return Ok(Verification::Changed {
                    what: format!("{what}: sha256 {s} != recorded {}", f.sha256),
                });
            }
        }
        let now = remote.checksum_string();
        let recorded_kind = f.remote_checksum.split(':').next().unwrap_or("");
        let now_kind = now.split(':').next().unwrap_or("");
        if !f.remote_checksum.is_empty() && recorded_kind == now_kind && now != f.remote_checksum {
            return Ok(Verification::Changed {
                what: format!("{what}: checksum {now} != recorded {}", f.remote_checksum),
            });
        }
    }
    Ok(Verification::Present)
}

/// Deletes the manifest first (so no manifest ever lists deleted files), then every file with a
/// storage URI. Returns how many objects were deleted; absent ones are not an error.
pub async fn delete_published(
    manifest: &Manifest,
    manifest_uri: Option<&str>,
    settings: &StoreSettings,
) -> Result<usize, PublishError> {
    let mut deleted = 0;
    let mut uris: Vec<&str> = Vec::new();
    if let Some(m) = manifest_uri.filter(|m| !m.is_empty()) {
        uris.push(m);
    }
    for f in &manifest.files {
        if f.storage_uri.is_empty() || is_http(&f.storage_uri) {
            tracing::warn!(url = %redact_url(&f.url), "published by a command at an http URL; not deleted");
            continue;
        }
        uris.push(&f.storage_uri);
    }
    for uri in uris {
        let (store, name) = store_for_uri(uri, settings)?;
        if store.delete(&name).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::{gcs_uri_from_public_url, redact_url};

    #[test]
    fn public_gcs_urls_map_to_gs_uris() {
        assert_eq!(
            gcs_uri_from_public_url("https://storage.googleapis.com/b/a%20b/m.json").as_deref(),
            Some("gs://b/a b/m.json")
        );
        assert_eq!(
            gcs_uri_from_public_url("https://example.com/b/m.json"),
            None
        );
        assert_eq!(
            gcs_uri_from_public_url("https://storage.googleapis.com/b"),
            None
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pw@h/p?sig=abc"),
            "https://***@h/p?***"
        );
    }
}
