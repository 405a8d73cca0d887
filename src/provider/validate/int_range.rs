//! Rule: a number is a whole number within a range.

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// The value must be a whole number in `min..=max`.
pub(crate) struct IntRange {
    pub(crate) min: i64,
    pub(crate) max: i64,
}

/// `build.disk_size_gb`: 2..=2048 (the engine refuses smaller disks: a VyOS install needs them).
pub(crate) static DISK_SIZE_GB: IntRange = IntRange { min: 2, max: 2048 };
/// `max_parallel_builds`: at least 1.
pub(crate) static AT_LEAST_ONE: IntRange = IntRange {
    min: 1,
    max: u32::MAX as i64,
};

impl IntRange {
    fn wanted(&self) -> String {
        if self.max == u32::MAX as i64 {
            format!("a whole number of at least {}", self.min)
        } else {
            format!("a whole number from {} to {}", self.min, self.max)
        }
    }
}

impl AttrRule for IntRange {
    fn description(&self) -> String {
        self.wanted()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(n) = value.as_number() else { return };
        let ok = match n.as_i64() {
            Some(i) => (self.min..=self.max).contains(&i),
            // not an i64 literal: accept only an integral float in range (e.g. "10.0")
            None => n
                .as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f >= self.min as f64 && f <= self.max as f64),
        };
        if !ok {
            diags.push(invalid(
                at,
                format!("{n} is out of range: write {}.", self.wanted()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Number;

    #[test]
    fn int_range_table() {
        let cases: &[(Value, usize)] = &[
            (Value::Number(Number::from_i64(2)), 0),
            (Value::Number(Number::from_i64(2048)), 0),
            (Value::Number(Number::from_i64(1)), 1),
            (Value::Number(Number::from_i64(0)), 1),
            (Value::Number(Number::from_i64(2049)), 1),
            (Value::Number(Number::from_i64(-5)), 1),
            (Value::Number(Number::from_u64(u64::MAX)), 1),
        ];
        for (v, n) in cases {
            let mut d = Diagnostics::new();
            DISK_SIZE_GB.check(v, &Path::attr("d"), &mut d);
            assert_eq!(d.len(), *n, "{v:?}");
        }
    }
}
