//! [`RunnerError`]: what went wrong talking to or running on the build runner, sorted by what
//! the operator can act on. Never carries a credential: remote output is the build log's tail
//! (which the remote engine already keeps secret-free) and ssh's own messages.

use std::time::Duration;

/// Why a runner operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// A `build_runner` field is unusable.
    #[error("build_runner.{field}: {message}")]
    Config {
        /// the field
        field: &'static str,
        /// why
        message: String,
    },
    /// The runner's host key is unknown or differs from the expected one: nothing was run.
    #[error(
        "refusing to connect to build runner {host}: its host key {fingerprint} is not the \
         expected one ({detail}). Nothing was run. If the runner was legitimately re-keyed, update \
         build_runner.host_key / known_hosts_file."
    )]
    HostKey {
        /// the runner as configured
        host: String,
        /// the fingerprint the runner presented (`SHA256:…`), or `unknown`
        fingerprint: String,
        /// ssh's own words
        detail: String,
    },
    /// The runner could not be reached or refused authentication.
    #[error("cannot connect to build runner {host}: {detail}")]
    Connect {
        /// the runner as configured
        host: String,
        /// ssh's own words (log tail)
        detail: String,
    },
    /// The local `ssh` could not be started or the control directory not created.
    #[error("cannot run ssh for build runner {host}: {detail}")]
    Local {
        /// the runner as configured
        host: String,
        /// what failed
        detail: String,
    },
    /// Shipping the provider binary to the runner failed (or it did not verify).
    #[error("cannot ship the provider binary to build runner {host}: {detail}")]
    Ship {
        /// the runner as configured
        host: String,
        /// what failed
        detail: String,
    },
    /// The runner is not a platform this binary runs on.
    #[error("build runner {host} is {found}; this provider binary is built for {expected}")]
    Platform {
        /// the runner as configured
        host: String,
        /// what `uname -sm` said
        found: String,
        /// what this binary needs
        expected: String,
    },
    /// The build ran on the runner and failed: the remote output's tail.
    #[error("the build on runner {host} failed (exit {code}):\n{tail}")]
    Remote {
        /// the runner as configured
        host: String,
        /// the remote CLI's exit code (2 invalid spec, 1 failed)
        code: i32,
        /// the last lines of the remote output (the build log's tail included)
        tail: String,
    },
    /// The remote run answered something that is not a contract.
    #[error("build runner {host} returned no usable contract: {detail}")]
    Protocol {
        /// the runner as configured
        host: String,
        /// what was wrong
        detail: String,
    },
    /// Cancelled (Stop, Ctrl-C): the channel was closed, so the remote build was stopped.
    #[error("the build on runner {host} was cancelled; the remote build was stopped")]
    Cancelled {
        /// the runner as configured
        host: String,
    },
    /// The local bound on the remote run passed.
    #[error("the build on runner {host} timed out after {after:?}; the remote build was stopped:\n{tail}")]
    TimedOut {
        /// the runner as configured
        host: String,
        /// the bound
        after: Duration,
        /// the last lines of the remote output
        tail: String,
    },
}

impl RunnerError {
    /// True when the caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RunnerError::Cancelled { .. })
    }
}
