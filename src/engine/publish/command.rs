//! The `publish.command` override: a shell command that publishes one file and prints its final
//! URL alone on stdout.
//!
//! It runs through the engine's [`supervisor`](crate::engine::supervisor) (`/bin/bash -lc` in its
//! workdir, its own process group, output to a log file whose tail goes into errors, TERM then
//! KILL on cancellation) with the DESIGN §2 environment given by the caller. The GCS credential
//! reaches it only as a path to a 0600 file in a fresh 0700 directory that is removed when the
//! command ends, fails or is cancelled (or this future is dropped): `HYOPS_VYOS_GCS_SA_JSON_FILE`
//! for a service-account key, `HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE` (a short-lived access token) for
//! every other source; `HYOPS_VYOS_GCS_SA_JSON` never reaches it. Like every child it gets the
//! supervisor's allow-listed environment plus the variables the caller passes (the contract,
//! `build.environment` and the `build.pass_environment` names the operator opted into):
//! object-store keys (`AWS_*`, `AZURE_STORAGE_*`) reach it only when listed in
//! `build.pass_environment`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::PublishError;
use crate::engine::credentials::google::ENV_COMMAND_SA_JSON_FILE;
use crate::engine::credentials::GcsCredential;
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};

/// How long a cancelled command gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// One run of the publish command.
#[derive(Debug, Clone)]
pub struct PublishCommand<'a> {
    /// the shell command
    pub command: &'a str,
    /// its working directory (default: the current one)
    pub workdir: Option<&'a Path>,
    /// the DESIGN §2 environment (`HYOPS_VYOS_*`) plus the operator's variables, added to the
    /// supervisor's allow-listed base
    pub env: &'a BTreeMap<String, String>,
    /// the credential to hand over by path, if any
    pub credential: Option<&'a GcsCredential>,
    /// where its stdout/stderr are logged
    pub log_path: &'a Path,
}

/// Runs the command and returns the single URL it printed.
pub async fn run_publish_command(
    cmd: &PublishCommand<'_>,
    cancel: &CancellationToken,
) -> Result<String, PublishError> {
    // Dropped (overwritten and removed) on every return path below, and if this future is dropped.
    let secret = match cmd.credential {
        Some(c) => Some(c.command_credential().await?),
        None => None,
    };
    let mut spec = CommandSpec::bash_script(cmd.command, "publish command", cmd.log_path)
        .envs(cmd.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .capture_stdout()
        .grace(GRACE);
    if let Some(s) = &secret {
        for (k, v) in &s.env {
            spec = if k == ENV_COMMAND_SA_JSON_FILE {
                spec.credential_file(s.file.path())
            } else {
                spec.env(k, v)
            };
        }
    }
    if let Some(dir) = cmd.workdir {
        spec = spec.cwd(dir);
    }
    let result = supervisor::run(&spec, cancel).await;
    drop(secret);
    let out = result.map_err(|e| match e {
        SupervisorError::Cancelled { .. } => PublishError::Cancelled,
        other => PublishError::Command(other.to_string()),
    })?;
    parse_single_url(out.stdout.as_deref().unwrap_or(""))
}

/// Trimmed stdout must be exactly one absolute URL (http, https, gs, s3, az or file).
pub fn parse_single_url(stdout: &str) -> Result<String, PublishError> {
    let t = stdout.trim();
    if t.is_empty() {
        return Err(PublishError::Command(
            "printed nothing on stdout; it must print the final URL alone".into(),
        ));
    }
    let lines = t.lines().count();
    if lines != 1 || t.split_whitespace().count() != 1 {
        return Err(PublishError::Command(format!(
            "printed {lines} line(s) / several words on stdout; it must print exactly one URL \
             (send other output to stderr)"
        )));
    }
    let u = url::Url::parse(t).map_err(|e| {
        PublishError::Command(format!(
            "stdout is not a URL ({e}); it must print exactly one URL"
        ))
    })?;
    if !matches!(u.scheme(), "https" | "http" | "gs" | "s3" | "az" | "file") {
        return Err(PublishError::Command(format!(
            "printed a {}: URL; expected https, http, gs, s3, az or file",
            u.scheme()
        )));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_single_url;

    #[test]
    fn stdout_must_be_exactly_one_url() {
        assert_eq!(
            parse_single_url("  https://x/y.qcow2\n").unwrap(),
            "https://x/y.qcow2"
        );
        for bad in ["", "a\nb", "https://x y", "not a url", "ftp://x/y"] {
            assert!(parse_single_url(bad).is_err(), "{bad:?}");
        }
    }
}
