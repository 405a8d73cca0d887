//! `image explain --config SPEC.json [--json]`: prints what
//! [`crate::engine::cache::explain::explain`] reports — the fingerprint, its inputs, and whether a
//! create would reuse a cached entry, naming the inputs that changed when not. Exit 0 either way
//! (it is a question, not a check); 2 for a bad spec.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use crate::engine::build::BuildSettings;
use crate::engine::cache::explain::{explain, Explanation};

fn parse(args: &[String]) -> anyhow::Result<(PathBuf, bool)> {
    let mut it = args.iter();
    let mut config = None;
    let mut json = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(it.next().context("--config needs a path")?))
            }
            s if s.starts_with("--config=") => config = Some(PathBuf::from(&s[9..])),
            "--json" => json = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok((
        config.context("image explain needs --config SPEC.json")?,
        json,
    ))
}

/// Run `image explain` (`args` start after `explain`).
pub(crate) fn run(args: &[String], out: &mut dyn std::io::Write) -> ExitCode {
    let (config, json) = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}\n\nusage: terraform-provider-hyops image explain --config SPEC.json [--json]");
            return ExitCode::from(2);
        }
    };
    let spec = match super::load_spec(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invalid: {e:#}");
            return ExitCode::from(2);
        }
    };
    let env = super::engine_env(&spec);
    let settings = match BuildSettings::resolve(&spec.build, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invalid: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(explain(
        &spec,
        &settings,
        env.cache_dir(),
        &CancellationToken::new(),
    ));
    let text = match result {
        Ok(e) if json => serde_json::to_string_pretty(&e).map_err(anyhow::Error::new),
        Ok(e) => Ok(show(&e)),
        Err(e) => Err(anyhow::Error::new(e)),
    };
    match text.and_then(|t| {
        writeln!(out, "{t}")
            .and_then(|_| out.flush())
            .map_err(Into::into)
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn show(e: &Explanation) -> String {
    let mut s = format!(
        "fingerprint {}\n{}: {}\n",
        e.fingerprint,
        if e.reuse { "reuse" } else { "rebuild" },
        e.reason
    );
    if let Some(entry) = &e.entry {
        s += &format!("entry: {}\n", entry.display());
    }
    for c in &e.changed {
        s += &format!(
            "changed: {}{}{}\n",
            c.name,
            match (&c.before, &c.after) {
                (Some(b), Some(a)) if b != a => format!(" ({b} → {a})"),
                _ => String::new(),
            },
            if c.files.is_empty() {
                String::new()
            } else {
                format!(" files: {}", c.files.join(", "))
            }
        );
    }
    s += "inputs:\n";
    for (name, input) in &e.inputs {
        s += &format!(
            "  {name}: {}\n",
            input.summary.clone().unwrap_or_else(|| format!(
                "sha256 {}",
                input.digest.get(..16).unwrap_or(&input.digest)
            ))
        );
    }
    s
}
