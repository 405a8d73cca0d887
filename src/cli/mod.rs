//! The operator CLI on the provider binary (used when the go-plugin cookie is absent):
//!
//! ```text
//! terraform-provider-hyops image apply    --config SPEC.json   # build (+publish), print the contract JSON
//! terraform-provider-hyops image validate --config SPEC.json   # static checks only
//! terraform-provider-hyops image explain  --config SPEC.json   # fingerprint; would the cache be reused, and why not
//! terraform-provider-hyops cache ls | prune [...]              # build cache inventory and eviction (see `cache`)
//! ```
//!
//! `SPEC.json` is an [`ImageSpec`] with the resource's attribute names; blocks are JSON objects
//! (a one-element array, as Terraform's JSON syntax may write a block, is accepted too). An
//! optional `"provider": {…}` object carries provider-level settings, on top of the same
//! environment variables the provider falls back to. `apply` runs exactly
//! [`crate::engine::create::create`]: the contract JSON goes to stdout, progress and errors to
//! stderr. SIGINT/SIGTERM cancel the create: the builder's process group is terminated, staging
//! files are removed, nothing is printed on stdout, and the exit code is 130.
//!
//! `--config -` reads the spec from stdin. With `HYOPS_VYOS_BUILD_RUNNER_HOST` (and the other
//! `HYOPS_VYOS_BUILD_RUNNER_*` variables) set, `apply` builds on that runner over SSH through
//! [`crate::runner`] and prints the contract it returns. On the runner side the same binary runs
//! `image apply --config - --hold-stdin --runner-dir DIR`: stdin carries one job frame
//! ([`crate::runner::job`]: the spec plus, optionally, the GCS credential, which is written to a
//! 0600 file in a 0700 directory under `DIR/secrets` for the run and removed afterwards), then
//! stays open; end-of-input cancels the build (the SSH channel closed). That mode never forwards
//! to another runner.
//!
//! Exit codes: 0 success; 1 the create failed; 2 usage error or invalid spec; 130 cancelled.
//! The only place besides `main.rs` that uses `anyhow`.

mod cache;
mod explain;
mod progress;
mod runner_side;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use crate::engine::create::create;
use crate::engine::env::EngineEnv;
use crate::engine::error::ErrorKind;
use crate::engine::spec::ImageSpec;
use crate::engine::validate::validate_spec;

const USAGE: &str = "usage:
  terraform-provider-hyops image apply    --config SPEC.json|- [--verbose]
  terraform-provider-hyops image validate --config SPEC.json
  terraform-provider-hyops image explain  --config SPEC.json [--json]
  terraform-provider-hyops cache ls    [--cache-dir DIR] [--json]
  terraform-provider-hyops cache prune [--cache-dir DIR] [--max-size N] [--older-than D] [--dry-run] [--json]

SPEC.json uses the hyops_vyos_image attribute names (blocks as JSON objects) plus an optional
\"provider\" object. apply prints the artifact contract JSON on stdout; progress goes to stderr.
With HYOPS_VYOS_BUILD_RUNNER_HOST set, apply builds on that runner over SSH.";

/// Blocks of the spec that Terraform's JSON syntax may write as one-element arrays.
const BLOCKS: &[&str] = &["build", "smoke_verify", "publish", "timeouts", "provider"];
/// Blocks nested in `smoke_verify`, likewise.
const NESTED_SMOKE_BLOCKS: &[&str] = &["boot"];

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Apply {
        config: PathBuf,
        verbose: bool,
        /// runner side: a job frame on stdin, then end-of-input cancels
        hold_stdin: bool,
        runner_dir: Option<PathBuf>,
    },
    Validate {
        config: PathBuf,
    },
    Help,
}

