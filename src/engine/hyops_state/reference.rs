//! Parsing `module/ref#instance` and finding the state file it names.

use std::path::{Path, PathBuf};

use super::HyopsStateError;

/// A parsed state reference, e.g. `org/gcp/object-repo#vyos_artifacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRef {
    /// the module ref (`org/gcp/object-repo`)
    pub module_ref: String,
    /// the instance, when given after `#`
    pub instance: Option<String>,
    raw: String,
}

impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl StateRef {
    /// Parses and validates (segments of letters, digits, `-`, `_`, `.`; no `..`).
    pub fn parse(s: &str) -> Result<Self, HyopsStateError> {
        let bad = |reason| HyopsStateError::BadRef {
            reference: s.escape_debug().to_string(),
            reason,
        };
        let s_trim = s.trim();
        let (module, instance) = match s_trim.split_once('#') {
            Some((m, i)) => (m, Some(i)),
            None => (s_trim, None),
        };
        if module.is_empty() {
            return Err(bad("empty module ref"));
        }
        if !module.split('/').all(valid_segment) {
            return Err(bad(
                "module ref segments must be letters, digits, `-`, `_` or `.`, without `..` or empty segments",
            ));
        }
        if let Some(i) = instance {
            if !valid_segment(i) {
                return Err(bad("instance must be letters, digits, `-`, `_` or `.`"));
            }
        }
        Ok(StateRef {
            module_ref: module.to_owned(),
            instance: instance.map(str::to_owned),
            raw: s_trim.to_owned(),
        })
    }

    /// `module_ref` with `/` → `__`.
    pub fn module_id(&self) -> String {
        self.module_ref.replace('/', "__")
    }

    /// `<root>/state/modules/<module_id>`.
    pub fn module_dir(&self, root: &Path) -> PathBuf {
        root.join("state").join("modules").join(self.module_id())
    }
}

/// A state file that was found with `"status": "ok"`.
#[derive(Debug, Clone)]
pub struct StateDoc {
    /// the file read
    pub path: PathBuf,
    /// the instance it belongs to (`None` for `latest.json`)
    pub instance: Option<String>,
    /// the whole document
    pub doc: serde_json::Value,
}

impl StateDoc {
    /// `outputs`, or an empty object.
    pub fn outputs(&self) -> serde_json::Map<String, serde_json::Value> {
        self.doc
            .get("outputs")
            .and_then(|o| o.as_object())
            .cloned()
            .unwrap_or_default()
    }
}

fn load(path: &Path) -> Result<Option<serde_json::Value>, HyopsStateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(HyopsStateError::Io {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| HyopsStateError::Io {
            path: path.to_path_buf(),
            detail: format!("not JSON: {e}"),
        })
}

fn status_of(doc: &serde_json::Value) -> String {
    doc.get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("(missing)")
        .to_owned()
}

/// Resolves a reference: `#instance` → that instance's file; otherwise the single ok instance
/// (several → [`HyopsStateError::Ambiguous`] naming them), else `latest.json`.
pub fn read_state(root: &Path, r: &StateRef) -> Result<StateDoc, HyopsStateError> {
    let dir = r.module_dir(root);
    let check = |path: PathBuf, instance: Option<String>| -> Result<StateDoc, HyopsStateError> {
        let doc = load(&path)?.ok_or_else(|| HyopsStateError::Missing {
            reference: r.to_string(),
            path: path.clone(),
        })?;
        let status = status_of(&doc);
        if status != "ok" {
            return Err(HyopsStateError::NotOk {
                reference: r.to_string(),
                path,
                status,
            });
        }
        Ok(StateDoc {
            path,
            instance,
            doc,
        })
    };
    if let Some(i) = &r.instance {
        return check(
            dir.join("instances").join(format!("{i}.json")),
            Some(i.clone()),
        );
    }
    let mut ok = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("instances")) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if let Ok(Some(doc)) = load(&path) {
                if status_of(&doc) == "ok" {
                    ok.push((name.to_owned(), path.clone(), doc));
                }
            }
        }
    }
    ok.sort_by(|a, b| a.0.cmp(&b.0));
    match ok.len() {
        0 => check(dir.join("latest.json"), None),
        1 => {
            let (name, path, doc) = ok.remove(0);
            Ok(StateDoc {
                path,
                instance: Some(name),
                doc,
            })
        }
        _ => Err(HyopsStateError::Ambiguous {
            reference: r.to_string(),
            instances: ok
                .iter()
                .map(|(n, _, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
