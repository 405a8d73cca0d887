//! Process-group signalling and reaping (Unix). The only `unsafe` of the supervisor lives here:
//! `kill(2)`, `waitpid(2)`, `geteuid(2)` and `prctl(2)` on ids this module was given. A group
//! whose members run as root under `sudo` is killed through `sudo -n kill` when this process is
//! not root ([`sudo_kill_group`]).

use std::sync::Once;
use std::time::Duration;

/// Make this process a child subreaper (Linux), once, so orphaned grandchildren of a killed
/// group are re-parented here and can be reaped by [`reap_group`].
pub(crate) fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag; no memory involved.
            let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            if rc != 0 {
                tracing::warn!(
                    error = %std::io::Error::last_os_error(),
                    "could not become child subreaper; orphaned builder processes may linger as zombies"
                );
            }
        }
    });
}

/// Send `sig` to every process of group `pgid`. Returns false when the group no longer exists.
pub(crate) fn signal_group(pgid: i32, sig: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; plain integers.
    let rc = unsafe { libc::kill(-pgid, sig) };
    rc == 0
}

/// True while any process (zombies included) is in group `pgid`, including members this
/// process may not signal (root-owned children of `sudo`: `kill` then fails with `EPERM`).
pub(crate) fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks existence and permission; plain integers.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// True when this process runs as root (and can signal any group itself).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// SIGKILL group `pgid` through `sudo -n kill` (blocking, bounded by sudo itself): for groups
/// whose members run as root when this process does not. Best effort; failures are logged.
/// The argv holds only the group id; the environment only `PATH`.
pub(crate) fn sudo_kill_group(pgid: i32) {
    if pgid <= 1 || is_root() {
        return;
    }
    let status = std::process::Command::new("sudo")
        .args(["-n", "kill", "-s", "KILL", "--", &format!("-{pgid}")])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            tracing::warn!(pgid, status = %s, "sudo kill of a root-owned process group failed")
        }
        Err(e) => {
            tracing::warn!(pgid, error = %e, "could not run sudo to kill a root-owned process group")
        }
    }
}

/// Reap zombies of group `pgid` that were re-parented to us, without blocking.
pub(crate) fn reap_zombies(pgid: i32) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on a process group we created; status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            return;
        }
    }
}

/// SIGKILL group `pgid` and wait (bounded) until no member is left, reaping orphans.
/// Returns false when members are still present after `limit` (e.g. stuck in uninterruptible I/O).
/// With `via_sudo`, members this process cannot signal are killed through [`sudo_kill_group`].
pub(crate) async fn kill_and_reap_group(pgid: i32, limit: Duration, via_sudo: bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut sudo_sent = false;
    loop {
        signal_group(pgid, libc::SIGKILL);
        if via_sudo && !sudo_sent && group_alive(pgid) {
            sudo_sent = true;
            let _ = tokio::task::spawn_blocking(move || sudo_kill_group(pgid)).await;
        }
        reap_zombies(pgid);
        if !group_alive(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the group when dropped while armed: the last defence when a run future is dropped.
pub(crate) struct GroupGuard {
    pgid: i32,
    armed: bool,
    via_sudo: bool,
}

impl GroupGuard {
    pub(crate) fn new(pgid: i32, via_sudo: bool) -> Self {
        GroupGuard {
            pgid,
            armed: true,
            via_sudo,
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pgid = self.pgid;
        let via_sudo = self.via_sudo;
        signal_group(pgid, libc::SIGKILL);
        // The run future was dropped mid-run, so nobody will await the group: collect its
        // zombies (the leader included; tokio's own reaper then finds it gone) off-thread,
        // bounded, without blocking the dropping task.
        let spawned = std::thread::Builder::new()
            .name("hyops-reaper".into())
            .spawn(move || {
                if via_sudo {
                    sudo_kill_group(pgid);
                }
                for _ in 0..500 {
                    signal_group(pgid, libc::SIGKILL);
                    reap_zombies(pgid);
                    if !group_alive(pgid) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        if spawned.is_err() {
            reap_zombies(pgid);
        }
    }
}
