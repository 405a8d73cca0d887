//! The operator CLI's two runner roles:
//! - [`apply_on_runner`]: `image apply` with `HYOPS_VYOS_BUILD_RUNNER_*` set sends the spec to the
//!   runner ([`crate::runner::create`]) and prints the contract it returns.
//! - [`apply_held`]: what runs **on** the runner (`image apply --config - --hold-stdin`): one job
//!   frame from stdin, end-of-input cancels, the credential lives in a scoped 0600 file.

use std::io::BufRead;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::progress::{say, StderrProgress};
use super::{engine_env, init_logging, print_contract, watch_signals};
use crate::engine::create::create;
use crate::engine::credentials::ScopedSecretFile;
use crate::engine::error::ErrorKind;
use crate::engine::spec::ImageSpec;
use crate::runner::job::Job;
use crate::runner::{RunnerConfig, RunnerError, Session};

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            say(format_args!("error: cannot start the async runtime: {e}"));
            None
        }
    }
}

/// `image apply` forwarded to the runner of `config`.
pub(super) fn apply_on_runner(
    config: RunnerConfig,
    spec: &ImageSpec,
    out: &mut dyn std::io::Write,
) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = watch_signals(cancel.clone()) {
            say(format_args!(
                "warning: cannot install signal handlers: {e:#}"
            ));
        }
        let session = match Session::open(config) {
            Ok(s) => s,
            Err(e) => {
                say(format_args!("error: {e}"));
                return ExitCode::from(1);
            }
        };
        let settings = spec.provider.clone().unwrap_or_default();
        let progress = StderrProgress::default();
        let result = crate::runner::create(&session, spec, &settings, cancel, &progress).await;
        session.close().await;
        match result {
            Ok(build) => {
                for w in &build.warnings {
                    say(format_args!("warning: {w}"));
                }
                print_contract(&build.contract, out)
            }
            Err(e) => {
                say(format_args!("error: {e}"));
                match e {
                    RunnerError::Cancelled { .. } => ExitCode::from(130),
                    RunnerError::Config { .. } => ExitCode::from(2),
                    RunnerError::Remote { code: 2, .. } => ExitCode::from(2),
                    _ => ExitCode::from(1),
                }
            }
        }
    })
}

/// Reads the job frame (first line of stdin), then watches stdin: end-of-input cancels.
fn read_job(cancel: CancellationToken) -> anyhow::Result<Job> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hyops-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            let mut line = String::new();
            let first = lock.read_line(&mut line).map(|_| line);
            let got_frame = matches!(&first, Ok(l) if l.ends_with('\n'));
            let _ = tx.send(first);
            if got_frame {
                // anything after the frame is ignored; its end is the cancel signal
                let mut sink = [0u8; 512];
                while matches!(std::io::Read::read(&mut lock, &mut sink), Ok(n) if n > 0) {}
            }
            cancel.cancel();
        })?;
    let line = rx.recv()??;
    anyhow::ensure!(
        line.ends_with('\n'),
        "stdin ended before a complete job frame"
    );
    Job::decode(&line).map_err(|e| anyhow::anyhow!("the job frame is not valid: {e}"))
}

/// The runner side: build the framed job, print its contract on stdout.
pub(super) fn apply_held(
    verbose: bool,
    runner_dir: Option<&Path>,
    out: &mut dyn std::io::Write,
) -> ExitCode {
    init_logging(verbose);
    let cancel = CancellationToken::new();
    let job = match read_job(cancel.clone()) {
        Ok(j) => j,
        Err(e) => {
            say(format_args!("invalid: {e:#}"));
            return ExitCode::from(2);
        }
    };
    let Job {
        mut spec,
        gcs_credentials,
    } = job;
    // the credential: a 0600 file in a 0700 directory for this run only, removed on every exit
    let secret_file = match gcs_credentials {
        None => None,
        Some(secret) => {
            let parent = runner_dir
                .map(|d| d.join("secrets"))
                .unwrap_or_else(std::env::temp_dir);
            let made = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&parent)
                .and_then(|()| {
                    ScopedSecretFile::create_in(
                        &parent,
                        "gcs-credentials.json",
                        secret.expose_secret().as_bytes(),
                    )
                });
            match made {
                Ok(f) => Some(f),
                Err(e) => {
                    say(format_args!(
                        "error: cannot write the scoped credential file under {}: {e}",
                        parent.display()
                    ));
                    return ExitCode::from(1);
                }
            }
        }
    };
    if let Some(f) = &secret_file {
        let provider = spec.provider.get_or_insert_with(Default::default);
        provider.gcs_credentials = None;
        provider.gcs_credentials_file = Some(f.path().to_path_buf());
    }
    let env = engine_env(&spec);
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    let result = runtime.block_on(async {
        if let Err(e) = watch_signals(cancel.clone()) {
            say(format_args!(
                "warning: cannot install signal handlers: {e:#}"
            ));
        }
        let progress = StderrProgress::default();
        create(&spec, &env, cancel.clone(), &progress).await
    });
    drop(secret_file);
    match result {
        Ok(outcome) => {
            for w in &outcome.warnings {
                say(format_args!("warning: {w}"));
            }
            print_contract(&outcome.contract, out)
        }
        Err(e) => {
            say(format_args!("error: {e}"));
            match e.kind() {
                ErrorKind::Cancelled => ExitCode::from(130),
                ErrorKind::Invalid => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
