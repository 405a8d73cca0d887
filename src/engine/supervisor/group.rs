//! Process-group signalling and reaping (Unix). The only `unsafe` of the supervisor lives here:
//! `kill(2)`, `waitpid(2)` and `prctl(2)` on ids this module was given.

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

/// True while any process (zombies included) is in group `pgid`.
pub(crate) fn group_alive(pgid: i32) -> bool {
    signal_group(pgid, 0)
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
pub(crate) async fn kill_and_reap_group(pgid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        signal_group(pgid, libc::SIGKILL);
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
}

impl GroupGuard {
    pub(crate) fn new(pgid: i32) -> Self {
        GroupGuard { pgid, armed: true }
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
        signal_group(pgid, libc::SIGKILL);
        // The run future was dropped mid-run, so nobody will await the group: collect its
        // zombies (the leader included; tokio's own reaper then finds it gone) off-thread,
        // bounded, without blocking the dropping task.
        let spawned = std::thread::Builder::new()
            .name("hyops-reaper".into())
            .spawn(move || {
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
