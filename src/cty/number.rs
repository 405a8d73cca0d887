//! Lossless cty numbers, kept as canonical decimal text.
//!
//! cty numbers are arbitrary-precision (Go's `big.Float` with 512 bits). This module never rounds:
//! a [`Number`] is the exact decimal value it was built from, so `u64::MAX`, `2^53+1`, `1e400`,
//! `0.1` or the 36-digit π literal survive any decode/encode round trip unchanged.
//!
//! # Canonical form
//! Every `Number` holds exactly one spelling of its value, so `==` on numbers is numeric equality:
//! - an optional `-` (never for zero, never `+`), then the significant digits with no leading or
//!   trailing zeros (`"1e2"` → `"100"`, `"1.500"` → `"1.5"`, `"-0.0"` → `"0"`);
//! - with `n` the position of the decimal point relative to the first significant digit
//!   (value = `0.DIGITS × 10^n`), the same rule as JavaScript's `Number#toString`:
//!   - integers with `n ≤ 21` are written out in full: `"100"`, `"18446744073709551615"`;
//!   - other numbers with `0 < n ≤ 21` as plain decimals: `"3.14"`;
//!   - numbers with `-6 < n ≤ 0` as `"0.000123"`;
//!   - everything else in scientific notation, one digit before the point and a bare exponent
//!     (no `+`): `"1e400"`, `"-1e-400"`, `"1.5e300"`, `"1e21"`.
//!
//! Binary floats (msgpack float32/float64) become their **exact** decimal value, the way cty's
//! `NumberFloatVal` keeps the exact binary value: float64 `0.1` is
//! `0.1000000000000000055511151231257827021181583404541015625`, which the msgpack encoder writes back
//! as the same float64. The decimal `"0.1"` (from JSON, HCL or a msgpack string) is a different
//! number and travels as the string `"0.1"`, as cty writes it.
//!
//! Caveat: cty also has ±infinity; they cannot be represented here and are refused by the codecs.
//! Exponents beyond ±1 000 000 000 are refused too (no real configuration reaches them).

use std::fmt;
use std::str::FromStr;

use super::CtyError;

/// Largest decimal exponent accepted when parsing (guards against absurd inputs).
const MAX_EXPONENT: i64 = 1_000_000_000;

/// An arbitrary-precision number, kept as its canonical decimal text (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number(String);

/// A parsed decimal: `(-1)^negative × digits × 10^exp`, `digits` without leading or trailing
/// zeros; zero is `digits == ""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    pub(crate) digits: String,
    pub(crate) exp: i64,
}

impl Decimal {
    /// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (at least one mantissa digit).
    pub(crate) fn parse(s: &str) -> Option<Decimal> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = b.first() {
            if c == b'-' || c == b'+' {
                negative = c == b'-';
                i = 1;
            }
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &s[int_start..i];
        let mut frac_part = "";
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let fs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &s[fs..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                exp_negative = b[i] == b'-';
                i += 1;
            }
            let es = i;
            while i < b.len() && b[i].is_ascii_digit() {
                // saturate: anything past MAX_EXPONENT is refused below anyway
                exp = exp
                    .saturating_mul(10)
                    .saturating_add(i64::from(b[i] - b'0'))
                    .min(MAX_EXPONENT * 4);
                i += 1;
            }
            if es == i {
                return None;
            }
            if exp_negative {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        let frac_len = i64::try_from(frac_part.len()).ok()?;
        let mut exp = exp.checked_sub(frac_len)?;
        let all = format!("{int_part}{frac_part}");
        let trimmed_lead = all.trim_start_matches('0');
        let digits = trimmed_lead.trim_end_matches('0');
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits: String::new(),
                exp: 0,
            });
        }
        exp = exp.checked_add(i64::try_from(trimmed_lead.len() - digits.len()).ok()?)?;
        let point = exp.checked_add(i64::try_from(digits.len()).ok()?)?;
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&point) {
            return None;
        }
        Some(Decimal {
            negative,
            digits: digits.to_string(),
            exp,
        })
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Position of the decimal point relative to the first digit (value = 0.DIGITS × 10^point).
    fn point(&self) -> i64 {
        self.exp + self.digits.len() as i64
    }

    /// True when the value is an integer.
    pub(crate) fn is_integer(&self) -> bool {
        self.exp >= 0
    }

    /// The canonical text (see the module docs).
    fn render(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        let d = &self.digits;
        let n = self.point();
        if self.exp >= 0 && n <= 21 {
            out.push_str(d);
            out.extend(std::iter::repeat_n('0', self.exp as usize));
        } else if 0 < n && n <= 21 {
            let (a, b) = d.split_at(n as usize);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        } else if -6 < n && n <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-n) as usize));
            out.push_str(d);
        } else {
            let (a, b) = d.split_at(1);
            out.push_str(a);
            if !b.is_empty() {
                out.push('.');
                out.push_str(b);
            }
            out.push('e');
            out.push_str(&(n - 1).to_string());
        }
        out
    }
}

