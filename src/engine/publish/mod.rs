//! Publishing: one small object-safe [`Store`] trait and its backends — [`gcs`] (JSON API on
//! reqwest), [`s3`] and [`azure`] (through object_store), [`file`] (a directory) — plus the
//! `publish.command` override ([`command`]), content-addressed naming ([`layout`]), target
//! resolution ([`PublishTarget::resolve`]) and the publish flow ([`publish`],
//! [`fetch_manifest`], [`verify_published`], [`delete_published`]), with uploads that overlap the
//! build's last steps ([`UploadQueue`], then [`publish_after`]).
//!
//! Knows nothing about builds: it takes finished local files with their digests. Nothing is
//! reported published unless a `head` confirms size and checksum. The manifest is written last,
//! so a manifest's presence means every file it lists was verified.

pub mod azure;
pub mod command;
mod error;
pub mod file;
mod flow;
pub mod gcs;
pub mod layout;
mod objstore;
mod overlap;
mod remote;
pub mod s3;
mod store;
mod target;

pub use crate::engine::net::redact_url;
pub use crate::engine::net::RetryConfig;
pub use error::PublishError;
pub use flow::{publish, publish_after, LocalFile, ManifestMeta, PublishedFile, PublishedSet};
pub use overlap::{EarlyUploads, UploadQueue};
pub use remote::{delete_published, fetch_manifest, store_for_uri, verify_published, Verification};
pub use store::{PutOutcome, RemoteObject, Store, UploadSource};
pub use target::{PublishTarget, StoreSettings};

/// The first `limit` bytes of a response body at most (for error messages); read errors end it.
pub(crate) async fn read_prefix(mut resp: reqwest::Response, limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(bytes)) = resp.chunk().await {
        let room = (limit as usize).saturating_sub(out.len());
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if out.len() as u64 >= limit {
            break;
        }
    }
    out
}

/// Reads a response body up to `limit` bytes, refusing larger ones.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
    store: &str,
    name: &str,
) -> Result<Vec<u8>, PublishError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                if (out.len() + bytes.len()) as u64 > limit {
                    return Err(PublishError::Refused {
                        store: store.to_owned(),
                        detail: format!("{name} is larger than {limit} bytes"),
                    });
                }
                out.extend_from_slice(&bytes);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(PublishError::Transient {
                    store: store.to_owned(),
                    attempts: 1,
                    detail: format!("reading {name}: {}", gcs::describe(e)),
                })
            }
        }
    }
}
