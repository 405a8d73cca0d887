//! Builds on a dedicated runner over SSH: the plan stays where Terraform runs, the build runs on a
//! Linux host with KVM, sudo and disk (the provider's `build_runner` block, or
//! `HYOPS_VYOS_BUILD_RUNNER_*` for the operator CLI).
//!
//! What it owns: the connection ([`Session`]: the system OpenSSH client through the supervisor,
//! one multiplexed connection, host keys always checked), shipping **this very binary**
//! (`std::env::current_exe`) to `<remote_dir>/bin/<sha256>/` once per version, verified by
//! sha256 on the runner, and running the operator CLI there (`image apply --config -
//! --hold-stdin`) with the [`job`] frame on stdin. Progress lines on the remote stderr stream
//! back through the caller's [`Progress`]; the contract JSON comes back on stdout. The ISO
//! download and cache, preflight, build and publish all happen on the runner; the artifact is
//! never copied back.
//!
//! Credentials: the GCS service-account JSON travels only inside the SSH channel's stdin; the
//! remote CLI writes it to a 0600 file in a 0700 directory under `remote_dir` and removes it when
//! the build ends. It is never in a remote argv, environment, shell history or log.
//!
//! Cancel: the job frame is followed by a stdin held open; the remote CLI cancels on
//! end-of-input. Stop / Ctrl-C / `timeouts.create` make the supervisor close that stdin and
//! terminate the local ssh, which closes the channel; the remote CLI then kills its builder's
//! process group. Closing the channel alone is enough (a lost laptop link stops the build too).
//!
//! Must not know: Terraform, cty, gRPC (the provider maps [`RunnerError`] onto diagnostics), or
//! how anything is built or published (that is the remote engine's business; this module only
//! carries a spec there and a contract back). Sits beside `cli/`, above `engine/`.
//!
//! Costly caveats: the runner must be the same OS and CPU architecture as this binary (checked,
//! refused with a clear error); it needs `sh`, `sha256sum` and the build tools. A killed provider
//! leaves the master connection alive for at most [`ssh::CONTROL_PERSIST`] idle time.

mod config;
mod error;
pub mod job;
mod remote;
mod ship;
mod ssh;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{
    HostKeyCheck, RunnerConfig, RunnerConfigBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REMOTE_DIR,
    ENV_CONNECT_TIMEOUT, ENV_HOST, ENV_HOST_KEY, ENV_IDENTITY_FILE, ENV_KNOWN_HOSTS_FILE, ENV_PORT,
    ENV_PROXY_JUMP, ENV_REMOTE_DIR, ENV_USER,
};
pub use error::RunnerError;
pub use ssh::Session;

use crate::engine::contract::ArtifactContract;
use crate::engine::create::DEFAULT_CREATE_TIMEOUT;
use crate::engine::credentials::{SecretString, ENV_SA_JSON, ENV_SA_JSON_FILE};
use crate::engine::duration::parse_go_duration;
use crate::engine::env::EngineEnv;
use crate::engine::progress::{Progress, Stage};
use crate::engine::publish::PublishTarget;
use crate::engine::spec::{ImageSpec, ProviderSettings};
use crate::engine::supervisor::{StdinSource, SupervisorError};
use job::Job;
use ssh::{Exec, ExecError};

/// Slack on top of `timeouts.create` for the local bound (the runner enforces the real one).
const CREATE_SLACK: Duration = Duration::from_secs(300);
/// Bound on a refresh check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// A build done on the runner.
#[derive(Debug, Clone)]
pub struct RemoteBuild {
    /// the contract (its `build_host` names the runner)
    pub contract: ArtifactContract,
    /// warnings the remote CLI printed
    pub warnings: Vec<String>,
}

impl Session {
    /// A session for `config` (no connection until the first command).
    pub fn open(config: RunnerConfig) -> Result<Session, RunnerError> {
        Session::new(config)
    }
}