impl Number {
    /// From a signed integer.
    pub fn from_i64(v: i64) -> Number {
        Number(v.to_string())
    }
    /// From an unsigned integer.
    pub fn from_u64(v: u64) -> Number {
        Number(v.to_string())
    }
    /// The exact decimal value of a binary float (`None` for NaN and ±infinity).
    ///
    /// Exact, like cty's `NumberFloatVal`: `from_f64(0.1)` is
    /// `0.1000000000000000055511151231257827021181583404541015625`, not `0.1` (use
    /// [`Number::parse`] for decimal literals). Integral floats are plain integers (`2.0` → `"2"`).
    pub fn from_f64(v: f64) -> Option<Number> {
        if !v.is_finite() {
            return None;
        }
        // An f64's exact decimal expansion has at most 767 significant digits; Rust's formatter
        // produces exact digits for any requested precision.
        let text = format!("{v:.800e}");
        Number::parse(&text).ok()
    }
    /// Parses decimal text (`[+-]digits[.digits][e[+-]digits]`) into canonical form.
    pub fn parse(s: &str) -> Result<Number, CtyError> {
        Decimal::parse(s)
            .map(|d| Number(d.render()))
            .ok_or(CtyError::InvalidNumber)
    }
    /// The canonical decimal text (see the module docs).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Wraps decimal text; canonicalizes it when it parses, keeps it verbatim otherwise.
    #[allow(dead_code)]
    pub(crate) fn from_decimal_unchecked(s: String) -> Number {
        match Decimal::parse(&s) {
            Some(d) => Number(d.render()),
            None => Number(s),
        }
    }
    /// The parsed form of the canonical text.
    pub(crate) fn decimal(&self) -> Option<Decimal> {
        Decimal::parse(&self.0)
    }
    /// True when the number is an integer (of any size).
    pub fn is_integer(&self) -> bool {
        self.decimal().is_some_and(|d| d.is_integer())
    }
    /// As `i64` when the number is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
    /// As `u64` when the number is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
    /// As the nearest `f64` (may lose precision; ±infinity or ±0 beyond the f64 range).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }
    /// The `f64` whose exact value equals this number, if there is one (so encoding it as a
    /// binary float loses nothing).
    pub fn to_exact_f64(&self) -> Option<f64> {
        let d = self.decimal()?;
        if d.digits.len() > 767 {
            return None;
        }
        let f: f64 = self.0.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        (Number::from_f64(f)? == *self).then_some(f)
    }
}

impl FromStr for Number {
    type Err = CtyError;
    fn from_str(s: &str) -> Result<Number, CtyError> {
        Number::parse(s)
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        Number::from_i64(v)
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        Number::from_u64(v)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("1e2", "100"),
            ("100.00", "100"),
            ("+7", "7"),
            ("-0.0", "0"),
            ("0", "0"),
            ("000.5000", "0.5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1E400", "1e400"),
            ("-1e-400", "-1e-400"),
            ("10e399", "1e400"),
            ("1e21", "1e21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("123.456e1", "1234.56"),
            ("1.5e300", "1.5e300"),
            ("18446744073709551617", "18446744073709551617"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Number::parse(input).unwrap().as_str(),
                want,
                "input {input}"
            );
        }
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "0x10", "inf", "NaN", "1.2.3", " 1", "1_0",
        ] {
            assert!(Number::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(Number::parse("1e9999999999").is_err());
        assert!(Number::parse("1e99999999999999999999999999999").is_err());
    }

    #[test]
    fn floats_are_exact() {
        assert_eq!(
            Number::from_f64(0.1).unwrap().as_str(),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_eq!(Number::from_f64(2.0).unwrap().as_str(), "2");
        assert_eq!(Number::from_f64(-0.0).unwrap().as_str(), "0");
        assert_eq!(Number::from_f64(f64::NAN), None);
        let tiny = Number::from_f64(f64::from_bits(1)).unwrap();
        assert_eq!(tiny.to_exact_f64(), Some(f64::from_bits(1)));
        assert_eq!(Number::parse("0.5").unwrap().to_exact_f64(), Some(0.5));
        assert_eq!(Number::parse("0.1").unwrap().to_exact_f64(), None);
        assert_eq!(Number::parse("1e400").unwrap().to_exact_f64(), None);
    }
}
