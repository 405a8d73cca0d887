//! `cache ls` and `cache prune`: display what [`crate::engine::cache::eviction`] reports. No
//! decision is taken here.
//!
//! ```text
//! terraform-provider-hyops cache ls    [--cache-dir DIR] [--json]
//! terraform-provider-hyops cache prune [--cache-dir DIR] [--max-size N] [--older-than D] [--dry-run] [--json]
//! ```
//! `--max-size` takes GiB (`20`, `1.5`) or a size with a binary suffix (`500M`, `2G`, `300KiB`);
//! without it, `HYOPS_VYOS_CACHE_MAX_SIZE_GB` applies when set. `--older-than` takes a Go duration
//! (`72h`) or days (`7d`); failed work directories and logs older than
//! `HYOPS_VYOS_CACHE_FAILED_MAX_AGE` (default 168h) always go.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::engine::cache::eviction::{self, Inventory, Item, PrunePolicy, PruneReport};
use crate::engine::env::EngineEnv;

const USAGE: &str = "usage:
  terraform-provider-hyops cache ls    [--cache-dir DIR] [--json]
  terraform-provider-hyops cache prune [--cache-dir DIR] [--max-size N] [--older-than D] [--dry-run] [--json]";

#[derive(Debug, PartialEq)]
struct Options {
    prune: bool,
    cache_dir: Option<PathBuf>,
    json: bool,
    max_size: Option<u64>,
    older_than: Option<Duration>,
    dry_run: bool,
}

/// `N` GiB, or `N` with a K/M/G/T (optionally `iB`/`B`) suffix, binary units.
pub(crate) fn parse_size(raw: &str) -> anyhow::Result<u64> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("--max-size {raw:?}: not a number"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" if unit.is_empty() => 1 << 30,
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => bail!("--max-size {raw:?}: unknown unit (K, M, G, T; a bare number is GiB)"),
    };
    if !(n.is_finite() && n >= 0.0) {
        bail!("--max-size {raw:?}: must be a non-negative size");
    }
    Ok((n * mult as f64) as u64)
}

/// A Go duration, or whole days as `Nd`.
pub(crate) fn parse_age(raw: &str) -> anyhow::Result<Duration> {
    if let Some(days) = raw.strip_suffix('d') {
        if let Ok(d) = days.parse::<u64>() {
            return Ok(Duration::from_secs(d * 24 * 3600));
        }
    }
    crate::engine::duration::parse_go_duration(raw)
        .with_context(|| format!("--older-than {raw:?}: use a Go duration (72h) or days (7d)"))
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut it = args.iter();
    let prune = match it.next().map(String::as_str) {
        Some("ls") => false,
        Some("prune") => true,
        Some(other) => bail!("unknown cache subcommand {other:?} (ls, prune)"),
        None => bail!("cache needs a subcommand (ls, prune)"),
    };
    let mut o = Options {
        prune,
        cache_dir: None,
        json: false,
        max_size: None,
        older_than: None,
        dry_run: false,
    };
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "--cache-dir" => o.cache_dir = Some(PathBuf::from(value(flag)?)),
            "--json" => o.json = true,
            "--max-size" if prune => o.max_size = Some(parse_size(&value(flag)?)?),
            "--older-than" if prune => o.older_than = Some(parse_age(&value(flag)?)?),
            "--dry-run" if prune => o.dry_run = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(o)
}

/// Run `cache …` (`args` start after `cache`).
pub(crate) fn run(args: &[String], out: &mut dyn std::io::Write) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let env = EngineEnv::from_env();
    let dir = o
        .cache_dir
        .clone()
        .unwrap_or_else(|| env.cache_dir().to_owned());
    let text = if o.prune {
        let policy = PrunePolicy {
            max_size_bytes: o.max_size.or(env.cache_max_size_bytes()),
            older_than: o.older_than,
            failed_max_age: env.cache_failed_max_age(),
            dry_run: o.dry_run,
        };
        match eviction::prune(&dir, &policy) {
            Ok(report) if o.json => serde_json::to_string_pretty(&report).map_err(Into::into),
            Ok(report) => Ok(show_report(&report)),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    } else {
        let inv = eviction::inventory(&dir);
        if o.json {
            serde_json::to_string_pretty(&inv).map_err(Into::into)
        } else {
            Ok(show_inventory(&inv))
        }
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

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn show_inventory(inv: &Inventory) -> String {
    let mut s = format!(
        "cache {} — entries and ISOs: {}\n",
        inv.cache_dir.display(),
        size(inv.limited_size)
    );
    s += &format!(
        "\nbuild entries ({}), most recently used first:\n",
        inv.builds.len()
    );
    for b in &inv.builds {
        let (key, id) = b
            .record
            .as_ref()
            .map_or(("?".to_owned(), "?".to_owned()), |r| {
                (r.artifact_key().unwrap_or_default(), r.build_id.clone())
            });
        s += &format!(
            "  {}  {:>10}  last used {}  {}  build {}{}{}\n",
            b.item.name.get(..16).unwrap_or(&b.item.name),
            size(b.item.size),
            b.item.last_used,
            key,
            id,
            if b.item.in_use { "  [in use]" } else { "" },
            if b.reusable { "" } else { "  [not reusable]" },
        );
        if let Some(r) = &b.record {
            for (name, input) in &r.inputs {
                s += &format!(
                    "      {name}: {}\n",
                    input.summary.clone().unwrap_or_else(|| format!(
                        "sha256 {}",
                        input.digest.get(..16).unwrap_or(&input.digest)
                    ))
                );
            }
        }
    }
    s += &format!("\nISOs ({}):\n", inv.isos.len());
    s += &items(&inv.isos);
    s += &format!("\nfailed work directories ({}):\n", inv.failed.len());
    s += &items(&inv.failed);
    s += &format!(
        "\nlogs: {} file(s), {}\n",
        inv.logs.len(),
        size(inv.logs.iter().map(|l| l.size).sum())
    );
    s
}

fn items(list: &[Item]) -> String {
    list.iter()
        .map(|i| {
            format!(
                "  {}  {:>10}  last used {}{}\n",
                i.name,
                size(i.size),
                i.last_used,
                if i.in_use { "  [in use]" } else { "" }
            )
        })
        .collect()
}

fn show_report(r: &PruneReport) -> String {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let mut s = format!(
        "{verb} {} item(s); entries and ISOs {} → {}{}\n",
        r.removed.len(),
        size(r.limited_size_before),
        size(r.limited_size_after),
        r.max_size_bytes
            .map(|m| format!(" (limit {})", size(m)))
            .unwrap_or_default()
    );
    for i in &r.removed {
        s += &format!("  {verb}: {:?} {} ({})\n", i.kind, i.name, size(i.size));
    }
    for i in &r.kept_in_use {
        s += &format!(
            "  kept, in use: {:?} {} ({})\n",
            i.kind,
            i.name,
            size(i.size)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_parse() {
        assert_eq!(parse_size("2").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("300KiB").unwrap(), 300 << 10);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("10B").unwrap(), 10);
        assert!(parse_size("5X").is_err());
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_age("soon").is_err());
    }
}
