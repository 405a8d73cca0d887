//! The GCS store's view of its credential: "a token", whatever the source (key, ADC file kinds,
//! workload identity federation, impersonation, metadata server). Fetching and caching live in
//! [`GcsCredential`]; this maps its errors onto the store's retry classes.

use super::error::GcsError;
use crate::engine::credentials::{CredentialError, GcsCredential, SecretString};

/// The store's token handle (the cache itself is shared with every clone of the credential).
#[derive(Debug)]
pub(super) struct TokenCache {
    credential: GcsCredential,
}

impl TokenCache {
    pub(super) fn new(credential: GcsCredential) -> Self {
        TokenCache { credential }
    }

    /// A valid token, fetched when none is cached or the cached one is near expiry.
    pub(super) async fn token(&self) -> Result<SecretString, GcsError> {
        self.credential.token().await.map_err(|e| match e {
            CredentialError::Token {
                source_name,
                detail,
                transient,
            } => {
                let detail = format!("{source_name}: {detail}");
                if transient {
                    GcsError::TokenTransient(detail)
                } else {
                    GcsError::TokenRefused(detail)
                }
            }
            other => GcsError::Credential(other),
        })
    }

    /// Forgets the cached token (after the store answered 401).
    pub(super) async fn invalidate(&self) {
        self.credential.invalidate().await;
    }
}
