//! `hyops_vyos_image` with a `build_runner`: create and refresh through [`crate::runner`], and
//! runner errors as diagnostics (a refused host key or a failed remote build names the runner).

use tokio_util::sync::CancellationToken;

use super::bridge::LogProgress;
use super::vyos_image::Created;
use crate::cty::Path;
use crate::engine::contract::ArtifactContract;
use crate::engine::publish::Verification;
use crate::engine::spec::{ImageSpec, ProviderSettings};
use crate::runner::{self, RunnerError, Session};
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Runner errors as diagnostics (configuration problems at their `build_runner` attribute).
pub(crate) fn runner_diagnostics(err: &RunnerError) -> Diagnostics {
    let d = match err {
        RunnerError::Config { field, message } if *field != "publish" => {
            Diagnostic::error(format!("Invalid build_runner.{field}"), message.clone())
                .at(Path::attr("build_runner").join_attr(field))
        }
        RunnerError::Config { message, .. } => {
            Diagnostic::error("Invalid publish", message.clone()).at(Path::attr("publish"))
        }
        RunnerError::HostKey { .. } => {
            Diagnostic::error("Build runner host key refused", err.to_string())
        }
        RunnerError::Connect { .. } => {
            Diagnostic::error("Cannot connect to the build runner", err.to_string())
        }
        RunnerError::Cancelled { .. } => {
            Diagnostic::error("Build on the runner cancelled", err.to_string())
        }
        _ => Diagnostic::error("Build on the runner failed", err.to_string()),
    };
    d.into()
}

/// Builds (and publishes) `spec` on the runner of `session`.
pub(crate) async fn create(
    session: &Session,
    spec: &ImageSpec,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Created, Diagnostics> {
    let build = runner::create(session, spec, settings, cancel, &LogProgress::default())
        .await
        .map_err(|e| {
            tracing::warn!(artifact_key = %spec.artifact_key, "create on runner failed: {e}");
            runner_diagnostics(&e)
        })?;
    tracing::info!(
        artifact_key = %spec.artifact_key,
        runner = %build.contract.build_host,
        published = build.contract.published,
        "created on runner"
    );
    let mut warnings = Diagnostics::new();
    for w in build.warnings {
        warnings.warning("hyops_vyos_image build warning", w);
    }
    Ok(Created {
        contract: build.contract,
        warnings,
    })
}

/// Refresh of an unpublished build that stays on the runner: its file, checked over SSH.
pub(crate) async fn check(
    session: &Session,
    c: &ArtifactContract,
    cancel: &CancellationToken,
) -> Result<Verification, Diagnostics> {
    let size = runner::artifact_size(session, &c.artifact_local_path, cancel)
        .await
        .map_err(|e| runner_diagnostics(&e))?;
    let on = &c.build_host;
    Ok(match size {
        Some(n) if n == c.artifact_size_bytes => Verification::Present,
        Some(n) => Verification::Changed {
            what: format!(
                "{on}:{}: size {n} != recorded {}",
                c.artifact_local_path, c.artifact_size_bytes
            ),
        },
        None => Verification::Gone {
            what: format!("{on}:{}", c.artifact_local_path),
        },
    })
}
