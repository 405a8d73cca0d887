//! [`HyopsStateError`].

use std::path::PathBuf;

/// Why a HyOps state reference could not be resolved or a state file written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HyopsStateError {
    /// The reference is malformed.
    #[error("state ref {reference:?}: {reason}")]
    BadRef {
        /// the reference
        reference: String,
        /// why
        reason: &'static str,
    },
    /// The state file does not exist.
    #[error("state ref {reference}: no state file at {path}")]
    Missing {
        /// the reference
        reference: String,
        /// where it was looked for
        path: PathBuf,
    },
    /// The state exists but its status is not ok.
    #[error("state ref {reference}: {path} has status {status:?}, not \"ok\"")]
    NotOk {
        /// the reference
        reference: String,
        /// the file
        path: PathBuf,
        /// what it says
        status: String,
    },
    /// Several ok instances and no `#instance` to choose.
    #[error("state ref {reference}: several ok instances ({instances}); name one as {reference}#<instance>")]
    Ambiguous {
        /// the reference
        reference: String,
        /// the instances, comma-separated
        instances: String,
    },
    /// The repo state names a backend this provider does not know.
    #[error("state ref {reference}: unknown repository backend {backend:?} (expected gcs/gcp, s3, azure/azblob/blob or file)")]
    UnknownBackend {
        /// the reference
        reference: String,
        /// the value found
        backend: String,
    },
    /// A required output is missing.
    #[error("state ref {reference}: outputs lack {field}")]
    MissingOutput {
        /// the reference
        reference: String,
        /// the field(s)
        field: String,
    },
    /// Reading or parsing failed.
    #[error("state file {path}: {detail}")]
    Io {
        /// the file
        path: PathBuf,
        /// why
        detail: String,
    },
}
