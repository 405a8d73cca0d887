//! Lossless cty numbers.

use std::fmt;

/// An arbitrary-precision number, kept as its canonical decimal text so that values such as
/// `u64::MAX`, `2^53+1` or `1e400` survive a round trip unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number(String);

impl Number {
    /// From a signed integer.
    pub fn from_i64(v: i64) -> Number {
        Number(v.to_string())
    }
    /// From an unsigned integer.
    pub fn from_u64(v: u64) -> Number {
        Number(v.to_string())
    }
    /// The decimal text (canonical form decided by the codec module).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Wraps decimal text that the caller has already validated as a number.
    pub(crate) fn from_decimal_unchecked(s: String) -> Number {
        Number(s)
    }
    /// As `i64` when the number is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
    /// As `u64` when the number is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
    /// As the nearest `f64` (may lose precision).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