/// Builds (and publishes) `spec` on the runner of `session`. `settings` are this side's provider
/// settings: endpoints and the credential are carried over; local paths (`cache_dir`,
/// `runtime_root`) are not; a `repo_state_ref` is resolved here and a `hyops_state_instance` is
/// written here, both under the local `runtime_root`.
pub async fn create(
    session: &Session,
    spec: &ImageSpec,
    settings: &ProviderSettings,
    cancel: CancellationToken,
    progress: &dyn Progress,
) -> Result<RemoteBuild, RunnerError> {
    let host = session.config().display_target();
    let local_env = EngineEnv::from_env().with_provider_settings(settings);
    let (job, state_instance) = make_job(spec, settings, &local_env, &host)?;
    let binary = ship::ensure_binary(session, &cancel, progress).await?;
    let timeout = match &spec.timeouts.create {
        Some(t) => parse_go_duration(t).unwrap_or(DEFAULT_CREATE_TIMEOUT),
        None => DEFAULT_CREATE_TIMEOUT,
    } + CREATE_SLACK;
    let frame = job.encode().map_err(|e| RunnerError::Local {
        host: host.clone(),
        detail: format!("encoding the job: {e}"),
    })?;
    drop(job);
    progress.message(
        Stage::Build,
        &format!("building on runner {host} ({})", binary.dir),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let exec = Exec {
        label: "apply",
        script: remote::apply(&binary.dir, &binary.sha256),
        stdin: StdinSource::Held(frame),
        stderr_lines: Some(tx),
        timeout,
        verbose: false,
    };
    let mut warnings = Vec::new();
    let run = session.exec(exec, &cancel);
    let forward = async {
        while let Some(line) = rx.recv().await {
            forward_line(&host, &line, progress, &mut warnings);
        }
    };
    let (result, ()) = tokio::join!(run, forward);
    let out = result.map_err(|e| map_exec_error(&host, e))?;
    let text = out.stdout.unwrap_or_default();
    let mut contract: ArtifactContract =
        serde_json::from_str(text.trim()).map_err(|e| RunnerError::Protocol {
            host: host.clone(),
            detail: format!("stdout is not an artifact contract ({e})"),
        })?;
    contract.build_host = host.clone();
    if let Some(instance) = state_instance {
        let path = crate::engine::hyops_state::write_instance_state(
            local_env.runtime_root(),
            &instance,
            &contract,
        )
        .map_err(|e| RunnerError::Local {
            host: host.clone(),
            detail: format!("writing the HyOps state of {instance}: {e}"),
        })?;
        progress.message(
            Stage::Publish,
            &format!("HyOps state written to {}", path.display()),
        );
    }
    Ok(RemoteBuild { contract, warnings })
}

/// Size of the runner-local file `path` (refresh of an unpublished runner build); `None`: gone.
pub async fn artifact_size(
    session: &Session,
    path: &str,
    cancel: &CancellationToken,
) -> Result<Option<u64>, RunnerError> {
    let host = session.config().display_target();
    let exec = Exec {
        label: "check",
        script: remote::size_of(path),
        stdin: StdinSource::Null,
        stderr_lines: None,
        timeout: CHECK_TIMEOUT,
        verbose: false,
    };
    let out = session
        .exec(exec, cancel)
        .await
        .map_err(|e| map_exec_error(&host, e))?;
    let text = out.stdout.unwrap_or_default();
    let text = text.trim();
    if text == "gone" {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| RunnerError::Protocol {
            host,
            detail: format!("size check answered {text:?}"),
        })
}

/// The job for `spec` plus the HyOps state instance to write locally afterwards.
fn make_job(
    spec: &ImageSpec,
    settings: &ProviderSettings,
    local_env: &EngineEnv,
    host: &str,
) -> Result<(Job, Option<String>), RunnerError> {
    let mut remote_spec = spec.clone();
    let state_instance = remote_spec.hyops_state_instance.take();
    let mut remote_settings = ProviderSettings {
        gcs_endpoint: settings
            .gcs_endpoint
            .clone()
            .or_else(|| local_env.store_settings().gcs_endpoint.clone()),
        s3_endpoint: settings.s3_endpoint.clone(),
        s3_region: settings.s3_region.clone(),
        azure_storage_account: settings.azure_storage_account.clone(),
        max_parallel_builds: settings.max_parallel_builds,
        ..ProviderSettings::default()
    };
    let mut gcs_credentials = None;
    if let Some(publish) = remote_spec.publish.as_mut() {
        if publish.repo_state_ref.is_some() {
            // resolved here: the HyOps runtime root is on this machine, not on the runner
            let target = PublishTarget::resolve(
                publish,
                local_env.store_settings(),
                Some(local_env.runtime_root()),
            )
            .map_err(|e| RunnerError::Config {
                field: "publish",
                message: e.to_string(),
            })?;
            publish.repo_state_ref = None;
            publish.backend = Some(target.backend);
            publish.bucket = Some(target.bucket.clone());
            if remote_settings.azure_storage_account.is_none() {
                remote_settings.azure_storage_account = target.azure_account.clone();
            }
        }
        gcs_credentials = credential_text(settings, host)?;
    }
    remote_spec.provider = Some(remote_settings);
    Ok((
        Job {
            spec: remote_spec,
            gcs_credentials,
        },
        state_instance,
    ))
}

/// The GCS credential as configured on this side, in the engine's precedence order.
fn credential_text(
    settings: &ProviderSettings,
    host: &str,
) -> Result<Option<SecretString>, RunnerError> {
    let read = |field: &'static str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(SecretString::new)
            .map_err(|e| RunnerError::Config {
                field,
                message: format!(
                    "cannot read {} to send it to runner {host}: {e}",
                    path.display()
                ),
            })
    };
    if let Some(s) = settings.gcs_credentials.as_ref().filter(|s| !s.is_blank()) {
        return Ok(Some(s.clone()));
    }
    if let Some(p) = &settings.gcs_credentials_file {
        return read("gcs_credentials_file", p).map(Some);
    }
    if let Some(s) = std::env::var(ENV_SA_JSON)
        .ok()
        .map(SecretString::new)
        .filter(|s| !s.is_blank())
    {
        return Ok(Some(s));
    }
    if let Some(p) = std::env::var_os(ENV_SA_JSON_FILE).filter(|p| !p.is_empty()) {
        return read("gcs_credentials_file", std::path::Path::new(&p)).map(Some);
    }
    Ok(None)
}

