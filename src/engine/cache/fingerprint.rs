//! The build fingerprint: one named [`Input`] per thing that shapes the image bytes, and the
//! sha256 over their digests.
//!
//! Inputs (names as `image explain` and `cache ls` print them):
//! - `source_iso_sha256`, `artifact_key`, `artifact_format`, `additional_formats`,
//!   `artifact_version`;
//! - `build.<field>` for **every** field of the resolved [`BuildSettings`] (method, command,
//!   workdir, disk size, cloud-init settings, console, guest agent, TCG permission, preflight
//!   switch, packer paths and extra args, the checkout path); a field added to `BuildSettings`
//!   later (for example `build.normalize`) becomes an input without touching this file;
//!   `build.environment.<KEY>` and `build.triggers.<KEY>` one per key, digest only (values may be
//!   secrets and are never stored);
//! - `packer_template`, `packer_vars_file`: the recursive tree digest of the file or directory
//!   (VCS folders skipped, see [`super::tree`]); `packaged_templates` when the packaged ones are
//!   used; `cc_vyos`: the content of the file named by `HYOPS_VYOS_CC_VYOS_PATH`;
//! - `vyos_vm_images`: git revision plus uncommitted changes, or the tree digest (see
//!   [`super::checkout`]);
//! - `build.command.script`: when the command's first word (after an interpreter such as `bash`,
//!   `sh`, `python3`, `env`) is a path (contains `/`) to an existing file, that file's content.
//!   Relative paths resolve against `build.workdir`.
//!
//! Not covered (documented in docs/design/build-cache.md): tool versions (recorded for provenance
//! only, so a cache hit never needs the tools), files a script or template reads that are not in
//! the hashed trees, programs found on `PATH`, and publish settings (publishing does not change
//! bytes). `build.triggers` is the escape hatch for anything else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::checkout;
use super::tree::{self, ReadError, MAX_LISTED_FILES};
use super::CacheError;
use crate::engine::build::{BuildSettings, ENV_CC_VYOS_PATH};
use crate::engine::spec::{BuildMethod, ImageSpec};

/// Version of the fingerprint scheme (part of the hash: a new scheme never reuses old entries).
pub const FINGERPRINT_SCHEMA: u32 = 2;

/// Interpreters whose first operand is taken as the script of `build.command`.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "env", "python", "python3", "perl", "ruby", "node", "exec",
];

/// One input of the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// sha256 (hex) of the input's value or content
    pub digest: String,
    /// a readable description (a path, a value, a git revision); absent for secret-capable values
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// per-file digests for tree inputs (relative path → sha256), when not too many
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

impl Input {
    fn value(v: &serde_json::Value) -> Input {
        let text = v.to_string();
        let summary = if text.len() > 200 {
            format!("{}…", text.chars().take(200).collect::<String>())
        } else {
            text.clone()
        };
        Input {
            digest: tree::sha256_hex(text.as_bytes()),
            summary: Some(summary),
            files: BTreeMap::new(),
        }
    }

    fn secret(v: &str) -> Input {
        Input {
            digest: tree::sha256_hex(v.as_bytes()),
            summary: None,
            files: BTreeMap::new(),
        }
    }

    fn tree(path: &Path, t: tree::TreeDigest) -> Input {
        let files = if t.files.len() <= MAX_LISTED_FILES {
            t.files
        } else {
            BTreeMap::new()
        };
        Input {
            digest: t.digest,
            summary: Some(path.display().to_string()),
            files,
        }
    }
}

/// Every input of one fingerprint, by name.
pub type FingerprintInputs = BTreeMap<String, Input>;

/// A computed fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// 64 hex
    pub hex: String,
    /// what went into it
    pub inputs: FingerprintInputs,
}

/// One input that differs between two fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedInput {
    /// the input's name (`build.command.script`, `vyos_vm_images`, …)
    pub name: String,
    /// the recorded summary, if any
    pub before: Option<String>,
    /// the current summary, if any
    pub after: Option<String>,
    /// files of a tree input that were added, removed or changed
    pub files: Vec<String>,
}

/// Inputs that differ between `old` and `new` (added and removed inputs included), by name.
pub fn diff_inputs(old: &FingerprintInputs, new: &FingerprintInputs) -> Vec<ChangedInput> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (o, n) = (old.get(name), new.get(name));
        if o.map(|i| &i.digest) == n.map(|i| &i.digest) {
            continue;
        }
        let mut files = Vec::new();
        if let (Some(o), Some(n)) = (o, n) {
            for (f, d) in &n.files {
                if o.files.get(f) != Some(d) {
                    files.push(f.clone());
                }
            }
            for f in o.files.keys() {
                if !n.files.contains_key(f) {
                    files.push(f.clone());
                }
            }
            files.sort();
        }
        out.push(ChangedInput {
            name: name.clone(),
            before: o.and_then(|i| i.summary.clone()),
            after: n.and_then(|i| i.summary.clone()),
            files,
        });
    }
    out
}

fn input_err(e: ReadError) -> CacheError {
    CacheError::Input {
        path: e.path,
        source: e.source,
    }
}

