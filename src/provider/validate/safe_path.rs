//! Rule: a path-like string cannot escape its root: no `..` segments, no control characters, and
//! depending on the use no absolute form or no separators at all.

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// What shape of path is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// a relative `a/b/c` (object name prefix)
    Relative,
    /// relative or absolute (the file backend's root directory, a bucket name)
    AnyDirectory,
    /// a single name component (a file name stem)
    Name,
}

/// Refuses `..` segments, control characters and the shapes `Shape` excludes.
pub(crate) struct SafePath(pub(crate) Shape);

/// `publish.prefix`.
pub(crate) static PREFIX: SafePath = SafePath(Shape::Relative);
/// `publish.bucket`.
pub(crate) static BUCKET: SafePath = SafePath(Shape::AnyDirectory);
/// `hyops_state_instance`.
pub(crate) static INSTANCE_NAME: SafePath = SafePath(Shape::Name);

impl AttrRule for SafePath {
    fn description(&self) -> String {
        match self.0 {
            Shape::Relative => "a relative path without .. segments or control characters",
            Shape::AnyDirectory => "a path without .. segments or control characters",
            Shape::Name => "a plain name without /, .. or control characters",
        }
        .to_string()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            diags.push(invalid(
                at,
                format!(
                    "{s:?} contains the control character U+{:04X}: remove it.",
                    u32::from(c)
                ),
            ));
            return;
        }
        let segments = || s.split(['/', '\\']);
        if segments().any(|seg| seg == "..") {
            diags.push(invalid(
                at,
                format!(
                    "{s:?} contains a \"..\" segment, which could escape the storage root: \
                     write the path without \"..\", e.g. \"images/vyos\"."
                ),
            ));
            return;
        }
        match self.0 {
            Shape::Relative if s.starts_with('/') || s.starts_with('\\') => diags.push(invalid(
                at,
                format!(
                    "{s:?} is absolute: write it relative to the bucket, e.g. {:?}.",
                    s.trim_start_matches(['/', '\\'])
                ),
            )),
            Shape::Name if s.is_empty() || s == "." || s.contains(['/', '\\']) => {
                diags.push(invalid(
                    at,
                    format!(
                        "{s:?} is not a plain name: write a single file-name component such as \
                         \"vyos_default_build\" (no \"/\")."
                    ),
                ))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_path_table() {
        let cases: &[(&SafePath, &str, usize)] = &[
            (&PREFIX, "images/vyos", 0),
            (&PREFIX, "images/vyos/", 0),
            (&PREFIX, "images/../etc", 1),
            (&PREFIX, "..", 1),
            (&PREFIX, "/images", 1),
            (&PREFIX, "a\u{7}b", 1),
            (&PREFIX, "a\nb", 1),
            (&PREFIX, "a..b/c", 0),
            (&BUCKET, "/srv/repo", 0),
            (&BUCKET, "/srv/../etc", 1),
            (&BUCKET, "my-bucket", 0),
            (&INSTANCE_NAME, "vyos_default_build", 0),
            (&INSTANCE_NAME, "a/b", 1),
            (&INSTANCE_NAME, "..", 1),
            (&INSTANCE_NAME, "", 1),
            (&INSTANCE_NAME, "x\u{0}", 1),
        ];
        for (rule, v, n) in cases {
            let mut d = Diagnostics::new();
            rule.check(&Value::string(*v), &Path::attr("p"), &mut d);
            assert_eq!(d.len(), *n, "{v:?}: {d:?}");
        }
    }
}
