//! The sole spawner of child processes (STYLE rule 7). Everything the engine runs — builders,
//! smoke-verify and publish commands, `qemu-img`, tool probes — goes through [`run`].
//!
//! Theory of operation: a [`CommandSpec`] (built with `with_*`-style setters) says what to run.
//! [`run`] starts it in its **own process group** (`process_group(0)`), points stdout and stderr at
//! a log file (the kernel writes there directly, so a chatty child can never block on a full pipe;
//! when stdout is captured it is piped and drained by its own task), and then drives an explicit
//! [`RunState`] machine: `Running` until the leader exits, the cancellation token fires or the
//! timeout passes; then `Terminating` (SIGTERM to the whole group, grace period), `Killing`
//! (SIGKILL to the group) and `Reaped` (the leader and every orphaned group member collected).
//! A guard sends SIGKILL to the group when the future is dropped mid-run (kill on drop, the last
//! defence).
//!
//! Environment: children inherit the parent's environment minus a deny-list
//! ([`command::DENIED_ENV_PREFIXES`]): the GCS service-account variables `HYOPS_VYOS_GCS_SA_JSON*`
//! and the go-plugin handshake variables never reach a child. Object-store keys (`AWS_*` secrets,
//! `AZURE_STORAGE_*` keys) are removed too unless the spec opts in (publish commands only). The
//! one credential a child may see is the path of a 0600 file, set explicitly with
//! [`CommandSpec::credential_file`].
//!
//! Costly caveat: on Linux the first [`run`] marks this process a *child subreaper*
//! (`PR_SET_CHILD_SUBREAPER`), so grandchildren orphaned by a killed builder are re-parented here
//! and reaped by the supervisor instead of lingering as zombies under a PID 1 that may never reap
//! them. The supervisor only ever reaps by the process group it created, after the leader has been
//! collected by tokio.
//!
//! A process that calls `setsid`/`setpgid` to leave its group escapes group signals; builders do
//! not do that (packer's qemu and Ansible's children stay in the group).
//!
//! Stdin is `/dev/null` unless the spec names a file or bytes to write ([`StdinSource`]); bytes
//! are followed by a pipe held open until the run ends, and dropped first when stopping, so a
//! child that cancels on end-of-input (a remote command behind SSH) stops even before SIGTERM.
//! Stderr can additionally be streamed line by line to a channel (progress of a remote run).
//!
//! Knows nothing about VyOS, builders or publishing.

mod command;
mod error;
mod group;
mod run;

pub use command::{CommandSpec, Program, StdinSource, DENIED_ENV_PREFIXES};
pub use error::SupervisorError;
pub use run::{run, tail_file, RunOutput, RunState};
