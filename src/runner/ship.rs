//! Shipping this binary to the runner: content-addressed under `<remote_dir>/bin/<sha256>/`,
//! uploaded once per version (the probe finds it and re-verifies its sha256 on the runner),
//! written to a temp name, verified, then renamed, so a half-upload is never executed.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::remote;
use super::ssh::{Exec, ExecError};
use super::{map_exec_error, RunnerError, Session};
use crate::engine::progress::{Progress, Stage};
use crate::engine::supervisor::StdinSource;

/// Bound on shipping the binary.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Slack on top of `connect_timeout` for the probe.
const PROBE_SLACK: Duration = Duration::from_secs(60);

/// The binary on the runner.
#[derive(Debug, Clone)]
pub(crate) struct RemoteBinary {
    /// absolute runner directory
    pub(crate) dir: String,
    /// sha256 of the binary (its directory name)
    pub(crate) sha256: String,
}

/// This executable and its sha256 (hashed once per process).
fn local_binary() -> Result<&'static (PathBuf, String), String> {
    static BIN: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
        let sha = crate::engine::hash::hash_file(&exe, false, &CancellationToken::new())
            .map_err(|e| format!("hashing {}: {e}", exe.display()))?
            .sha256;
        Ok((exe, sha))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `uname -sm` this binary needs.
fn expected_platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        other => other,
    };
    format!("{os} {}", std::env::consts::ARCH)
}

/// Connects (first command of the session), checks the platform, and uploads the binary unless
/// the runner already holds this exact one. Cached per session.
pub(crate) async fn ensure_binary(
    session: &Session,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<RemoteBinary, RunnerError> {
    let mut shipped = session.shipped.lock().await;
    if let Some(b) = shipped.as_ref() {
        return Ok(b.clone());
    }
    let config = session.config();
    let host = config.display_target();
    let (exe, sha) = local_binary().map_err(|detail| RunnerError::Ship {
        host: host.clone(),
        detail,
    })?;
    let probe = Exec {
        label: "probe",
        script: remote::probe(config.remote_dir(), sha),
        stdin: StdinSource::Null,
        stderr_lines: None,
        timeout: config.connect_timeout() + PROBE_SLACK,
        verbose: true,
    };
    let out = session.exec(probe, cancel).await.map_err(|e| match e {
        ExecError::Run(crate::engine::supervisor::SupervisorError::TimedOut { .. }) => {
            RunnerError::Connect {
                host: host.clone(),
                detail: format!(
                    "no answer within connect_timeout ({:?}) plus {PROBE_SLACK:?}",
                    config.connect_timeout()
                ),
            }
        }
        other => map_exec_error(&host, other),
    })?;
    let text = out.stdout.unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let [platform, dir, state] = lines.as_slice() else {
        return Err(RunnerError::Protocol {
            host,
            detail: format!("unexpected probe answer {text:?}"),
        });
    };
    if *platform != expected_platform() {
        return Err(RunnerError::Platform {
            host,
            found: (*platform).to_owned(),
            expected: expected_platform(),
        });
    }
    let binary = RemoteBinary {
        dir: (*dir).to_owned(),
        sha256: sha.clone(),
    };
    if *state == "have" {
        progress.message(
            Stage::Build,
            &format!(
                "runner {host} already holds this provider binary ({})",
                &sha[..12]
            ),
        );
    } else {
        progress.message(
            Stage::Build,
            &format!(
                "shipping the provider binary ({}) to runner {host}",
                &sha[..12]
            ),
        );
        let upload = Exec {
            label: "upload",
            script: remote::upload(&binary.dir, sha),
            stdin: StdinSource::File(exe.clone()),
            stderr_lines: None,
            timeout: UPLOAD_TIMEOUT,
            verbose: false,
        };
        session
            .exec(upload, cancel)
            .await
            .map_err(|e| match map_exec_error(&host, e) {
                RunnerError::Remote { tail, .. } => RunnerError::Ship {
                    host: host.clone(),
                    detail: tail,
                },
                other => other,
            })?;
    }
    *shipped = Some(binary.clone());
    Ok(binary)
}
