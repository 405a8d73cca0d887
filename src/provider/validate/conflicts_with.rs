//! Object rule: two attributes must not both be set.

use super::{invalid, presence, ObjectRule, Presence};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// `attr` must not be set together with `other`; error at `attr`.
pub(crate) struct ConflictsWith {
    pub(crate) attr: &'static str,
    pub(crate) other: &'static str,
}

impl ObjectRule for ConflictsWith {
    fn description(&self) -> String {
        format!("{} conflicts with {}", self.attr, self.other)
    }

    fn check(&self, obj: &Value, at: &Path, diags: &mut Diagnostics) {
        if presence(obj, self.attr) == Presence::Set && presence(obj, self.other) == Presence::Set {
            diags.push(invalid(
                &at.join_attr(self.attr),
                format!(
                    "{} conflicts with {}: set only one of them.",
                    self.attr, self.other
                ),
            ));
        }
    }
}
