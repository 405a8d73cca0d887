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
//! Environment (issue #12): every child's environment is **built from nothing** by one function,
//! [`CommandSpec::effective_env`], never inherited wholesale:
//!
//! 1. the base allow-list read from this process ([`INHERITED_ENV`], [`INHERITED_ENV_PREFIXES`]):
//!    `PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`, `LANG`, `LC_*`, `TZ`, `TERM`, `TMPDIR`, the proxy
//!    variables in either case (`http_proxy`, `https_proxy`, `no_proxy`, `all_proxy`),
//!    `SSL_CERT_FILE`, `SSL_CERT_DIR` — skipped entirely with [`CommandSpec::clear_env`];
//! 2. names the caller asks for with [`CommandSpec::inherit`] (an [`EnvName`]): this is the one
//!    typed way an internal caller hands its own child a specific variable of this process, e.g.
//!    `spec.inherit(EnvName::from_static("SSH_AUTH_SOCK"))` for `ssh`, or
//!    `EnvName::from_static("DISPLAY")` for a qemu that needs it; the operator's
//!    `build.pass_environment` reaches operator commands the same way (resolved by the engine);
//! 3. explicit values set with [`CommandSpec::env`]/[`CommandSpec::envs`] (the DESIGN §2
//!    `HYOPS_VYOS_*` contract variables, `build.environment`, tool knobs such as
//!    `CHECKPOINT_DISABLE`);
//! 4. the path of a 0600 credential file as `HYOPS_VYOS_GCS_SA_JSON_FILE`, only when set with
//!    [`CommandSpec::credential_file`] (publish commands).
//!
//! Names matching [`DENIED_ENV_PREFIXES`] (`HYOPS_VYOS_GCS_SA_JSON*`, the go-plugin handshake
//! variables) are dropped at every step except 4. Everything else the provider has — object-store
//! keys, tokens, cloud credentials — never reaches a child unless the operator names it.
//!
//! Root builds: a spec whose program is `sudo -n` passes the allowed names (never values) with
//! `--preserve-env=NAME,…` and is marked [`CommandSpec::sudo_group`]. Without a terminal (stdin
//! is `/dev/null` here) sudo runs the command in sudo's own process group, so the group signals
//! below reach it: as root directly; as a non-root user SIGTERM reaches `sudo`, which relays it to
//! the command, and the final SIGKILL is also sent with `sudo -n kill -s KILL -- -PGID` (the
//! provider cannot signal root-owned processes itself; preflight checked that `sudo -n` works).
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

pub use command::{
    env_name_denied, env_name_inherited_by_default, CommandSpec, EnvName, InvalidEnvName, Program,
    StdinSource, DENIED_ENV_PREFIXES, INHERITED_ENV, INHERITED_ENV_PREFIXES,
};
pub use error::SupervisorError;
pub use run::{run, tail_file, RunOutput, RunState};
