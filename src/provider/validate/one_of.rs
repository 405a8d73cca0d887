//! Rule: a string is one of a fixed set of spellings.

use super::{invalid, quoted_list, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// The value must be one of `values` (exact spelling).
pub(crate) struct OneOf(pub(crate) &'static [&'static str]);

/// `artifact_format`.
pub(crate) static ARTIFACT_FORMAT: OneOf = OneOf(&["qcow2", "raw", "img"]);
/// entries of `additional_formats`.
pub(crate) static EXTRA_FORMAT: OneOf = OneOf(&["raw.xz", "raw.zst", "raw.gz", "qcow2"]);
/// `build.method`.
pub(crate) static BUILD_METHOD: OneOf = OneOf(&["vyos-vm-images", "packer", "command"]);
/// `build.console`.
pub(crate) static CONSOLE: OneOf = OneOf(&["kvm", "serial"]);
/// `build.guest_agent` (vyos-vm-images knows `qemu` and `vmware`; `none` installs no agent).
pub(crate) static GUEST_AGENT: OneOf = OneOf(&["qemu", "vmware", "none"]);
/// `publish.backend`.
pub(crate) static BACKEND: OneOf = OneOf(&["gcs", "s3", "azure", "file"]);

impl AttrRule for OneOf {
    fn description(&self) -> String {
        format!("one of {}", quoted_list(self.0))
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        if !self.0.contains(&s) {
            diags.push(invalid(
                at,
                format!("{s:?} is not supported: write {}.", quoted_list(self.0)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_accepts_only_exact_spellings() {
        let cases = [
            ("qcow2", 0),
            ("raw", 0),
            ("img", 0),
            ("QCOW2", 1),
            ("vmdk", 1),
            ("", 1),
        ];
        for (v, n) in cases {
            let mut d = Diagnostics::new();
            ARTIFACT_FORMAT.check(&Value::string(v), &Path::attr("artifact_format"), &mut d);
            assert_eq!(d.len(), n, "{v:?}");
            if n == 1 {
                assert!(d.0[0].detail.contains("\"qcow2\", \"raw\" or \"img\""));
            }
        }
    }
}
