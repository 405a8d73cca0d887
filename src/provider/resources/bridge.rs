//! The seam between the provider and the engine, shared by the resource and the data source:
//! [`engine_env`] (provider settings → [`EngineEnv`]), [`LogProgress`] (engine progress →
//! `tracing`, which the plugin turns into hclog lines Terraform shows under `TF_LOG`), and the
//! mapping of engine errors onto diagnostics with attribute paths ([`engine_diagnostics`],
//! [`publish_diagnostic`]).
//!
//! Knows no tfplugin5 messages; never formats a secret (engine errors carry none by design).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cty::Path;
use crate::engine::env::EngineEnv;
use crate::engine::error::{EngineError, ErrorKind};
use crate::engine::iso::IsoError;
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::PublishError;
use crate::engine::spec::ProviderSettings;
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// The engine environment for one operation: the process environment's fallbacks (read once per
/// call), overlaid with the provider block's settings.
pub(crate) fn engine_env(settings: &ProviderSettings) -> EngineEnv {
    EngineEnv::from_env().with_provider_settings(settings)
}

/// Forwards engine progress to the provider log. Byte counters are logged once per 64 MiB (and
/// at the end) so a large upload does not flood the log.
#[derive(Debug, Default)]
pub(crate) struct LogProgress {
    /// the `done` value last logged
    last: AtomicU64,
}

impl Progress for LogProgress {
    fn message(&self, stage: Stage, message: &str) {
        tracing::info!(stage = stage.as_str(), "{message}");
    }

    fn bytes(&self, stage: Stage, done: u64, total: Option<u64>) {
        const STEP: u64 = 64 * 1024 * 1024;
        let last = self.last.load(Ordering::Relaxed);
        // a new counter (next stage or file) starts below the last value
        let due = done < last || done - last >= STEP || total == Some(done);
        if due {
            self.last.store(done, Ordering::Relaxed);
            tracing::debug!(stage = stage.as_str(), done, total, "progress");
        }
    }
}

/// A dotted attribute path (`build.command`) as a cty path.
pub(crate) fn dotted_path(dotted: &str) -> Path {
    dotted
        .split('.')
        .filter(|s| !s.is_empty())
        .fold(Path::root(), |p, seg| p.join_attr(seg))
}

/// Diagnostics for a failed create, at the attribute at fault where one is known.
pub(crate) fn engine_diagnostics(err: &EngineError) -> Diagnostics {
    let mut diags = Diagnostics::new();
    match err {
        EngineError::Invalid(problems) => {
            for p in problems {
                diags.push(
                    Diagnostic::error(format!("Invalid {}", p.path), p.message.clone())
                        .at(dotted_path(&p.path)),
                );
            }
        }
        EngineError::Iso(IsoError::Mismatch {
            url,
            expected,
            actual,
        }) => diags.push(
            Diagnostic::error(
                "source_iso_sha256 does not match the ISO",
                format!(
                    "The ISO downloaded from {url} hashes to sha256 {actual}, but \
                     source_iso_sha256 is {expected}. The download was discarded and nothing \
                     was built. Pin the digest of the ISO you mean to build."
                ),
            )
            .at(Path::attr("source_iso_sha256")),
        ),
        EngineError::Publish(e) => diags.push(publish_diagnostic("Cannot publish the image", e)),
        other => {
            let summary = match other.kind() {
                ErrorKind::Cancelled => "Image build cancelled",
                ErrorKind::TimedOut => "Image build timed out",
                ErrorKind::Refused => "Image build refused",
                ErrorKind::Transient => "Image build failed (transient; retry may succeed)",
                _ => "Image build failed",
            };
            let mut d = Diagnostic::error(summary, other.to_string());
            if let EngineError::TimedOut { .. } = other {
                d = d.at(Path::attr("timeouts").join_attr("create"));
            }
            diags.push(d);
        }
    }
    diags
}

/// One diagnostic for a publish/store error; credential problems point at the provider
/// configuration and name the environment variables (the error's text does).
pub(crate) fn publish_diagnostic(summary: &str, e: &PublishError) -> Diagnostic {
    Diagnostic::error(summary, e.to_string())
}

/// Why a store operation driven by the provider stopped early.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// Terraform's Stop or a dropped RPC
    Cancelled,
    /// the configured timeout passed
    TimedOut(Duration),
}

/// Runs `fut` until it finishes, `cancel` fires, or `limit` passes.
pub(crate) async fn bounded<T>(
    fut: impl Future<Output = T>,
    cancel: &CancellationToken,
    limit: Duration,
) -> Result<T, Interrupted> {
    tokio::select! {
        r = fut => Ok(r),
        _ = cancel.cancelled() => Err(Interrupted::Cancelled),
        _ = tokio::time::sleep(limit) => Err(Interrupted::TimedOut(limit)),
    }
}

impl Interrupted {
    /// An error diagnostic saying what was interrupted.
    pub(crate) fn diagnostic(&self, what: &str) -> Diagnostic {
        match self {
            Interrupted::Cancelled => Diagnostic::error(
                format!("{what} cancelled"),
                format!("{what} was cancelled before it finished."),
            ),
            Interrupted::TimedOut(d) => Diagnostic::error(
                format!("{what} timed out"),
                format!("{what} did not finish within {d:?}."),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_become_attribute_steps() {
        assert_eq!(
            dotted_path("build.command"),
            Path::attr("build").join_attr("command")
        );
        assert_eq!(dotted_path("artifact_key"), Path::attr("artifact_key"));
    }

    #[test]
    fn iso_mismatch_names_the_attribute_and_both_sums() {
        let e = EngineError::Iso(IsoError::Mismatch {
            url: "file:///x.iso".into(),
            expected: "aa".repeat(32),
            actual: "bb".repeat(32),
        });
        let d = engine_diagnostics(&e);
        let first = d.iter().next().unwrap();
        assert!(first.summary.contains("source_iso_sha256"));
        assert!(first.detail.contains(&"aa".repeat(32)));
        assert!(first.detail.contains(&"bb".repeat(32)));
    }
}
