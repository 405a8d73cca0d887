//! S3 checksums: what the store reports for an object (`x-amz-checksum-sha256`, read through a
//! presigned HEAD that signs `x-amz-checksum-mode: ENABLED`, which object_store's own HEAD does
//! not send) and what it must equal for what was sent (the full-object SHA-256 of a single put,
//! or the composite of the part SHA-256s of a multipart upload).

use std::sync::Arc;

use base64::Engine as _;
use object_store::path::Path as ObjPath;
use object_store::signer::{SignedUrlOptions, Signer};

use crate::engine::publish::PublishError;

/// Reads the checksum an S3 store computed for an object (`x-amz-checksum-sha256`), through a
/// presigned HEAD that signs `x-amz-checksum-mode: ENABLED` (object_store's own HEAD does not ask
/// for it).
#[derive(Debug)]
pub(crate) struct ChecksumProbe {
    signer: Arc<dyn Signer>,
    http: reqwest::Client,
}

impl ChecksumProbe {
    pub(crate) fn new(signer: Arc<dyn Signer>) -> Result<Self, PublishError> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .timeout(std::time::Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PublishError::Config(format!("HTTP client: {e}")))?;
        Ok(ChecksumProbe { signer, http })
    }

    /// `Some("<base64>[-parts]")` when the store reports a SHA-256 checksum for the object.
    pub(crate) async fn sha256(&self, path: &ObjPath) -> Result<Option<String>, String> {
        let mode = reqwest::header::HeaderName::from_static("x-amz-checksum-mode");
        let opts = SignedUrlOptions::default().with_signed_header(
            mode.clone(),
            reqwest::header::HeaderValue::from_static("ENABLED"),
        );
        let url = self
            .signer
            .signed_url_opts(
                reqwest::Method::HEAD,
                path,
                std::time::Duration::from_secs(300),
                &opts,
            )
            .await
            .map_err(|e| e.to_string())?;
        let resp = self
            .http
            .head(url.as_str())
            .header(mode.as_str(), "ENABLED")
            .send()
            .await
            .map_err(crate::engine::publish::gcs::describe)?;
        if !resp.status().is_success() {
            return Err(format!("checksum HEAD answered {}", resp.status()));
        }
        Ok(resp
            .headers()
            .get("x-amz-checksum-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }
}

/// The SHA-256 S3 reports for what was sent: the full-object digest for a single put, the
/// composite (digest of the part digests, `-<parts>`) for a multipart upload.
#[derive(Debug)]
pub(crate) enum Expected {
    Full(String),
    Composite { digest: String, parts: usize },
}

impl Expected {
    pub(crate) fn full(sha256_hex: &str) -> Option<Self> {
        let raw = hex::decode(sha256_hex).ok()?;
        Some(Expected::Full(
            base64::engine::general_purpose::STANDARD.encode(raw),
        ))
    }

    pub(crate) fn composite(part_digests: &[[u8; 32]]) -> Self {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for d in part_digests {
            ctx.update(d);
        }
        Expected::Composite {
            digest: base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref()),
            parts: part_digests.len(),
        }
    }

    /// Compares with what the store reported (`value` or `value-N`); some stores leave off the
    /// part count.
    pub(crate) fn check(&self, reported: &str) -> Result<(), String> {
        let (value, count) = match reported.split_once('-') {
            Some((v, n)) => (v, n.parse::<usize>().ok()),
            None => (reported, None),
        };
        let ok = match self {
            Expected::Full(d) => value == d && count.is_none(),
            Expected::Composite { digest, parts } => {
                value == digest && count.is_none_or(|n| n == *parts)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("store sha256 {reported} != expected {self:?}"))
        }
    }
}

pub(crate) fn finish_part(ctx: &mut aws_lc_rs::digest::Context) -> [u8; 32] {
    let done = std::mem::replace(
        ctx,
        aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(done.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::Expected;

    #[test]
    fn reported_checksums_compare_with_or_without_a_part_count() {
        let d = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let c = Expected::composite(&d);
        let Expected::Composite { digest, .. } = &c else {
            panic!("composite")
        };
        assert!(c.check(digest).is_ok());
        assert!(c.check(&format!("{digest}-3")).is_ok());
        assert!(c.check(&format!("{digest}-2")).is_err());
        assert!(c.check("AAAA-3").is_err());
        let sha = "6f57cf7b41926221d286f9d0e9a9932ddb2f6b65b1550025f79633770b10d2be";
        let f = Expected::full(sha).unwrap();
        let Expected::Full(b64) = &f else {
            panic!("full")
        };
        assert!(f.check(b64).is_ok());
        assert!(
            f.check(&format!("{b64}-1")).is_err(),
            "a composite is not a full digest"
        );
        assert!(Expected::full("not hex").is_none());
    }
}
