//! [`PublishError`]: the one error type of the publish layer, sorted by what a caller can act on.
//! Backend modules keep private error enums and convert into it at their boundary.

use std::path::PathBuf;

use crate::engine::credentials::CredentialError;
use crate::engine::hyops_state::HyopsStateError;

/// A publish failure. Messages name the store and object, never a credential or session URI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The object (or bucket) does not exist.
    #[error("{store}: {object} not found")]
    NotFound {
        /// e.g. `gs://bucket`
        store: String,
        /// object name
        object: String,
    },
    /// An object already exists at the name with other content; it was not overwritten.
    #[error(
        "{store}: {object} already exists with different content ({detail}); refusing to \
         overwrite an immutable artifact name"
    )]
    AlreadyExistsDifferent {
        /// e.g. `gs://bucket`
        store: String,
        /// object name
        object: String,
        /// what differs
        detail: String,
    },
    /// Credentials were rejected (token endpoint or store said no).
    #[error("{store}: authentication failed: {detail}")]
    Auth {
        /// the store or token endpoint
        store: String,
        /// the server's reason
        detail: String,
    },
    /// The store refused the request (permission, bad request, checksum mismatch...).
    #[error("{store}: request refused: {detail}")]
    Refused {
        /// e.g. `gs://bucket`
        store: String,
        /// the server's reason
        detail: String,
    },
    /// Retries were exhausted on transient failures (timeouts, 429, 5xx, connection errors).
    #[error("{store}: transient failure, gave up after {attempts} attempts: {detail}")]
    Transient {
        /// e.g. `gs://bucket`
        store: String,
        /// attempts made
        attempts: u32,
        /// the last failure
        detail: String,
    },
    /// The remote object does not match what was uploaded or recorded.
    #[error("{store}: {object} does not match the local file: {detail}")]
    Mismatch {
        /// e.g. `gs://bucket`
        store: String,
        /// object name
        object: String,
        /// what differs
        detail: String,
    },
    /// Configuration is incomplete or invalid.
    #[error("publish configuration: {0}")]
    Config(String),
    /// An object name, prefix or path was refused by validation.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// the name
        name: String,
        /// why
        reason: &'static str,
    },
    /// A credential could not be resolved or used.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// Reading a local file failed.
    #[error("local file {path}: {error}")]
    Local {
        /// the file
        path: PathBuf,
        /// the I/O error
        error: std::io::Error,
    },
    /// The publish command failed or printed something other than one URL.
    #[error("publish command: {0}")]
    Command(String),
    /// HyOps state resolution failed.
    #[error(transparent)]
    State(#[from] HyopsStateError),
    /// A manifest could not be fetched or parsed.
    #[error("manifest {url}: {detail}")]
    Manifest {
        /// where (redacted URL)
        url: String,
        /// why
        detail: String,
    },
    /// Cancelled by the caller; nothing was claimed.
    #[error("publish cancelled")]
    Cancelled,
}

impl PublishError {
    /// True for failures worth retrying later as a whole (the store was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, PublishError::Transient { .. })
    }

    pub(crate) fn local(path: &std::path::Path, error: std::io::Error) -> Self {
        PublishError::Local {
            path: path.to_path_buf(),
            error,
        }
    }
}
