//! Running one [`CommandSpec`]: spawn in a fresh process group, log to a file, drive the
//! [`RunState`] machine to completion, map the outcome to [`RunOutput`] or [`SupervisorError`].

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::{CommandSpec, StdinSource};
use super::error::SupervisorError;
use super::group::{self, GroupGuard};

/// Lines of log carried in errors.
const TAIL_LINES: usize = 40;
/// Captured stdout is cut at this many bytes (the log keeps everything).
const STDOUT_CAP: usize = 1 << 20;
/// How long to wait for a killed group to disappear.
const REAP_LIMIT: Duration = Duration::from_secs(10);
/// How often the group is polled while terminating.
const POLL: Duration = Duration::from_millis(25);

/// The lifecycle of one supervised run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// the leader is running; waiting for exit, cancel or timeout
    Running,
    /// SIGTERM sent to the group; waiting up to the grace period
    Terminating,
    /// SIGKILL sent to the group; reaping
    Killing,
    /// the leader and every group member are gone
    Reaped,
}

/// Why the run is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled,
    TimedOut,
}

/// A successful run.
#[derive(Debug)]
pub struct RunOutput {
    /// the leader's exit status (success)
    pub status: ExitStatus,
    /// captured stdout when [`CommandSpec::capture_stdout`] was set
    pub stdout: Option<String>,
    /// the log file
    pub log: PathBuf,
}

