//! Object rule: at least one of several attributes is set.

use super::{invalid, presence, quoted_list, ObjectRule, Presence};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// At least one of the named attributes must be set; error at the object otherwise.
pub(crate) struct AtLeastOneOf {
    pub(crate) names: &'static [&'static str],
    pub(crate) why: &'static str,
}

impl ObjectRule for AtLeastOneOf {
    fn description(&self) -> String {
        format!("at least one of {} must be set", quoted_list(self.names))
    }

    fn check(&self, obj: &Value, at: &Path, diags: &mut Diagnostics) {
        if self
            .names
            .iter()
            .all(|n| presence(obj, n) == Presence::Absent)
        {
            diags.push(invalid(
                at,
                format!(
                    "Set at least one of {}: {}",
                    quoted_list(self.names),
                    self.why
                ),
            ));
        }
    }
}
