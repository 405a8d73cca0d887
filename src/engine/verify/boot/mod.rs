//! The boot check: boot the artifact under QEMU and prove it is a working, template-safe cloud
//! image — the console reaches what `expect` asks for (a login prompt by default on a serial
//! console), the QEMU guest agent answers `guest-ping` and `guest-info`, and cloud-init consumed
//! a fresh NoCloud seed (it reports the seed's instance-id through the agent, or prints the
//! seed's `final_message` on the serial console). A `fail_on` match on the console fails at
//! once; otherwise the check gives up at `timeout`.
//!
//! The VM runs through the supervisor like every child: its own process group, SIGTERM then
//! SIGKILL, reaped; a cancelled create (Terraform `Stop`, `timeouts.create`, Ctrl-C in the CLI)
//! cancels the token and the VM dies with it. `-snapshot` keeps the artifact unchanged. The serial
//! console goes to `<cache>/logs/<build_id>.console.log`; its tail is in every failure.
//!
//! Under KVM a console that stays silent for [`KVM_SILENCE_GRACE`] before anything was proven is
//! reported as "the KVM accelerator looks unusable here" (naming `accelerator = "tcg"`), not as a
//! broken image: on some hosts `/dev/kvm` opens but guests hang right after the bootloader.
//!
//! Files: `settings` (defaults), `qemu` (command line, accelerator), `seed` (NoCloud seed),
//! `console` (console watcher), `qga` (guest agent client), `agent` (the agent task), this one
//! (the run).
//! Knows nothing about stores, publishing or Terraform.

mod agent;
mod console;
mod qemu;
mod qga;
mod seed;
mod settings;

pub use console::ConsoleWatcher;
pub use qemu::{choose_accelerator, qemu_argv, AcceleratorError, QemuArgs, QEMU_SYSTEM};
pub use qga::{Qga, QgaError};
pub use seed::{user_data, write_seed, Seed, FINAL_MESSAGE_PREFIX, MARKER_PATH};
pub use settings::{
    BootSettings, BootSettingsError, DEFAULT_BOOT_TIMEOUT, DEFAULT_FAIL_ON, DEFAULT_MEMORY_MB,
    LOGIN_PROMPT,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::build::Accelerator;
use crate::engine::contract::BootVerification;
use crate::engine::preflight::SystemProbes;
use crate::engine::spec::BootAccelerator;
use crate::engine::supervisor::{self, tail_file, CommandSpec, SupervisorError};
use agent::{agent_task, AgentState};

/// Under KVM, this much console silence before anything was proven means KVM is unusable.
pub const KVM_SILENCE_GRACE: Duration = Duration::from_secs(30);
/// How often the console is read.
const POLL: Duration = Duration::from_millis(200);
/// Each guest agent command waits this long.
pub(super) const QGA_COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Grace between SIGTERM and SIGKILL for the VM.
const VM_GRACE: Duration = Duration::from_secs(3);

/// One boot check.
#[derive(Debug, Clone)]
pub struct BootRequest<'a> {
    /// the artifact
    pub image: &'a Path,
    /// `qcow2` or `raw` (from `qemu-img info`)
    pub format: &'a str,
    /// resolved settings
    pub settings: &'a BootSettings,
    /// a private directory for the seed (created inside)
    pub work_dir: &'a Path,
    /// the serial console log (truncated first)
    pub console_log: &'a Path,
    /// QEMU's own output (appended)
    pub qemu_log: &'a Path,
}

