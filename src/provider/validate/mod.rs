//! Static configuration rules (what `terraform validate` reports), one rule per file.
//!
//! A rule is a value with a plain description (docs can list it) and a check. Attribute rules
//! (`AttrRule`) see one known, non-null value; object rules (`ObjectRule`) see a whole block
//! (mutually exclusive / required-together attributes). The tables in `image.rs`, `artifact.rs` and
//! `provider.rs` bind rules to attribute paths.
//!
//! Every problem is an error [`Diagnostic`] at the exact attribute path (`build.method`,
//! `additional_formats[1]`), saying what to write instead. **Unknown values always pass**: a rule
//! whose input is unknown (at any depth on its path) is skipped, because the value may still turn
//! out valid at apply time.

mod artifact;
mod at_least_one_of;
mod conflicts_with;
mod each;
mod env_names;
mod exactly_one_of;
mod go_duration;
mod image;
mod int_range;
mod no_trailing_slash;
mod one_of;
mod pattern;
mod provider;
mod requires;
mod safe_path;
mod unique;
mod url_scheme;
mod url_secrets;

use crate::cty::{Path, Value};
use crate::tfplugin5::{Diagnostic, Diagnostics};

pub use artifact::{data_source_config, data_source_rules};
pub use image::{resource_config, resource_rules};
pub use provider::{provider_config, provider_rules};

/// One documented rule: where it applies and what it demands (docs are generated from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDoc {
    /// dotted attribute path (`build.method`); empty for the whole configuration
    pub at: String,
    /// what the rule demands, in plain text
    pub description: String,
}

/// The documentation of both tables.
pub(crate) fn describe(attrs: &[AttrCheck], objects: &[ObjectCheck]) -> Vec<RuleDoc> {
    let objects = objects.iter().map(|c| RuleDoc {
        at: c.at.join("."),
        description: c.rule.description(),
    });
    let attrs = attrs.iter().map(|c| RuleDoc {
        at: c.at.join("."),
        description: c.rule.description(),
    });
    objects.chain(attrs).collect()
}

/// A rule over one attribute's value.
pub(crate) trait AttrRule: Sync {
    /// What the rule demands, in plain text.
    fn description(&self) -> String;
    /// Checks `value` (known and non-null) found at `at`.
    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics);
}

/// A rule over the attributes of one object (the configuration root or a nested block).
pub(crate) trait ObjectRule: Sync {
    /// What the rule demands, in plain text.
    fn description(&self) -> String;
    /// Checks the known object `obj` found at `at`.
    fn check(&self, obj: &Value, at: &Path, diags: &mut Diagnostics);
}

/// Binds an attribute rule to a path of attribute names (`&["build", "method"]`).
pub(crate) struct AttrCheck {
    pub(crate) at: &'static [&'static str],
    pub(crate) rule: &'static dyn AttrRule,
}

/// Binds an object rule to the block at a path of attribute names (`&[]` is the root).
pub(crate) struct ObjectCheck {
    pub(crate) at: &'static [&'static str],
    pub(crate) rule: &'static dyn ObjectRule,
}

/// Runs both tables over `config`.
pub(crate) fn run(config: &Value, attrs: &[AttrCheck], objects: &[ObjectCheck]) -> Diagnostics {
    let mut diags = Diagnostics::new();
    for check in objects {
        if let Some((obj, at)) = known_at(config, check.at) {
            check.rule.check(obj, &at, &mut diags);
        }
    }
    for check in attrs {
        if let Some((value, at)) = known_at(config, check.at) {
            check.rule.check(value, &at, &mut diags);
        }
    }
    diags
}

/// The value at `names` with its path, when it and everything on the way is known and non-null.
fn known_at<'v>(root: &'v Value, names: &[&str]) -> Option<(&'v Value, Path)> {
    let mut value = root;
    let mut path = Path::root();
    for name in names {
        value = value.get(name)?;
        path = path.join_attr(name);
    }
    if value.is_null() || value.is_unknown() {
        return None;
    }
    Some((value, path))
}

/// An error diagnostic at `at` (no attribute when `at` is the root).
pub(crate) fn invalid(at: &Path, detail: String) -> Diagnostic {
    let summary = if at.0.is_empty() {
        "Invalid configuration".to_string()
    } else {
        format!("Invalid value for {at}")
    };
    let d = Diagnostic::error(summary, detail);
    if at.0.is_empty() {
        d
    } else {
        d.at(at.clone())
    }
}

/// State of one attribute of an object, as the combination rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// null (not configured)
    Absent,
    /// known and non-null
    Set,
    /// unknown: the rule must not decide
    Unknown,
}

/// Whether attribute `name` of `obj` is configured.
pub(crate) fn presence(obj: &Value, name: &str) -> Presence {
    match obj.get(name) {
        None | Some(Value::Null) => Presence::Absent,
        Some(v) if v.is_unknown() => Presence::Unknown,
        Some(_) => Presence::Set,
    }
}

/// `"a", "b" or "c"` for messages.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the rule tables' tests.
    use std::collections::BTreeMap;

    use crate::cty::Value;

    /// An object from pairs.
    pub(crate) fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// A string value.
    pub(crate) fn s(v: &str) -> Value {
        Value::string(v)
    }
}
