//! [`EngineError`]: the engine's public error, what [`crate::engine::create::create`] returns.
//! Layer errors (supervisor, preflight, build, verify, ISO, artifact, cache) convert into it at the
//! create boundary; [`EngineError::kind`] sorts them by what a caller can act on.

use std::time::Duration;

use crate::engine::artifact::ArtifactError;
use crate::engine::build::BuildError;
use crate::engine::cache::CacheError;
use crate::engine::hyops_state::HyopsStateError;
use crate::engine::iso::IsoError;
use crate::engine::preflight::PreflightError;
use crate::engine::publish::PublishError;
use crate::engine::verify::VerifyError;

/// A field of the spec and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// attribute path in resource/SPEC.json names, dot-separated (`build.command`)
    pub path: String,
    /// what is wrong and how to fix it
    pub message: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What a caller can do about an [`EngineError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// fix the configuration (an attribute path is available)
    Invalid,
    /// fix the host (preflight) or the inputs (sha mismatch, refused image)
    Refused,
    /// a network or store problem that may pass on retry
    Transient,
    /// the caller cancelled
    Cancelled,
    /// `timeouts.create` passed
    TimedOut,
    /// anything else (a failed build, I/O)
    Failed,
}

/// Why a create failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// the spec is invalid
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<SpecProblem>),
    /// the host cannot run the build
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// the ISO could not be acquired or verified
    #[error("source ISO: {0}")]
    Iso(#[from] IsoError),
    /// the builder failed
    #[error("build failed: {error}{}", .kept.as_ref().map(|p| format!(" (work directory kept at {p})")).unwrap_or_default())]
    Build {
        /// the builder's error (log tail inside)
        error: Box<BuildError>,
        /// work directory kept for debugging (packer's stage-1 disk)
        kept: Option<String>,
    },
    /// smoke verification refused the image
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// normalization or hashing failed
    #[error("normalize: {0}")]
    Artifact(#[from] ArtifactError),
    /// the build cache failed
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// publishing failed (or its configuration was refused before building)
    #[error("publish: {0}")]
    Publish(#[from] PublishError),
    /// the build succeeded but writing the HyOps state file failed
    #[error("HyOps state: {0}")]
    HyopsState(#[from] HyopsStateError),
    /// the caller cancelled; children were terminated and nothing was claimed
    #[error("create cancelled during {stage}; child processes terminated, nothing claimed")]
    Cancelled {
        /// the stage that was running
        stage: &'static str,
    },
    /// `timeouts.create` passed; children were terminated and nothing was claimed
    #[error("create timed out after {after:?} (timeouts.create) during {stage}; child processes terminated")]
    TimedOut {
        /// the configured timeout
        after: Duration,
        /// the stage that was running
        stage: &'static str,
    },
    /// a filesystem step failed
    #[error("{context}: {source}")]
    Io {
        /// what was being done
        context: String,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// One invalid field.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::Invalid(vec![SpecProblem {
            path: path.into(),
            message: message.into(),
        }])
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    /// What a caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Invalid(_) => ErrorKind::Invalid,
            EngineError::Preflight(_) => ErrorKind::Refused,
            EngineError::Iso(IsoError::Invalid(_)) => ErrorKind::Invalid,
            EngineError::Iso(IsoError::Mismatch { .. }) => ErrorKind::Refused,
            EngineError::Iso(IsoError::Cancelled) => ErrorKind::Cancelled,
            EngineError::Iso(_) => ErrorKind::Transient,
            EngineError::Verify(VerifyError::Refused { .. } | VerifyError::Boot { .. }) => {
                ErrorKind::Refused
            }
            EngineError::Publish(PublishError::Config(_) | PublishError::InvalidName { .. }) => {
                ErrorKind::Invalid
            }
            EngineError::Publish(PublishError::Cancelled) => ErrorKind::Cancelled,
            EngineError::Publish(e) if e.is_transient() => ErrorKind::Transient,
            EngineError::Publish(PublishError::Auth { .. } | PublishError::Refused { .. }) => {
                ErrorKind::Refused
            }
            EngineError::Cancelled { .. } => ErrorKind::Cancelled,
            EngineError::TimedOut { .. } => ErrorKind::TimedOut,
            _ => ErrorKind::Failed,
        }
    }

    /// True for cancellation by the caller.
    pub fn is_cancelled(&self) -> bool {
        self.kind() == ErrorKind::Cancelled
    }

    /// Whether this error came from a cancelled token (any layer).
    pub(crate) fn caused_by_cancellation(&self) -> bool {
        match self {
            EngineError::Cancelled { .. } | EngineError::Iso(IsoError::Cancelled) => true,
            EngineError::Build { error, .. } => error.is_cancelled(),
            EngineError::Verify(e) => e.is_cancelled(),
            EngineError::Artifact(ArtifactError::Cancelled) => true,
            EngineError::Cache(CacheError::Cancelled) => true,
            EngineError::Publish(PublishError::Cancelled) => true,
            _ => false,
        }
    }
}
