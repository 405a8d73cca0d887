//! Object rule: an attribute needs another one set with it.

use super::{invalid, presence, ObjectRule, Presence};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// When `attr` is set, `needs` must be set too; error at `attr`.
pub(crate) struct Requires {
    pub(crate) attr: &'static str,
    pub(crate) needs: &'static str,
    pub(crate) why: &'static str,
}

impl ObjectRule for Requires {
    fn description(&self) -> String {
        format!("{} requires {}", self.attr, self.needs)
    }

    fn check(&self, obj: &Value, at: &Path, diags: &mut Diagnostics) {
        if presence(obj, self.attr) == Presence::Set
            && presence(obj, self.needs) == Presence::Absent
        {
            diags.push(invalid(
                &at.join_attr(self.attr),
                format!("{} requires {}: {}", self.attr, self.needs, self.why),
            ));
        }
    }
}