/// The boot check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// the image booted badly or not at all; `report` says how far it got
    #[error("{reason}; serial console log {console_log}; last console lines:\n{tail}")]
    Failed {
        /// why
        reason: String,
        /// the console log file
        console_log: PathBuf,
        /// its last lines
        tail: String,
        /// what was seen (for the contract under `required = false`)
        report: Box<BootVerification>,
        /// the failure is KVM's console silence, not the image
        kvm_unusable: bool,
    },
    /// no accelerator can be used
    #[error("{0}")]
    Accelerator(#[from] AcceleratorError),
    /// the seed or the socket directory could not be written
    #[error("boot verification setup: {context}: {source}")]
    Setup {
        /// what was being done
        context: String,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
    /// QEMU could not run, or the run was cancelled
    #[error(transparent)]
    Process(#[from] SupervisorError),
}

impl BootError {
    /// True when the boot stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BootError::Process(e) if e.is_cancelled())
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

fn private_tempdir() -> Result<tempfile::TempDir, BootError> {
    // Unix socket paths are limited to 108 bytes: keep the socket under the temp dir, not the
    // (possibly deep) cache directory.
    tempfile::Builder::new()
        .prefix("hyops-boot-")
        .tempdir()
        .map_err(|source| BootError::Setup {
            context: "creating a private socket directory".to_owned(),
            source,
        })
}

/// Boot `req.image` and check it. Cancelling `cancel` kills the VM (its whole process group).
/// On success, also a warning when `auto` fell back to TCG.
///
/// With `accelerator = "auto"` and `allow_tcg`, a KVM boot whose console stays silent (see
/// [`KVM_SILENCE_GRACE`]) is retried once under TCG, with a warning: "KVM when usable" is decided
/// by what the guest does, not only by `/dev/kvm` opening.
pub async fn boot_verify(
    req: &BootRequest<'_>,
    cancel: &CancellationToken,
) -> Result<(BootVerification, Option<String>), BootError> {
    let s = req.settings;
    let (accelerator, warning) = choose_accelerator(&SystemProbes, s.accelerator, s.allow_tcg)?;
    match boot_once(req, accelerator, cancel).await {
        Err(BootError::Failed {
            kvm_unusable: true,
            reason,
            ..
        }) if s.accelerator == BootAccelerator::Auto && s.allow_tcg => {
            tracing::warn!("{reason}; retrying under TCG (allow_tcg)");
            let (report, _) = boot_once(req, Accelerator::Tcg, cancel).await?;
            Ok((
                report,
                Some(format!(
                    "{reason}. Retried under TCG because allow_tcg is set, and that boot passed."
                )),
            ))
        }
        Ok((report, _)) => Ok((report, warning)),
        Err(e) => Err(e),
    }
}

async fn boot_once(
    req: &BootRequest<'_>,
    accelerator: Accelerator,
    cancel: &CancellationToken,
) -> Result<(BootVerification, Option<String>), BootError> {
    let s = req.settings;
    let warning = None;
    let setup = |context: &str| {
        let context = context.to_owned();
        move |source| BootError::Setup { context, source }
    };
    let seed = if s.cloud_init {
        Some(write_seed(req.work_dir).map_err(setup("writing the NoCloud seed"))?)
    } else {
        None
    };
    let sock_dir = private_tempdir()?;
    let socket = sock_dir.path().join("qga.sock");
    std::fs::write(req.console_log, b"").map_err(setup("creating the console log"))?;

    let argv = qemu_argv(&QemuArgs {
        image: req.image,
        format: req.format,
        seed_dir: seed.as_ref().map(|s| s.dir.as_path()),
        console_log: req.console_log,
        qga_socket: s.guest_agent.then_some(socket.as_path()),
        memory_mb: s.memory_mb,
        accelerator,
    });
    let spec = CommandSpec::program(QEMU_SYSTEM, req.qemu_log)
        .args(argv)
        .grace(VM_GRACE);
    let vm_cancel = cancel.child_token();
    let started = Instant::now();
    tracing::info!(
        image = %req.image.display(),
        accelerator = accelerator.as_str(),
        console = %req.console_log.display(),
        "boot verification started"
    );
    let vm = supervisor::run(&spec, &vm_cancel);
    tokio::pin!(vm);

    let instance_id = seed
        .as_ref()
        .map(|s| s.instance_id.clone())
        .unwrap_or_default();
    let (tx, rx) = watch::channel(AgentState::default());
    let agent = s.guest_agent.then(|| {
        tokio::spawn(agent_task(
            socket.clone(),
            instance_id.clone(),
            s.cloud_init,
            started,
            tx,
        ))
    });
    let console_proof = format!("{FINAL_MESSAGE_PREFIX} {instance_id}");
    let mut watcher = ConsoleWatcher::new(req.console_log, s.expect.len());
    let mut console_cloud_init: Option<Duration> = None;
    let deadline = started + s.timeout;

    let mut exited: Option<Result<supervisor::RunOutput, SupervisorError>> = None;
    let mut kvm_unusable = false;
    let verdict: Result<(), String> = loop {
        tokio::select! {
            r = &mut vm => { exited = Some(r); }
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = started.elapsed();
        if let Err(e) = watcher.poll(now) {
            break Err(format!("cannot read the console log: {e}"));
        }
        watcher.check_expect(&s.expect, now);
        if s.cloud_init && console_cloud_init.is_none() && watcher.contains(&console_proof) {
            console_cloud_init = Some(now);
        }
        if let Some((pattern, line)) = watcher.failed(&s.fail_on) {
            break Err(format!(
                "the console matched fail_on pattern `{pattern}`: {line:?}"
            ));
        }
        let agent_state = rx.borrow().clone();
        let login_ok = watcher.all_expected().is_some();
        let agent_ok = !s.guest_agent || agent_state.agent.is_some();
        let cloud_ok =
            !s.cloud_init || agent_state.cloud_init.is_some() || console_cloud_init.is_some();
        if login_ok && agent_ok && cloud_ok {
            break Ok(());
        }
        if let Some(r) = &exited {
            if cancel.is_cancelled() {
                break Err("cancelled".to_owned());
            }
            let how = match r {
                Ok(out) => format!("{}", out.status),
                Err(e) => e.to_string(),
            };
            break Err(format!(
                "qemu stopped before the boot was verified ({how}); qemu output: {}",
                tail_file(req.qemu_log, 10)
            ));
        }
        let nothing_proven = watcher.expect_seen.iter().all(Option::is_none)
            && agent_state.agent.is_none()
            && console_cloud_init.is_none();
        let silent_for = now.saturating_sub(watcher.last_growth.unwrap_or_default());
        if accelerator == Accelerator::Kvm && nothing_proven && silent_for >= KVM_SILENCE_GRACE {
            kvm_unusable = true;
            break Err(format!(
                "the KVM accelerator looks unusable here: the console printed nothing for {}s \
                 and nothing was proven (on some hosts guests hang under KVM right after the \
                 bootloader); set smoke_verify.boot.accelerator = \"tcg\" to verify with software \
                 emulation",
                silent_for.as_secs()
            ));
        }
        if Instant::now() >= deadline {
            let mut missing = Vec::new();
            for (i, re) in s.expect.iter().enumerate() {
                if watcher.expect_seen[i].is_none() {
                    missing.push(format!("console never matched expect `{}`", re.as_str()));
                }
            }
            if !agent_ok {
                missing.push(format!(
                    "the guest agent never answered on org.qemu.guest_agent.0 ({})",
                    agent_state.last_problem.as_deref().unwrap_or("no answer")
                ));
            }
            if !cloud_ok {
                missing.push(format!(
                    "cloud-init never reported the seed's instance-id {instance_id}{}",
                    if s.guest_agent {
                        agent_state
                            .last_problem
                            .as_deref()
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default()
                    } else {
                        String::new()
                    }
                ));
            }
            break Err(format!(
                "boot not verified within {}s: {}",
                s.timeout.as_secs(),
                missing.join("; ")
            ));
        }
    };
    let total = started.elapsed();
    if let Some(task) = agent {
        task.abort();
    }
    // Stop the VM (TERM, grace, KILL, reap) unless it already ended.
    vm_cancel.cancel();
    let vm_result = match exited {
        Some(r) => r,
        None => vm.await,
    };
    drop(sock_dir);
    if cancel.is_cancelled() {
        return Err(BootError::Process(SupervisorError::Cancelled {
            label: QEMU_SYSTEM.to_owned(),
            log: req.qemu_log.to_owned(),
        }));
    }
    if let Err(e @ SupervisorError::Spawn { .. }) = vm_result {
        return Err(e.into());
    }
    let _ = watcher.poll(total);
    let agent_state = rx.borrow().clone();
    let mut report = BootVerification {
        passed: verdict.is_ok(),
        accelerator: accelerator.as_str().to_owned(),
        seconds_to_login: watcher
            .all_expected()
            .filter(|_| !s.expect.is_empty())
            .map(secs),
        seconds_to_agent: agent_state.agent.as_ref().map(|(t, _)| secs(*t)),
        seconds_to_cloud_init: agent_state.cloud_init.or(console_cloud_init).map(secs),
        seconds_total: secs(total),
        guest_agent_version: agent_state.agent.as_ref().map(|(_, v)| v.clone()),
        cloud_init_instance_id: None,
        cloud_init_user_data: None,
        cloud_init_source: None,
        expect: s
            .expect
            .iter()
            .zip(&watcher.expect_seen)
            .filter(|(_, t)| t.is_some())
            .map(|(re, _)| re.as_str().to_owned())
            .collect(),
        failure: None,
    };
    if agent_state.cloud_init.is_some() {
        report.cloud_init_instance_id = Some(instance_id.clone());
        report.cloud_init_source = Some("guest_agent".to_owned());
        report.cloud_init_user_data = agent_state.user_data.or(console_cloud_init.map(|_| true));
    } else if console_cloud_init.is_some() {
        report.cloud_init_instance_id = Some(instance_id.clone());
        report.cloud_init_source = Some("serial-console".to_owned());
        report.cloud_init_user_data = Some(true);
    }
    match verdict {
        Ok(()) => {
            tracing::info!(seconds = report.seconds_total, "boot verification passed");
            Ok((report, warning))
        }
        Err(reason) => {
            report.failure = Some(reason.clone());
            Err(BootError::Failed {
                reason,
                console_log: req.console_log.to_owned(),
                tail: watcher.tail(),
                report: Box::new(report),
                kvm_unusable,
            })
        }
    }
}