/// Run `spec` to completion. Cancelling `cancel` (or the spec's timeout passing) terminates the
/// whole process group: SIGTERM, the grace period, SIGKILL, reap. Only a zero exit is `Ok`.
pub async fn run(
    spec: &CommandSpec,
    cancel: &CancellationToken,
) -> Result<RunOutput, SupervisorError> {
    group::become_subreaper();
    let label = spec.label.clone();
    let log = open_log(&spec.log_path).map_err(|source| SupervisorError::Log {
        label: label.clone(),
        path: spec.log_path.clone(),
        source,
    })?;
    let log_err = log.try_clone().map_err(|source| SupervisorError::Log {
        label: label.clone(),
        path: spec.log_path.clone(),
        source,
    })?;

    let argv = spec.argv();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(spec.effective_env())
        .process_group(0)
        .kill_on_drop(true);
    match &spec.stdin {
        StdinSource::Null => {
            cmd.stdin(Stdio::null());
        }
        StdinSource::File(path) => {
            let file = std::fs::File::open(path).map_err(|source| SupervisorError::Spawn {
                label: label.clone(),
                source: std::io::Error::new(
                    source.kind(),
                    format!("stdin file {}: {source}", path.display()),
                ),
            })?;
            cmd.stdin(Stdio::from(file));
        }
        StdinSource::Held(_) => {
            cmd.stdin(Stdio::piped());
        }
    }
    if spec.stderr_lines.is_some() {
        cmd.stderr(Stdio::piped());
    } else {
        cmd.stderr(Stdio::from(log_err.try_clone().map_err(|source| {
            SupervisorError::Log {
                label: label.clone(),
                path: spec.log_path.clone(),
                source,
            }
        })?));
    }
    if spec.capture_stdout {
        cmd.stdout(Stdio::piped());
    } else {
        let log_out = log.try_clone().map_err(|source| SupervisorError::Log {
            label: label.clone(),
            path: spec.log_path.clone(),
            source,
        })?;
        cmd.stdout(Stdio::from(log_out));
    }
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    if cancel.is_cancelled() {
        return Err(SupervisorError::Cancelled {
            label,
            log: spec.log_path.clone(),
        });
    }
    let mut child = cmd.spawn().map_err(|source| SupervisorError::Spawn {
        label: label.clone(),
        source,
    })?;
    let pgid = match child.id() {
        Some(pid) => pid as i32,
        None => {
            return Err(SupervisorError::Wait {
                label,
                source: std::io::Error::other("child exited before its pid was read"),
            })
        }
    };
    let mut guard = GroupGuard::new(pgid, spec.sudo_group);
    tracing::debug!(command = %label, pgid, log = %spec.log_path.display(), "started");

    let drain = child.stdout.take().map(|out| {
        let log = tokio::fs::File::from_std(log);
        tokio::spawn(drain_stdout(out, log))
    });
    let err_drain = match (child.stderr.take(), &spec.stderr_lines) {
        (Some(err), Some(lines)) => Some(tokio::spawn(drain_stderr_lines(
            err,
            tokio::fs::File::from_std(log_err),
            lines.clone(),
        ))),
        _ => None,
    };
    // Held stdin: write the bytes, keep the pipe open until `stdin_done` (closed first on stop).
    let stdin_done = CancellationToken::new();
    let _stdin_closer = stdin_done.clone().drop_guard();
    if let (Some(mut pipe), StdinSource::Held(bytes)) = (child.stdin.take(), &spec.stdin) {
        let bytes = bytes.clone();
        let done = stdin_done.clone();
        tokio::spawn(async move {
            if pipe
                .write_all(bytes.expose_secret().as_bytes())
                .await
                .is_ok()
            {
                let _ = pipe.flush().await;
                done.cancelled().await;
            }
            drop(pipe);
        });
    }

    let started = Instant::now();
    let deadline = spec.timeout.map(|t| started + t);
    let mut state = RunState::Running;
    let mut leader: Option<ExitStatus> = None;
    let mut reason: Option<StopReason> = None;
    let mut grace_end = started;
    let mut term_sent = false;

    while state != RunState::Reaped {
        state = match state {
            RunState::Running => {
                tokio::select! {
                    st = child.wait() => {
                        leader = Some(st.map_err(|source| SupervisorError::Wait { label: label.clone(), source })?);
                        RunState::Killing
                    }
                    _ = cancel.cancelled() => {
                        reason = Some(StopReason::Cancelled);
                        RunState::Terminating
                    }
                    _ = sleep_until_opt(deadline) => {
                        reason = Some(StopReason::TimedOut);
                        RunState::Terminating
                    }
                }
            }
            RunState::Terminating => {
                if !term_sent {
                    stdin_done.cancel();
                    tracing::info!(command = %label, pgid, reason = ?reason, "terminating process group");
                    group::signal_group(pgid, libc::SIGTERM);
                    grace_end = Instant::now() + spec.grace;
                    term_sent = true;
                }
                if leader.is_none() {
                    tokio::select! {
                        st = child.wait() => {
                            leader = Some(st.map_err(|source| SupervisorError::Wait { label: label.clone(), source })?);
                        }
                        _ = tokio::time::sleep(POLL) => {}
                    }
                } else {
                    tokio::time::sleep(POLL).await;
                }
                if leader.is_some() {
                    // Only after tokio collected the leader: reap orphaned members ourselves.
                    group::reap_zombies(pgid);
                }
                if leader.is_some() && !group::group_alive(pgid) {
                    RunState::Reaped
                } else if Instant::now() >= grace_end {
                    RunState::Killing
                } else {
                    RunState::Terminating
                }
            }
            RunState::Killing => {
                group::signal_group(pgid, libc::SIGKILL);
                if leader.is_none() {
                    leader = Some(child.wait().await.map_err(|source| SupervisorError::Wait {
                        label: label.clone(),
                        source,
                    })?);
                }
                if group::group_alive(pgid) && reason.is_none() {
                    tracing::warn!(command = %label, pgid, "killing processes left behind by the command");
                }
                if !group::kill_and_reap_group(pgid, REAP_LIMIT, spec.sudo_group).await {
                    tracing::warn!(command = %label, pgid, "process group still present after SIGKILL");
                }
                RunState::Reaped
            }
            RunState::Reaped => RunState::Reaped,
        };
    }
    guard.disarm();
    stdin_done.cancel();
    if let Some(mut task) = err_drain {
        // a grandchild that escaped the group may still hold the pipe: bounded wait
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
            tracing::debug!(command = %label, "stderr still held open after exit; stopped reading");
        }
    }

    let stdout = match drain {
        Some(task) => Some(task.await.unwrap_or_default()),
        None => None,
    };
    let log_path = spec.log_path.clone();
    match reason {
        Some(StopReason::Cancelled) => Err(SupervisorError::Cancelled {
            label,
            log: log_path,
        }),
        Some(StopReason::TimedOut) => Err(SupervisorError::TimedOut {
            label,
            after: spec.timeout.unwrap_or_default(),
            tail: tail_file(&log_path, TAIL_LINES),
            log: log_path,
        }),
        None => {
            let status = leader.ok_or_else(|| SupervisorError::Wait {
                label: label.clone(),
                source: std::io::Error::other("no exit status"),
            })?;
            if status.success() {
                tracing::debug!(command = %label, "exited successfully");
                Ok(RunOutput {
                    status,
                    stdout,
                    log: log_path,
                })
            } else {
                Err(SupervisorError::Exited {
                    label,
                    status: status.to_string(),
                    code: status.code(),
                    tail: tail_file(&log_path, TAIL_LINES),
                    log: log_path,
                })
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Copy the child's stdout into the log and keep (up to a cap) what it printed.
async fn drain_stdout(mut out: tokio::process::ChildStdout, mut log: tokio::fs::File) -> String {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match out.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = log.write_all(&buf[..n]).await;
                let room = STDOUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    let _ = log.flush().await;
    String::from_utf8_lossy(&kept).into_owned()
}

/// Copy the child's stderr into the log and send each line (lossy UTF-8, no newline) to `lines`.
async fn drain_stderr_lines(
    err: tokio::process::ChildStderr,
    mut log: tokio::fs::File,
    lines: tokio::sync::mpsc::UnboundedSender<String>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = log.write_all(&line).await;
                let text = String::from_utf8_lossy(&line);
                let _ = lines.send(text.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
    }
    let _ = log.flush().await;
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB); empty when unreadable.
pub fn tail_file(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(WINDOW);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}
