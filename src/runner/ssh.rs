//! [`Session`]: one multiplexed OpenSSH connection to the runner, run through the supervisor.
//!
//! The system `ssh` is used so operators' `~/.ssh/config`, agents, jump hosts and hardware keys
//! keep working. Every command of a session shares one master connection: `ControlMaster=auto`,
//! `ControlPath` inside a fresh 0700 directory, `ControlPersist` bounded (the master exits that
//! long after its last command; [`Session::close`] ends it at once). Host keys are always checked
//! (`StrictHostKeyChecking=yes`, `BatchMode=yes`): a `host_key` is written to a private
//! `known_hosts` under a fixed alias, a `known_hosts_file` is used alone, otherwise ssh's own
//! files are consulted. Remote commands are POSIX `sh` scripts given as one argument (never a
//! secret in them); secrets travel only on stdin.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::{HostKeyCheck, RunnerConfig};
use super::RunnerError;
use crate::engine::supervisor::{self, CommandSpec, RunOutput, StdinSource, SupervisorError};

/// Idle lifetime of the master connection after its last command.
pub(crate) const CONTROL_PERSIST: Duration = Duration::from_secs(60);
/// Alias under which a configured `host_key` is pinned.
const HOST_KEY_ALIAS: &str = "hyops-build-runner";

/// One command to run on the runner.
pub(crate) struct Exec {
    /// short name for logs and errors
    pub(crate) label: &'static str,
    /// POSIX sh script (no secrets)
    pub(crate) script: String,
    /// what the remote command reads
    pub(crate) stdin: StdinSource,
    /// stream stderr lines here
    pub(crate) stderr_lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// local bound on the whole command
    pub(crate) timeout: Duration,
    /// ssh `-v` (the host-key fingerprint reaches the log)
    pub(crate) verbose: bool,
}

