//! Go `time.ParseDuration` syntax for `timeouts.*` (`3h`, `30m`, `1h30m`, `90s`, `1.5h`, `500ms`).
//! Negative durations are refused (a timeout cannot be negative).

use std::time::Duration;

/// A duration string that is not Go syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (Go syntax, e.g. \"3h\", \"1h30m\", \"90s\")")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parse a Go duration string.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let mut s = input.trim();
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = s[..num_len].parse().map_err(|_| err("bad number"))?;
        s = &s[num_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        total += value * seconds;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(err("out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("3h", 10_800.0),
            ("30m", 1_800.0),
            ("1h30m", 5_400.0),
            ("1.5h", 5_400.0),
            ("90s", 90.0),
            ("500ms", 0.5),
            ("0", 0.0),
        ];
        for (input, secs) in cases {
            assert_eq!(
                parse_go_duration(input).unwrap(),
                Duration::from_secs_f64(secs),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_bad_forms() {
        for input in ["", "3", "h", "-1h", "3x", "1h-2m"] {
            assert!(parse_go_duration(input).is_err(), "{input}");
        }
    }
}
