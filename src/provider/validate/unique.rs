//! Rule: the known elements of a list are distinct.

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// Each duplicate after its first occurrence is an error at its own index.
pub(crate) struct Unique;

/// `additional_formats`.
pub(crate) static UNIQUE: Unique = Unique;

impl AttrRule for Unique {
    fn description(&self) -> String {
        "elements must be distinct".to_string()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Value::List(items) = value else { return };
        for (i, item) in items.iter().enumerate() {
            if !item.is_wholly_known() || item.is_null() {
                continue;
            }
            if let Some(first) = items[..i].iter().position(|earlier| earlier == item) {
                let shown = item
                    .as_str()
                    .map_or_else(|| format!("{item:?}"), |s| format!("{s:?}"));
                let index = i64::try_from(i).unwrap_or(i64::MAX);
                diags.push(invalid(
                    &at.join_index(index),
                    format!("{shown} is already listed at index {first}: list each entry once."),
                ));
            }
        }
    }
}
