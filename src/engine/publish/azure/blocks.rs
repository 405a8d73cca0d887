//! Azure block uploads with integrity, written by hand because object_store cannot add
//! `Content-MD5` under its SharedKey signature: every block is sent with its `Content-MD5`
//! (the service refuses a block whose bytes do not match), blocks go up `IN_FLIGHT` at a time,
//! and the block list commits with `x-ms-blob-content-md5` (the MD5 of the whole file, computed
//! while the blocks are read), `x-ms-meta-sha256` and `If-None-Match: *` (never overwrites).
//! [`AzureBlocks::content_md5`] reads the blob's `Content-MD5` back for verification.
//!
//! Used when a shared account key is configured (Azurite, most service accounts); other
//! credentials (SAS, Entra ID) keep the object_store path, whose `remote_checksum` stays empty.
//! Memory is about `IN_FLIGHT + 1` blocks. Uncommitted blocks of an interrupted upload expire
//! after 7 days.

use std::time::Duration;

use base64::Engine as _;
use bytes::BytesMut;
use futures::stream::{FuturesUnordered, StreamExt};
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::engine::net::retry::{is_retryable_status, sleep_or_cancel, Attempts, RetryConfig};
use crate::engine::publish::store::UploadSource;
use crate::engine::publish::PublishError;

/// Blocks uploaded at once.
const IN_FLIGHT: usize = 3;
const VERSION: &str = "2021-08-06";

/// A SharedKey-signing block uploader for one container.
pub(crate) struct AzureBlocks {
    http: reqwest::Client,
    account: String,
    key: Zeroizing<Vec<u8>>,
    /// the account URL, e.g. `https://ACCOUNT.blob.core.windows.net` or Azurite's
    /// `http://127.0.0.1:PORT/ACCOUNT`
    base: url::Url,
    container: String,
    label: String,
    retry: RetryConfig,
}

impl std::fmt::Debug for AzureBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlocks")
            .field("account", &self.account)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

/// The standard headers SharedKey signs that these requests use.
#[derive(Clone, Copy, Default)]
struct Signed<'a> {
    len: u64,
    md5: &'a str,
    content_type: &'a str,
    if_none_match: &'a str,
}

/// What committing the block list did.
pub(crate) enum Commit {
    Created,
    Exists,
}

