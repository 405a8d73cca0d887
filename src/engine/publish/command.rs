//! The `publish.command` override: a shell command that publishes one file and prints its final
//! URL alone on stdout.
//!
//! It runs via `/bin/bash -lc` in its workdir and its own process group, with the DESIGN §2
//! environment given by the caller. The GCS credential reaches it only as
//! `HYOPS_VYOS_GCS_SA_JSON_FILE`, a path to a 0600 file in a fresh 0700 directory that is removed
//! when the command ends, fails or is cancelled; `HYOPS_VYOS_GCS_SA_JSON` is removed from its
//! environment. Cancellation kills the whole group (TERM, then KILL after a grace period).
//!
//! Until the engine's `supervisor` lands this module spawns directly, with the same rules
//! (process group, kill on drop, stderr drained concurrently, tail kept for the error).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::PublishError;
use crate::engine::credentials::{GcsServiceAccount, ENV_SA_JSON, ENV_SA_JSON_FILE};

/// How long a cancelled command gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Most stdout kept (a URL is short).
const STDOUT_LIMIT: usize = 64 * 1024;
/// Stderr tail kept for the error.
const STDERR_TAIL: usize = 4 * 1024;

/// One run of the publish command.
#[derive(Debug, Clone)]
pub struct PublishCommand<'a> {
    /// the shell command
    pub command: &'a str,
    /// its working directory (default: the current one)
    pub workdir: Option<&'a Path>,
    /// the DESIGN §2 environment (`HYOPS_VYOS_*`), added to the inherited one
    pub env: &'a BTreeMap<String, String>,
    /// the credential to hand over by path, if any
    pub credential: Option<&'a GcsServiceAccount>,
}

/// Runs the command and returns the single URL it printed.
pub async fn run_publish_command(
    cmd: &PublishCommand<'_>,
    cancel: &CancellationToken,
) -> Result<String, PublishError> {
    // Dropped (file overwritten and removed) on every return path below, and if this future is
    // dropped.
    let secret = match cmd.credential {
        Some(c) => Some(c.to_scoped_file()?),
        None => None,
    };
    let mut command = Command::new("/bin/bash");
    command
        .arg("-lc")
        .arg(cmd.command)
        .env_remove(ENV_SA_JSON)
        .env_remove(ENV_SA_JSON_FILE)
        .envs(cmd.env.iter().filter(|(k, _)| k.as_str() != ENV_SA_JSON))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(s) = &secret {
        command.env(ENV_SA_JSON_FILE, s.path());
    }
    if let Some(dir) = cmd.workdir {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|e| PublishError::Command(format!("cannot start /bin/bash: {e}")))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_task = tokio::spawn(read_capped(stdout, STDOUT_LIMIT, false));
    let err_task = tokio::spawn(read_capped(stderr, STDERR_TAIL, true));
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| PublishError::Command(format!("waiting for the command: {e}")))?,
        _ = cancel.cancelled() => {
            if let Some(pid) = pid {
                kill_group(pid, &mut child).await;
            }
            drop(secret);
            return Err(PublishError::Cancelled);
        }
    };
    // The group may hold the pipes open (background grandchildren): kill it before reading on.
    if let Some(pid) = pid {
        signal_group(pid, libc::SIGKILL);
    }
    let stdout = out_task.await.unwrap_or_default();
    let stderr = err_task.await.unwrap_or_default();
    drop(secret);
    if !status.success() {
        return Err(PublishError::Command(format!(
            "exited with {status}; stderr tail:\n{}",
            String::from_utf8_lossy(&stderr).trim_end()
        )));
    }
    parse_single_url(&String::from_utf8_lossy(&stdout))
}

/// Reads all of a pipe, keeping at most `cap` bytes (the head, or the tail when `tail`).
async fn read_capped<R: AsyncRead + Unpin>(r: Option<R>, cap: usize, tail: bool) -> Vec<u8> {
    let Some(mut r) = r else { return Vec::new() };
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > cap {
                    if tail {
                        out.drain(..out.len() - cap);
                    } else {
                        out.truncate(cap + 1);
                    }
                }
            }
        }
    }
    out
}

fn signal_group(pid: u32, sig: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

async fn kill_group(pid: u32, child: &mut tokio::process::Child) {
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    } else {
        signal_group(pid, libc::SIGKILL);
    }
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

/// Where the scoped credential file lives while a command runs (for tests and diagnostics).
pub fn credential_env_name() -> &'static str {
    ENV_SA_JSON_FILE
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
