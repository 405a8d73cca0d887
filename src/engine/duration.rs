//! Go duration syntax (`time.ParseDuration`) for `timeouts.*`: `1h30m`, `90s`, `2h45m30.5s`, `1.5h`, `300ms`.
//!
//! Accepted: an optional `+`, then one or more `<decimal><unit>` terms with units `ns`, `us`
//! (`µs`, `μs`), `ms`, `s`, `m`, `h`; or the bare `0`. A leading `-` is refused because every use
//! here is a time limit. Overflow past `u64` nanoseconds is an error, as in Go.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// empty string
    #[error("empty duration")]
    Empty,
    /// a leading `-`
    #[error("negative duration {0:?}")]
    Negative(String),
    /// a term without digits, e.g. `h` or `.s`
    #[error("missing number in duration {0:?}")]
    MissingNumber(String),
    /// a number without a unit, e.g. `90`
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// an unknown unit, e.g. `3d`
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// the unit as written
        unit: String,
        /// the whole input
        input: String,
    },
    /// more than about 584 years
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a Go duration string.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let whole = || input.to_string();
    let mut s = input;
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Some(rest) = s.strip_prefix('-') {
        if rest != "0" {
            return Err(DurationError::Negative(whole()));
        }
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::MissingNumber(whole()));
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::MissingNumber(whole()));
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(whole()));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: whole(),
                })
            }
        };
        total = total
            .checked_add(
                term_nanos(int_part, frac_part, scale)
                    .ok_or_else(|| DurationError::Overflow(whole()))?,
            )
            .ok_or_else(|| DurationError::Overflow(whole()))?;
        if total > u128::from(u64::MAX) {
            return Err(DurationError::Overflow(whole()));
        }
        s = rest;
    }
    let nanos = u64::try_from(total).map_err(|_| DurationError::Overflow(whole()))?;
    Ok(Duration::from_nanos(nanos))
}

/// `int.frac * scale` in nanoseconds, truncating digits below one nanosecond (as Go does).
fn term_nanos(int_part: &str, frac_part: &str, scale: u128) -> Option<u128> {
    let mut value: u128 = 0;
    for d in int_part.bytes() {
        value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    let mut nanos = value.checked_mul(scale)?;
    let mut place = scale;
    for d in frac_part.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(d - b'0') * place)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_duration_forms() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("90s", 90_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("2h45m30.5s", 9_930_500_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("300ms", 300_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("7ns", 7),
            ("1h1h", 7_200_000_000_000),
            ("0.1234567891s", 123_456_789),
        ];
        for (input, nanos) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_nanos(*nanos)),
                "input {input:?}"
            );
        }
    }

    type Check = fn(&DurationError) -> bool;

    #[test]
    fn refuses_malformed_durations() {
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, DurationError::Empty)),
            ("90", |e| matches!(e, DurationError::MissingUnit(_))),
            ("1h30", |e| matches!(e, DurationError::MissingUnit(_))),
            ("h", |e| matches!(e, DurationError::MissingNumber(_))),
            (".s", |e| matches!(e, DurationError::MissingNumber(_))),
            ("+", |e| matches!(e, DurationError::MissingNumber(_))),
            ("3d", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("1 h", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("-1h", |e| matches!(e, DurationError::Negative(_))),
            ("9999999999h", |e| matches!(e, DurationError::Overflow(_))),
        ];
        for (input, check) in cases {
            let err = parse_go_duration(input).expect_err(input);
            assert!(check(&err), "input {input:?} gave {err:?}");
        }
    }
}
