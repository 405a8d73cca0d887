//! The GCS backend's private error enum and its conversion into [`PublishError`].

use crate::engine::credentials::CredentialError;
use crate::engine::publish::PublishError;

#[derive(Debug, thiserror::Error)]
pub(super) enum GcsError {
    #[error("{0}")]
    TokenRefused(String),
    #[error("{0}")]
    TokenTransient(String),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

impl GcsError {
    pub(super) fn into_publish(self, store: &str, attempts: u32) -> PublishError {
        match self {
            GcsError::TokenTransient(detail) => PublishError::Transient {
                store: store.to_owned(),
                attempts,
                detail,
            },
            GcsError::TokenRefused(detail) => PublishError::Auth {
                store: store.to_owned(),
                detail,
            },
            GcsError::Credential(e) => PublishError::Credentials(e),
        }
    }

    pub(super) fn is_transient(&self) -> bool {
        matches!(self, GcsError::TokenTransient(_))
    }
}

/// A reqwest error without its URL (a resumable session URI is a secret), with its causes.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