/// One remote stderr line: `[stage] message` progress, `warning: …`, or anything else.
fn forward_line(host: &str, line: &str, progress: &dyn Progress, warnings: &mut Vec<String>) {
    if let Some(w) = line.strip_prefix("warning: ") {
        warnings.push(format!("runner {host}: {w}"));
        return;
    }
    let (stage, text) = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((name, text)) => (stage_named(name), text),
        None => (None, line),
    };
    progress.message(
        stage.unwrap_or(Stage::Build),
        &format!("runner {host}: {text}"),
    );
}

fn stage_named(name: &str) -> Option<Stage> {
    [
        Stage::Fetch,
        Stage::Preflight,
        Stage::Build,
        Stage::Verify,
        Stage::Normalize,
        Stage::Publish,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

fn map_exec_error(host: &str, e: ExecError) -> RunnerError {
    let host = host.to_owned();
    match e {
        ExecError::Runner(r) => r,
        ExecError::Run(SupervisorError::Cancelled { .. }) => RunnerError::Cancelled { host },
        ExecError::Run(SupervisorError::TimedOut { after, tail, .. }) => {
            RunnerError::TimedOut { host, after, tail }
        }
        ExecError::Run(SupervisorError::Exited {
            code: Some(130), ..
        }) => RunnerError::Cancelled { host },
        ExecError::Run(SupervisorError::Exited { code, tail, .. }) => RunnerError::Remote {
            host,
            code: code.unwrap_or(-1),
            tail,
        },
        ExecError::Run(other) => RunnerError::Local {
            host,
            detail: other.to_string(),
        },
    }
}
