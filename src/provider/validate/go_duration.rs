//! Rule: a string is a Go duration (`1h30m`, `90s`, `2h45m30.5s`), as the `timeouts` block takes.

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::engine::duration::parse_go_duration;
use crate::tfplugin5::Diagnostics;

/// The value must parse as a positive Go duration.
pub(crate) struct GoDuration;

/// `timeouts.create`, `timeouts.delete`.
pub(crate) static GO_DURATION: GoDuration = GoDuration;

impl AttrRule for GoDuration {
    fn description(&self) -> String {
        "a Go duration such as \"3h\", \"1h30m\" or \"90s\"".to_string()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        match parse_go_duration(s) {
            Ok(d) if d.is_zero() => diags.push(invalid(
                at,
                format!("{s:?} is zero: write a positive duration such as \"30m\" or \"3h\"."),
            )),
            Ok(_) => {}
            Err(e) => diags.push(invalid(
                at,
                format!(
                    "{e}: write a Go duration such as \"3h\", \"1h30m\" or \"90s\" (units ns, \
                     us, ms, s, m, h; no days)."
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_rule_table() {
        let cases = [
            ("3h", 0),
            ("1h30m", 0),
            ("2h45m30.5s", 0),
            ("0", 1),
            ("3d", 1),
            ("90", 1),
        ];
        for (v, n) in cases {
            let mut d = Diagnostics::new();
            GO_DURATION.check(&Value::string(v), &Path::attr("t"), &mut d);
            assert_eq!(d.len(), n, "{v:?}");
        }
    }
}
