//! Rule: a file path does not end in `/` (it names a file, not a directory).

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// The value must not end in `/`.
pub(crate) struct NoTrailingSlash;

/// `artifact_local_path`.
pub(crate) static FILE_PATH: NoTrailingSlash = NoTrailingSlash;

impl AttrRule for NoTrailingSlash {
    fn description(&self) -> String {
        "a file path (must not end in /)".to_string()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        if s.is_empty() {
            diags.push(invalid(
                at,
                "The path is empty: write the artifact's file path, e.g. \
                 \"/var/lib/images/vyos.qcow2\", or omit the attribute for the default."
                    .to_string(),
            ));
        } else if s.ends_with('/') {
            diags.push(invalid(
                at,
                format!(
                    "{s:?} ends in \"/\" but must name a file: write e.g. \"{}vyos.qcow2\".",
                    s
                ),
            ));
        }
    }
}
