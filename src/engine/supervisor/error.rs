//! The supervisor's error: could not start, exited non-zero (with the log tail), cancelled, or
//! timed out.

use std::path::PathBuf;
use std::time::Duration;

/// Why a supervised command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The process could not be started (missing program, bad cwd, unwritable log).
    #[error("could not start `{label}`: {source}")]
    Spawn {
        /// the command's label
        label: String,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("could not open log file {path} for `{label}`: {source}")]
    Log {
        /// the command's label
        label: String,
        /// log path
        path: PathBuf,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
    /// The process ran and exited unsuccessfully.
    #[error("`{label}` failed ({status}); log {log}:\n{tail}")]
    Exited {
        /// the command's label
        label: String,
        /// exit status as text (`exit status: 2`, `signal: 9 (SIGKILL)`)
        status: String,
        /// exit code when it exited normally
        code: Option<i32>,
        /// full log
        log: PathBuf,
        /// the last lines of the log
        tail: String,
    },
    /// The cancellation token fired; the process group was terminated.
    #[error("`{label}` was cancelled; process group terminated; log {log}")]
    Cancelled {
        /// the command's label
        label: String,
        /// full log
        log: PathBuf,
    },
    /// The timeout passed; the process group was terminated.
    #[error("`{label}` timed out after {after:?}; process group terminated; log {log}:\n{tail}")]
    TimedOut {
        /// the command's label
        label: String,
        /// the configured timeout
        after: Duration,
        /// full log
        log: PathBuf,
        /// the last lines of the log
        tail: String,
    },
    /// Waiting for the process failed (should not happen).
    #[error("waiting for `{label}` failed: {source}")]
    Wait {
        /// the command's label
        label: String,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
}

impl SupervisorError {
    /// True when the run ended because the caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SupervisorError::Cancelled { .. })
    }

    /// The log tail carried by the error, if any.
    pub fn tail(&self) -> Option<&str> {
        match self {
            SupervisorError::Exited { tail, .. } | SupervisorError::TimedOut { tail, .. } => {
                Some(tail)
            }
            _ => None,
        }
    }
}