/// The build fingerprint of `spec` built with `settings`. Runs `git` (through the supervisor)
/// when the build uses a vyos-vm-images checkout that is a git work tree.
pub async fn fingerprint(
    spec: &ImageSpec,
    settings: &BuildSettings,
    cancel: &CancellationToken,
) -> Result<Fingerprint, CacheError> {
    let mut inputs = FingerprintInputs::new();
    let mut put = |name: &str, input: Input| {
        inputs.insert(name.to_owned(), input);
    };
    put(
        "source_iso_sha256",
        Input::value(&spec.source_iso_sha256.trim().to_ascii_lowercase().into()),
    );
    put(
        "artifact_key",
        Input::value(&spec.artifact_key.clone().into()),
    );
    put(
        "artifact_format",
        Input::value(&spec.artifact_format.as_str().into()),
    );
    let mut extras: Vec<&str> = spec.additional_formats.iter().map(|f| f.as_str()).collect();
    extras.sort_unstable();
    extras.dedup();
    put(
        "additional_formats",
        Input::value(&serde_json::json!(extras)),
    );
    put(
        "artifact_version",
        Input::value(&serde_json::json!(spec.artifact_version)),
    );

    let build = serde_json::to_value(settings).map_err(|e| CacheError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?;
    if let serde_json::Value::Object(fields) = build {
        for (field, value) in fields {
            match (field.as_str(), value) {
                ("environment" | "triggers", serde_json::Value::Object(map)) => {
                    for (k, v) in map {
                        let text = v.as_str().map(str::to_owned).unwrap_or(v.to_string());
                        put(&format!("build.{field}.{k}"), Input::secret(&text));
                    }
                }
                (_, v) => put(&format!("build.{field}"), Input::value(&v)),
            }
        }
    }

    let is_packer = settings.method == BuildMethod::Packer;
    if is_packer {
        match &settings.packer_template {
            Some(p) => put(
                "packer_template",
                Input::tree(p, tree::tree_digest(p).map_err(input_err)?),
            ),
            None => {
                use crate::engine::build::{PACKAGED_VARS_FILE, STAGE1_TEMPLATE, STAGE2_TEMPLATE};
                let text = format!("{STAGE1_TEMPLATE}\0{STAGE2_TEMPLATE}\0{PACKAGED_VARS_FILE}");
                put(
                    "packaged_templates",
                    Input {
                        digest: tree::sha256_hex(text.as_bytes()),
                        summary: Some(format!(
                            "packaged in provider {}",
                            env!("CARGO_PKG_VERSION")
                        )),
                        files: BTreeMap::new(),
                    },
                );
            }
        }
        if let Some(p) = &settings.packer_vars_file {
            put(
                "packer_vars_file",
                Input::tree(p, tree::tree_digest(p).map_err(input_err)?),
            );
        }
        if let Some(p) = settings.environment.get(ENV_CC_VYOS_PATH) {
            if !p.is_empty() {
                let p = Path::new(p);
                put(
                    "cc_vyos",
                    Input::tree(p, tree::tree_digest(p).map_err(input_err)?),
                );
            }
        }
    }
    if settings.method == BuildMethod::VyosVmImages {
        if let Some(dir) = &settings.vyos_vm_images_dir {
            if dir.is_dir() {
                let id = checkout::identify(dir, cancel).await.map_err(input_err)?;
                let files = if id.files.len() <= MAX_LISTED_FILES {
                    id.files
                } else {
                    BTreeMap::new()
                };
                put(
                    "vyos_vm_images",
                    Input {
                        digest: id.digest,
                        summary: Some(format!("{}: {}", dir.display(), id.summary)),
                        files,
                    },
                );
            }
        }
    }
    if settings.method == BuildMethod::Command {
        if let Some(script) = settings
            .command
            .as_deref()
            .and_then(|c| command_script(c, settings.workdir.as_deref()))
        {
            put(
                "build.command.script",
                Input::tree(&script, tree::tree_digest(&script).map_err(input_err)?),
            );
        }
    }
    if cancel.is_cancelled() {
        return Err(CacheError::Cancelled);
    }

    let digests: BTreeMap<&String, &String> = inputs.iter().map(|(k, v)| (k, &v.digest)).collect();
    let canonical = serde_json::to_vec(&serde_json::json!({
        "schema": FINGERPRINT_SCHEMA,
        "inputs": digests,
    }))
    .map_err(|e| CacheError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?;
    Ok(Fingerprint {
        hex: tree::sha256_hex(&canonical),
        inputs,
    })
}

/// The script file a command starts with: its first word, or the first operand after a known
/// interpreter, when that is a path (contains `/`) to an existing regular file.
pub fn command_script(command: &str, workdir: Option<&Path>) -> Option<PathBuf> {
    let words = shlex::split(command)
        .unwrap_or_else(|| command.split_whitespace().map(str::to_owned).collect());
    let mut it = words
        .into_iter()
        .skip_while(|w| w.contains('=') && !w.contains('/') && !w.starts_with('-'));
    let mut word = it.next()?;
    let base = word.rsplit('/').next().unwrap_or(&word).to_owned();
    if INTERPRETERS.contains(&base.as_str()) {
        word = it.find(|w| !(w.starts_with('-') || (base == "env" && w.contains('='))))?;
    }
    if !word.contains('/') {
        return None;
    }
    let path = PathBuf::from(&word);
    let path = if path.is_absolute() {
        path
    } else {
        workdir?.join(path)
    };
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_script_finds_the_script_word() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("build.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let s = script.display().to_string();
        for cmd in [
            s.clone(),
            format!("{s} --fast"),
            format!("bash {s}"),
            format!("/usr/bin/env -i X=1 bash -x {s}"),
            format!("FOO=1 {s}"),
        ] {
            // `env -i X=1 bash -x s` takes `bash` as env's operand: not a path, so no script.
            let got = command_script(&cmd, None);
            if cmd.contains("env -i") {
                assert_eq!(got, None, "{cmd}");
            } else {
                assert_eq!(got.as_deref(), Some(script.as_path()), "{cmd}");
            }
        }
        assert_eq!(
            command_script("./build.sh", Some(dir.path())).as_deref(),
            Some(script.as_path())
        );
        assert_eq!(command_script("./build.sh", None), None);
        assert_eq!(command_script("make-image", Some(dir.path())), None);
        assert_eq!(command_script("/nonexistent/x.sh", None), None);
    }
}