fn parse_args(args: Vec<OsString>) -> anyhow::Result<Command> {
    let mut args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    // Accept the full argv (program name first) as well as the arguments alone.
    if let Some(first) = args.first() {
        let known = ["image", "help", "--help", "-h"];
        let looks_like_program =
            first.contains('/') || first.starts_with("terraform-provider-hyops");
        if !known.contains(&first.as_str()) && looks_like_program {
            args.remove(0);
        }
    }
    let mut it = args.into_iter();
    match it.next().as_deref() {
        None | Some("help" | "--help" | "-h") => return Ok(Command::Help),
        Some("image") => {}
        Some(other) => bail!("unknown command {other:?}"),
    }
    let sub = it.next().unwrap_or_default();
    let mut config = None;
    let mut verbose = false;
    let mut hold_stdin = false;
    let mut runner_dir = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(it.next().context("--config needs a path")?))
            }
            s if s.starts_with("--config=") => {
                config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            "--verbose" | "-v" => verbose = true,
            "--hold-stdin" => hold_stdin = true,
            "--runner-dir" => {
                runner_dir = Some(PathBuf::from(
                    it.next().context("--runner-dir needs a path")?,
                ))
            }
            "--help" | "-h" => return Ok(Command::Help),
            other => bail!("unknown argument {other:?}"),
        }
    }
    match sub.as_str() {
        "apply" => {
            let config = config.context("image apply needs --config SPEC.json")?;
            if hold_stdin && config != Path::new("-") {
                bail!("--hold-stdin needs --config -");
            }
            Ok(Command::Apply {
                config,
                verbose,
                hold_stdin,
                runner_dir,
            })
        }
        "validate" => Ok(Command::Validate {
            config: config.context("image validate needs --config SPEC.json")?,
        }),
        "" | "help" | "--help" | "-h" => Ok(Command::Help),
        other => bail!("unknown image subcommand {other:?} (apply, validate)"),
    }
}

/// Read and parse `SPEC.json` (`-`: stdin).
pub fn load_spec(path: &Path) -> anyhow::Result<ImageSpec> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the spec from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if let Some(obj) = value.as_object_mut() {
        unwrap_blocks(obj, BLOCKS);
        if let Some(smoke) = obj.get_mut("smoke_verify").and_then(|s| s.as_object_mut()) {
            unwrap_blocks(smoke, NESTED_SMOKE_BLOCKS);
        }
    }
    serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid image spec", path.display()))
}

/// Replace each of `blocks` written as a one-element array by its element (an empty array by
/// nothing), as Terraform's JSON syntax allows.
fn unwrap_blocks(obj: &mut serde_json::Map<String, serde_json::Value>, blocks: &[&str]) {
    for block in blocks {
        let unwrap = match obj.get(*block) {
            Some(serde_json::Value::Array(items)) if items.len() == 1 => Some(items[0].clone()),
            Some(serde_json::Value::Array(items)) if items.is_empty() => {
                Some(serde_json::Value::Null)
            }
            _ => None,
        };
        match unwrap {
            Some(serde_json::Value::Null) => {
                obj.remove(*block);
            }
            Some(v) => {
                obj.insert((*block).to_owned(), v);
            }
            None => {}
        }
    }
}

fn engine_env(spec: &ImageSpec) -> EngineEnv {
    let env = EngineEnv::from_env();
    match &spec.provider {
        Some(p) => env.with_provider_settings(p),
        None => env,
    }
}

/// Entry point: `args` are the process arguments after the program name (as `main.rs` passes
/// them); a leading program name is tolerated too.
pub fn run<I, S>(args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(args, &mut out)
}

/// [`run`] with the contract JSON written to `out` instead of stdout (tests, embedding).
pub fn run_to<I, S>(args: I, out: &mut dyn std::io::Write) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(code) = run_cache_commands(&args, out) {
        return code;
    }
    let command = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            eprintln!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Validate { config } => validate(&config),
        Command::Apply {
            config,
            verbose,
            hold_stdin: true,
            runner_dir,
        } => {
            let _ = config;
            runner_side::apply_held(verbose, runner_dir.as_deref(), out)
        }
        Command::Apply {
            config, verbose, ..
        } => apply(&config, verbose, out),
    }
}

/// `cache …` and `image explain …` (handled by their own files); `None` for other commands.
fn run_cache_commands(args: &[OsString], out: &mut dyn std::io::Write) -> Option<ExitCode> {
    let mut words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if words.first().is_some_and(|w| {
        (w.contains('/') || w.starts_with("terraform-provider-hyops")) && w != "cache"
    }) {
        words.remove(0);
    }
    match words.first().map(String::as_str) {
        Some("cache") => Some(cache::run(&words[1..], out)),
        Some("image") if words.get(1).map(String::as_str) == Some("explain") => {
            Some(explain::run(&words[2..], out))
        }
        _ => None,
    }
}

