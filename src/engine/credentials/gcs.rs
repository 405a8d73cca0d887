//! The parsed GCS service-account key. The JSON is parsed once; the RSA key is loaded once
//! (aws-lc frees and cleanses it on drop), the raw JSON and PEM are zeroized on drop.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::{CredentialError, CredentialSource, ScopedSecretFile, SecretString};

/// Google's default OAuth token endpoint.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A usable service-account key. Debug shows only the account e-mail, key id and source.
#[derive(Clone)]
pub struct GcsServiceAccount {
    client_email: String,
    token_uri: String,
    private_key_id: Option<String>,
    key: Arc<RsaKeyPair>,
    raw_json: SecretString,
    source: CredentialSource,
}

impl fmt::Debug for GcsServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for GcsServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service account {} (from {})",
            self.client_email, self.source
        )
    }
}

impl GcsServiceAccount {
    /// Reads and parses a key file.
    pub fn from_file(path: &Path, source: CredentialSource) -> Result<Self, CredentialError> {
        let text = read_credential_text(path, &source)?;
        Self::parse(text, source)
    }

    /// Parses the JSON text of a service-account key.
    pub fn parse(json: SecretString, source: CredentialSource) -> Result<Self, CredentialError> {
        // Typed parse: the private key goes straight into a zeroizing string (serde_json's
        // scratch buffer for escaped strings is the one copy outside our control).
        let raw: RawKey =
            serde_json::from_str(json.expose_secret()).map_err(|e| CredentialError::NotJson {
                source_name: source.clone(),
                line: e.line(),
                column: e.column(),
                category: match e.classify() {
                    serde_json::error::Category::Io => "read error",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Data => "a field has the wrong type",
                    serde_json::error::Category::Eof => "unexpected end",
                },
            })?;
        if raw.kind.as_deref().is_some_and(|t| t != "service_account") {
            return Err(CredentialError::NotServiceAccount {
                source_name: source.clone(),
            });
        }
        let missing = |field: &'static str| CredentialError::MissingField {
            source_name: source.clone(),
            field,
        };
        let client_email = raw
            .client_email
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| missing("client_email"))?;
        let pem = raw.private_key.ok_or_else(|| missing("private_key"))?;
        let token_uri = match raw.token_uri {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => DEFAULT_TOKEN_URI.to_owned(),
        };
        let parsed = url::Url::parse(&token_uri).map_err(|e| CredentialError::BadField {
            source_name: source.clone(),
            field: "token_uri",
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(CredentialError::BadField {
                source_name: source.clone(),
                field: "token_uri",
                reason: "scheme must be https (or http on loopback)".into(),
            });
        }
        let key = load_pkcs8_rsa(pem.expose_secret(), &source)?;
        Ok(GcsServiceAccount {
            client_email,
            token_uri,
            private_key_id: raw.private_key_id,
            key: Arc::new(key),
            raw_json: json,
            source,
        })
    }

    /// `client_email` (the JWT issuer).
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// `token_uri` (the JWT audience and where it is exchanged).
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// `private_key_id` (the JWT `kid`), when present.
    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    /// Where it came from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// Signs `message` with RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, CredentialError> {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| CredentialError::BadKey {
                source_name: self.source.clone(),
                reason: "signing failed",
            })?;
        Ok(sig)
    }

    /// Writes the JSON to a 0600 file in a fresh 0700 directory (removed on drop), for a child
    /// process that gets only the path.
    pub fn to_scoped_file(&self) -> Result<ScopedSecretFile, CredentialError> {
        ScopedSecretFile::create("gcs-sa.json", self.raw_json.expose_secret().as_bytes())
            .map_err(CredentialError::ScopedFile)
    }
}

/// The fields read from a key file (others are ignored).
#[derive(serde::Deserialize)]
struct RawKey {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<SecretString>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Decodes a `-----BEGIN PRIVATE KEY-----` PEM block and loads it as an RSA key pair.
fn load_pkcs8_rsa(pem: &str, source: &CredentialSource) -> Result<RsaKeyPair, CredentialError> {
    let bad = |reason: &'static str| CredentialError::BadKey {
        source_name: source.clone(),
        reason,
    };
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(bad(
            "PKCS#1 PEM (BEGIN RSA PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt`",
        ));
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(bad(
            "the key is encrypted; a service-account key is plain PKCS#8",
        ));
    }
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = pem
        .find(begin)
        .ok_or_else(|| bad("no `-----BEGIN PRIVATE KEY-----` PEM block"))?
        + begin.len();
    let stop = pem[start..]
        .find(end)
        .ok_or_else(|| bad("PEM block has no END line"))?
        + start;
    let b64: Zeroizing<String> = Zeroizing::new(
        pem[start..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let der = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| bad("PEM body is not valid base64"))?,
    );
    RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| bad("not a PKCS#8 RSA private key (aws-lc rejected it)"))
}

/// Largest key file read into memory (a service-account JSON is about 2.4 KiB).
const KEY_FILE_LIMIT: u64 = 1024 * 1024;

/// Reads a credential file (any Google kind) as text, errors naming `source`, never content.
pub(in crate::engine::credentials) fn read_credential_text(
    path: &Path,
    source: &CredentialSource,
) -> Result<SecretString, CredentialError> {
    let bytes = read_key_file(path).map_err(|error| CredentialError::Read {
        source_name: source.clone(),
        error,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CredentialError::NotJson {
        source_name: source.clone(),
        line: 1,
        column: 1,
        category: "not UTF-8",
    })?;
    Ok(SecretString::new(text.to_owned()))
}

/// Reads a credential or subject-token file: a regular file (a symlink to one is fine: secret
/// mounts use them; a FIFO or device is refused without blocking), at most [`KEY_FILE_LIMIT`]
/// bytes, into zeroizing memory.
pub(in crate::engine::credentials) fn read_key_file(
    path: &Path,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > KEY_FILE_LIMIT {
        return Err(std::io::Error::other(format!(
            "larger than {KEY_FILE_LIMIT} bytes; not a key file"
        )));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    f.take(KEY_FILE_LIMIT + 1).read_to_end(&mut out)?;
    if out.len() as u64 > KEY_FILE_LIMIT {
        return Err(std::io::Error::other("grew past the size limit while read"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_json_reports_position_never_content() {
        let json = SecretString::from("{\n \"a\": 1,\n topsecret }");
        let err = GcsServiceAccount::parse(json, CredentialSource::Env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not JSON at line 3"), "{msg}");
        assert!(!msg.contains("topsecret"), "{msg}");
    }

    #[test]
    fn missing_field_and_bad_key_are_named() {
        let err = GcsServiceAccount::parse(
            SecretString::from(r#"{"type":"service_account","private_key":"x"}"#),
            CredentialSource::Inline,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`client_email`"), "{err}");
        let err = GcsServiceAccount::parse(
            SecretString::from(
                r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n"}"#,
            ),
            CredentialSource::Inline,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a PKCS#8 RSA"), "{err}");
        assert!(!err.to_string().contains("QUJD"), "{err}");
    }
}
