//! Rule combinator: apply an attribute rule to every known element of a list or set, addressing
//! each problem at `attr[index]`.

use super::AttrRule;
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// Applies the inner rule to each element; unknown and null elements are skipped.
pub(crate) struct Each(pub(crate) &'static dyn AttrRule);

impl AttrRule for Each {
    fn description(&self) -> String {
        format!("each element: {}", self.0.description())
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let (Value::List(items) | Value::Set(items)) = value else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if item.is_null() || item.is_unknown() {
                continue;
            }
            let index = i64::try_from(i).unwrap_or(i64::MAX);
            self.0.check(item, &at.join_index(index), diags);
        }
    }
}