fn validate(config: &Path) -> ExitCode {
    let spec = match load_spec(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invalid: {e:#}");
            return ExitCode::from(2);
        }
    };
    let problems = validate_spec(&spec, &engine_env(&spec));
    if problems.is_empty() {
        eprintln!("{}: valid", config.display());
        ExitCode::SUCCESS
    } else {
        for p in problems {
            eprintln!("invalid: {p}");
        }
        ExitCode::from(2)
    }
}

pub(crate) fn init_logging(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .try_init();
}

fn apply(config: &Path, verbose: bool, out: &mut dyn std::io::Write) -> ExitCode {
    init_logging(verbose);
    let spec = match load_spec(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invalid: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runner = match crate::runner::RunnerConfigBuilder::from_env().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invalid: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(runner) = runner {
        return runner_side::apply_on_runner(runner, &spec, out);
    }
    let env = engine_env(&spec);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = watch_signals(cancel.clone()) {
            eprintln!("warning: cannot install signal handlers: {e:#}");
        }
        let progress = progress::StderrProgress::default();
        match create(&spec, &env, cancel, &progress).await {
            Ok(outcome) => {
                for w in &outcome.warnings {
                    eprintln!("warning: {w}");
                }
                print_contract(&outcome.contract, out)
            }
            Err(e) => {
                eprintln!("error: {e}");
                match e.kind() {
                    ErrorKind::Cancelled => ExitCode::from(130),
                    ErrorKind::Invalid => ExitCode::from(2),
                    _ => ExitCode::from(1),
                }
            }
        }
    })
}

/// Prints the contract JSON on `out`.
pub(crate) fn print_contract(
    contract: &crate::engine::contract::ArtifactContract,
    out: &mut dyn std::io::Write,
) -> ExitCode {
    match serde_json::to_string_pretty(contract) {
        Ok(json) => match writeln!(out, "{json}").and_then(|_| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                progress::say(format_args!("error: cannot write the contract: {e}"));
                ExitCode::from(1)
            }
        },
        Err(e) => {
            progress::say(format_args!("error: cannot encode the contract: {e}"));
            ExitCode::from(1)
        }
    }
}

/// First SIGINT/SIGTERM cancels the create (which then cleans up and returns).
pub(crate) fn watch_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => progress::say(format_args!("SIGINT: cancelling (terminating the builder's process group)…")),
            _ = term.recv() => progress::say(format_args!("SIGTERM: cancelling (terminating the builder's process group)…")),
        }
        cancel.cancel();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_with_and_without_program_name() {
        let want = Command::Apply {
            config: PathBuf::from("s.json"),
            verbose: false,
            hold_stdin: false,
            runner_dir: None,
        };
        assert_eq!(
            parse_args(os(&[
                "terraform-provider-hyops",
                "image",
                "apply",
                "--config",
                "s.json"
            ]))
            .unwrap(),
            want
        );
        assert_eq!(
            parse_args(os(&["image", "apply", "--config=s.json"])).unwrap(),
            want
        );
        assert!(parse_args(os(&["image", "apply"])).is_err());
        assert!(parse_args(os(&["image", "frob"])).is_err());
        assert_eq!(
            parse_args(os(&["/usr/bin/terraform-provider-hyops"])).unwrap(),
            Command::Help
        );
        assert!(parse_args(os(&["frob"])).is_err());
        assert_eq!(
            parse_args(os(&[
                "image",
                "apply",
                "--config",
                "-",
                "--hold-stdin",
                "--runner-dir",
                "/r"
            ]))
            .unwrap(),
            Command::Apply {
                config: PathBuf::from("-"),
                verbose: false,
                hold_stdin: true,
                runner_dir: Some(PathBuf::from("/r")),
            }
        );
        assert!(parse_args(os(&[
            "image",
            "apply",
            "--config",
            "s.json",
            "--hold-stdin"
        ]))
        .is_err());
    }

    #[test]
    fn smoke_verify_boot_may_be_written_as_terraform_json_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        let spec = serde_json::json!({
            "artifact_key": "vyos-x",
            "source_iso_url": "file:///x.iso",
            "source_iso_sha256": "0".repeat(64),
            "smoke_verify": [{ "boot": [{ "enabled": true, "accelerator": "tcg" }] }]
        });
        std::fs::write(&path, spec.to_string()).unwrap();
        let spec = load_spec(&path).unwrap();
        let boot = spec.smoke_verify.boot.unwrap();
        assert_eq!(boot.enabled, Some(true));
        assert_eq!(
            boot.accelerator,
            Some(crate::engine::spec::BootAccelerator::Tcg)
        );
    }
}
