//! Object rule: exactly one of several attributes is set.

use super::{invalid, presence, quoted_list, ObjectRule, Presence};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// Exactly one of the named attributes must be set. Neither: error at the object; several: error
/// at the second one set.
pub(crate) struct ExactlyOneOf(pub(crate) &'static [&'static str]);

impl ObjectRule for ExactlyOneOf {
    fn description(&self) -> String {
        format!("exactly one of {} must be set", quoted_list(self.0))
    }

    fn check(&self, obj: &Value, at: &Path, diags: &mut Diagnostics) {
        let states: Vec<Presence> = self.0.iter().map(|n| presence(obj, n)).collect();
        if states.contains(&Presence::Unknown) {
            return;
        }
        let set: Vec<&str> = self
            .0
            .iter()
            .zip(&states)
            .filter(|(_, p)| **p == Presence::Set)
            .map(|(n, _)| *n)
            .collect();
        match set.as_slice() {
            [_] => {}
            [] => diags.push(invalid(
                at,
                format!("Set exactly one of {}; none is set.", quoted_list(self.0)),
            )),
            [first, second, ..] => diags.push(invalid(
                &at.join_attr(second),
                format!(
                    "{second} conflicts with {first}: set exactly one of {} and remove the other.",
                    quoted_list(self.0)
                ),
            )),
        }
    }
}