impl AzureBlocks {
    pub(crate) fn new(
        account: &str,
        key_b64: &str,
        base: &str,
        container: &str,
        label: &str,
    ) -> Result<Self, PublishError> {
        let key = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(key_b64.trim())
                .map_err(|_| PublishError::Config("azure: the account key is not base64".into()))?,
        );
        let base = url::Url::parse(base.trim_end_matches('/'))
            .map_err(|e| PublishError::Config(format!("azure endpoint: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PublishError::Config(format!("azure: HTTP client: {e}")))?;
        Ok(AzureBlocks {
            http,
            account: account.to_owned(),
            key,
            base,
            container: container.to_owned(),
            label: label.to_owned(),
            retry: RetryConfig::default(),
        })
    }

    fn blob_url(&self, name: &str) -> url::Url {
        let mut u = self.base.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().push(&self.container);
            for s in name.split('/') {
                segs.push(s);
            }
        }
        u
    }

    /// The SharedKey `Authorization` value for a request with these standard headers and
    /// `x-ms-*` headers.
    fn authorization(
        &self,
        method: &str,
        url: &url::Url,
        std: Signed<'_>,
        ms: &[(&str, String)],
    ) -> String {
        let Signed {
            len,
            md5,
            content_type,
            if_none_match,
        } = std;
        let len = if len == 0 {
            String::new()
        } else {
            len.to_string()
        };
        let mut ms: Vec<(String, &str)> = ms
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        ms.sort();
        let headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
        query.sort();
        let mut resource = format!("/{}{}", self.account, url.path());
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{method}\n\n\n{len}\n{md5}\n{content_type}\n\n\n\n{if_none_match}\n\n\n{headers}{resource}"
        );
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key);
        let sig = aws_lc_rs::hmac::sign(&k, to_sign.as_bytes());
        format!(
            "SharedKey {}:{}",
            self.account,
            base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
        )
    }

    fn date() -> String {
        let now = time::OffsetDateTime::now_utc();
        now.format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default()
    }

    /// PUT of one block, retried on 408/429/5xx and connection errors (the same block id and
    /// bytes again is idempotent).
    async fn put_block(
        &self,
        name: &str,
        id: String,
        data: bytes::Bytes,
        cancel: &CancellationToken,
    ) -> Result<(), PublishError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let md5 = b64.encode(Md5::digest(&data));
        let mut url = self.blob_url(name);
        url.query_pairs_mut()
            .append_pair("comp", "block")
            .append_pair("blockid", &id);
        let mut attempts = Attempts::new(self.retry);
        loop {
            let ms = [
                ("x-ms-date", Self::date()),
                ("x-ms-version", VERSION.to_owned()),
            ];
            let auth = self.authorization(
                "PUT",
                &url,
                Signed {
                    len: data.len() as u64,
                    md5: &md5,
                    ..Default::default()
                },
                &ms,
            );
            let req = self
                .http
                .put(url.as_str())
                .timeout(Duration::from_secs(120 + data.len() as u64 / (256 * 1024)))
                .header("Content-MD5", &md5)
                .header("x-ms-date", &ms[0].1)
                .header("x-ms-version", VERSION)
                .header("Authorization", auth)
                .body(data.clone());
            let failure = tokio::select! {
                _ = cancel.cancelled() => return Err(PublishError::Cancelled),
                r = req.send() => match r {
                    Ok(resp) if resp.status().is_success() => return Ok(()),
                    Ok(resp) if is_retryable_status(resp.status()) => format!("block: HTTP {}", resp.status()),
                    Ok(resp) => {
                        let status = resp.status();
                        let body = crate::engine::publish::read_prefix(resp, 4096).await;
                        return Err(PublishError::Refused {
                            store: self.label.clone(),
                            detail: format!("block of {name}: {status}: {}", String::from_utf8_lossy(&body)),
                        });
                    }
                    Err(e) => format!("block: {}", crate::engine::publish::gcs::describe(e)),
                },
            };
            let Some(delay) = attempts.failed(None) else {
                return Err(PublishError::Transient {
                    store: self.label.clone(),
                    attempts: attempts.count(),
                    detail: failure,
                });
            };
            sleep_or_cancel(delay, cancel).await?;
        }
    }

    /// Uploads `src` as `name` in blocks of `block_size` and commits it unless a blob exists.
    /// Returns what the commit did and the MD5 of what was sent.
    pub(crate) async fn upload(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        block_size: usize,
        cancel: &CancellationToken,
    ) -> Result<(Commit, [u8; 16]), PublishError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut file = tokio::fs::File::open(src.path)
            .await
            .map_err(|e| PublishError::local(src.path, e))?;
        let mut whole = Md5::new();
        let mut ids = Vec::new();
        let mut running = FuturesUnordered::new();
        let mut sent = 0u64;
        loop {
            let mut buf = BytesMut::zeroed(block_size);
            let mut n = 0;
            while n < block_size {
                let got = file
                    .read(&mut buf[n..])
                    .await
                    .map_err(|e| PublishError::local(src.path, e))?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 && !ids.is_empty() {
                break;
            }
            buf.truncate(n);
            whole.update(&buf);
            sent += n as u64;
            let id = b64.encode(format!("hyops-block-{:08}", ids.len()));
            ids.push(id.clone());
            running.push(self.put_block(name, id, buf.freeze(), cancel));
            if running.len() >= IN_FLIGHT {
                if let Some(r) = running.next().await {
                    r?;
                }
            }
            if n < block_size {
                break;
            }
        }
        while let Some(r) = running.next().await {
            r?;
        }
        if sent != src.size {
            return Err(PublishError::local(
                src.path,
                std::io::Error::other(format!(
                    "size changed since hashing: {sent} bytes, expected {}",
                    src.size
                )),
            ));
        }
        let md5: [u8; 16] = whole.finalize().into();
        let commit = self.put_block_list(name, &ids, src, &md5).await?;
        Ok((commit, md5))
    }

    async fn put_block_list(
        &self,
        name: &str,
        ids: &[String],
        src: &UploadSource<'_>,
        md5: &[u8; 16],
    ) -> Result<Commit, PublishError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in ids {
            body.push_str(&format!("<Latest>{id}</Latest>"));
        }
        body.push_str("</BlockList>");
        let body_md5 = b64.encode(Md5::digest(body.as_bytes()));
        let mut url = self.blob_url(name);
        url.query_pairs_mut().append_pair("comp", "blocklist");
        let ms = [
            ("x-ms-blob-content-md5", b64.encode(md5)),
            ("x-ms-blob-content-type", src.content_type.to_owned()),
            ("x-ms-date", Self::date()),
            ("x-ms-meta-sha256", src.sha256.to_owned()),
            ("x-ms-version", VERSION.to_owned()),
        ];
        let ctype = "application/xml";
        let auth = self.authorization(
            "PUT",
            &url,
            Signed {
                len: body.len() as u64,
                md5: &body_md5,
                content_type: ctype,
                if_none_match: "*",
            },
            &ms,
        );
        let mut req = self
            .http
            .put(url.as_str())
            .timeout(Duration::from_secs(120))
            .header("Content-MD5", &body_md5)
            .header("Content-Type", ctype)
            .header("If-None-Match", "*")
            .header("Authorization", auth);
        for (k, v) in &ms {
            req = req.header(*k, v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| PublishError::Transient {
                store: self.label.clone(),
                attempts: 1,
                detail: format!(
                    "commit {name}: {}",
                    crate::engine::publish::gcs::describe(e)
                ),
            })?;
        match resp.status().as_u16() {
            200..=299 => Ok(Commit::Created),
            409 | 412 => Ok(Commit::Exists),
            _ => {
                let status = resp.status();
                let text = crate::engine::publish::read_prefix(resp, 4096).await;
                Err(PublishError::Refused {
                    store: self.label.clone(),
                    detail: format!(
                        "commit {name}: {status}: {}",
                        String::from_utf8_lossy(&text)
                    ),
                })
            }
        }
    }

    /// The blob's `Content-MD5` property (`None` when it has none or is absent).
    pub(crate) async fn content_md5(&self, name: &str) -> Result<Option<[u8; 16]>, PublishError> {
        let url = self.blob_url(name);
        let ms = [
            ("x-ms-date", Self::date()),
            ("x-ms-version", VERSION.to_owned()),
        ];
        let auth = self.authorization("HEAD", &url, Signed::default(), &ms);
        let resp = self
            .http
            .head(url.as_str())
            .timeout(Duration::from_secs(60))
            .header("x-ms-date", &ms[0].1)
            .header("x-ms-version", VERSION)
            .header("Authorization", auth)
            .send()
            .await
            .map_err(|e| PublishError::Transient {
                store: self.label.clone(),
                attempts: 1,
                detail: format!("head {name}: {}", crate::engine::publish::gcs::describe(e)),
            })?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(resp
            .headers()
            .get("Content-MD5")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok()))
    }
}