/// A connection to one runner (see the module docs).
pub struct Session {
    config: RunnerConfig,
    dir: tempfile::TempDir,
    seq: AtomicU64,
    /// the shipped binary, once probed/uploaded
    pub(crate) shipped: tokio::sync::Mutex<Option<super::ship::RemoteBinary>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("runner", &self.config.display_target())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Prepares the private control directory (no connection yet; the first command connects).
    pub(crate) fn new(config: RunnerConfig) -> Result<Session, RunnerError> {
        let local = |detail: String| RunnerError::Local {
            host: config.host.clone(),
            detail,
        };
        // short path: a unix socket path must stay under ~100 bytes
        let dir = tempfile::Builder::new()
            .prefix("hyops-ssh-")
            .tempdir_in("/tmp")
            .map_err(|e| local(format!("creating the control directory: {e}")))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| local(format!("restricting the control directory: {e}")))?;
        if let HostKeyCheck::HostKey(key) = &config.host_key {
            std::fs::write(
                dir.path().join("known_hosts"),
                format!("{HOST_KEY_ALIAS} {key}\n"),
            )
            .map_err(|e| local(format!("writing the pinned host key: {e}")))?;
        }
        Ok(Session {
            config,
            dir,
            seq: AtomicU64::new(0),
            shipped: tokio::sync::Mutex::new(None),
        })
    }

    /// The configuration this session connects with.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    fn control_path(&self) -> PathBuf {
        self.dir.path().join("cm")
    }

    /// The ssh options shared by every command (host-key policy, multiplexing, timeouts).
    fn base_args(&self) -> Vec<String> {
        let c = &self.config;
        let mut a: Vec<String> = Vec::new();
        let mut o = |opt: String| {
            a.push("-o".into());
            a.push(opt);
        };
        o("BatchMode=yes".into());
        o("StrictHostKeyChecking=yes".into());
        o("UpdateHostKeys=no".into());
        o("CheckHostIP=no".into());
        o(format!(
            "ConnectTimeout={}",
            c.connect_timeout.as_secs().max(1)
        ));
        o("ControlMaster=auto".into());
        o(format!("ControlPath={}", self.control_path().display()));
        o(format!("ControlPersist={}", CONTROL_PERSIST.as_secs()));
        o("ServerAliveInterval=15".into());
        o("ServerAliveCountMax=4".into());
        match &c.host_key {
            HostKeyCheck::UserKnownHosts => {}
            HostKeyCheck::KnownHostsFile(f) => {
                o(format!("UserKnownHostsFile={}", f.display()));
                o("GlobalKnownHostsFile=/dev/null".into());
            }
            HostKeyCheck::HostKey(_) => {
                o(format!(
                    "UserKnownHostsFile={}",
                    self.dir.path().join("known_hosts").display()
                ));
                o("GlobalKnownHostsFile=/dev/null".into());
                o(format!("HostKeyAlias={HOST_KEY_ALIAS}"));
            }
        }
        if let Some(f) = &c.identity_file {
            o(format!("IdentityFile={}", f.display()));
        }
        if let Some(j) = &c.proxy_jump {
            o(format!("ProxyJump={j}"));
        }
        a.push("-p".into());
        a.push(c.port.to_string());
        if let Some(u) = &c.user {
            a.push("-l".into());
            a.push(u.clone());
        }
        a
    }

    fn spec(&self, e: &Exec) -> CommandSpec {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.path().join(format!("{n:03}-{}.log", e.label));
        let mut spec = CommandSpec::program("ssh", log)
            .args(self.base_args())
            .capture_stdout()
            .timeout(e.timeout)
            .grace(Duration::from_secs(5))
            .stdin(e.stdin.clone());
        // the agent socket must survive any allow-listing of the child environment
        for var in ["SSH_AUTH_SOCK", "SSH_AGENT_PID"] {
            if let Ok(v) = std::env::var(var) {
                spec = spec.env(var, v);
            }
        }
        if e.verbose {
            spec = spec.arg("-v");
        }
        if let Some(tx) = &e.stderr_lines {
            spec = spec.stderr_lines(tx.clone());
        }
        // `sh -c` on the runner whatever the login shell is; the script is one quoted word
        spec.arg("-T")
            .arg(&self.config.host)
            .arg("--")
            .arg(format!("sh -c {}", super::remote::quote(&e.script)))
    }

    /// Runs one command; ssh-level failures (exit 255) become host-key / connect errors.
    pub(crate) async fn exec(
        &self,
        e: Exec,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, ExecError> {
        let spec = self.spec(&e);
        match supervisor::run(&spec, cancel).await {
            Ok(out) => Ok(out),
            Err(SupervisorError::Exited {
                code: Some(255),
                log,
                tail,
                ..
            }) => Err(ExecError::Runner(self.classify_ssh_failure(&log, &tail))),
            Err(err) => Err(ExecError::Run(err)),
        }
    }

    fn classify_ssh_failure(&self, log: &std::path::Path, tail: &str) -> RunnerError {
        let host = self.config.display_target();
        let full = std::fs::read_to_string(log).unwrap_or_else(|_| tail.to_owned());
        let plain: Vec<&str> = full
            .lines()
            .filter(|l| !l.starts_with("debug") && !l.trim().is_empty())
            .collect();
        if full.contains("Host key verification failed")
            || full.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        {
            return RunnerError::HostKey {
                host,
                fingerprint: presented_fingerprint(&full).unwrap_or_else(|| "unknown".into()),
                detail: plain
                    .iter()
                    .find(|l| l.contains("host key is known") || l.contains("HAS CHANGED"))
                    .or(plain.iter().find(|l| l.contains("verification failed")))
                    .map(|l| {
                        l.trim_matches(|c: char| c == '@' || c.is_whitespace())
                            .to_owned()
                    })
                    .unwrap_or_else(|| "host key verification failed".into()),
            };
        }
        let from = plain.len().saturating_sub(5);
        RunnerError::Connect {
            host,
            detail: plain[from..].join("; "),
        }
    }

    /// Ends the master connection now (best effort) and removes the control directory.
    pub async fn close(self) {
        let log = self.dir.path().join("exit.log");
        let spec = CommandSpec::program("ssh", log)
            .args(self.base_args())
            .args(["-O", "exit"])
            .arg(&self.config.host)
            .timeout(Duration::from_secs(10));
        if self.control_path().exists() {
            let _ = supervisor::run(&spec, &CancellationToken::new()).await;
        }
    }
}

/// A command's failure: ssh itself (connect, host key) or the remote command / supervision.
#[derive(Debug)]
pub(crate) enum ExecError {
    Runner(RunnerError),
    Run(SupervisorError),
}

/// The fingerprint ssh reports for the key the server presented (`-v` or the changed-key banner).
fn presented_fingerprint(log: &str) -> Option<String> {
    for line in log.lines() {
        if let Some(rest) = line.split("Server host key: ").nth(1) {
            if let Some(fp) = rest.split_whitespace().find(|w| w.starts_with("SHA256:")) {
                return Some(fp.to_owned());
            }
        }
    }
    log.lines()
        .map(str::trim)
        .find(|l| l.starts_with("SHA256:"))
        .map(|l| l.trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_read_from_verbose_and_changed_key_output() {
        let v =
            "debug1: Server host key: ssh-ed25519 SHA256:abcDEF123\nHost key verification failed.";
        assert_eq!(
            presented_fingerprint(v).as_deref(),
            Some("SHA256:abcDEF123")
        );
        let changed =
            "The fingerprint for the ED25519 key sent by the remote host is\nSHA256:xyz.\n";
        assert_eq!(
            presented_fingerprint(changed).as_deref(),
            Some("SHA256:xyz")
        );
    }
}
