//! Rule: a string matches a regular expression (artifact keys, SHA-256 digests).

use std::sync::LazyLock;

use regex::Regex;

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::tfplugin5::Diagnostics;

/// A string must match `regex`; `hint` tells the user what a valid value looks like.
pub(crate) struct Pattern {
    regex: &'static LazyLock<Regex>,
    source: &'static str,
    hint: &'static str,
}

static ARTIFACT_KEY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(ARTIFACT_KEY_SRC).unwrap_or_else(|e| panic!("artifact key regex: {e}"))
});
const ARTIFACT_KEY_SRC: &str = "^[a-z0-9][a-z0-9._-]{1,62}$";

static SHA256_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(SHA256_SRC).unwrap_or_else(|e| panic!("sha256 regex: {e}")));
const SHA256_SRC: &str = "^[0-9a-fA-F]{64}$";

/// `artifact_key`: `^[a-z0-9][a-z0-9._-]{1,62}$`.
pub(crate) static ARTIFACT_KEY: Pattern = Pattern {
    regex: &ARTIFACT_KEY_RE,
    source: ARTIFACT_KEY_SRC,
    hint: "write 2 to 63 characters of lowercase letters, digits, '.', '_' or '-', starting \
           with a letter or digit, e.g. \"vyos-1.5-qcow2\"",
};

/// A SHA-256 digest as 64 hex digits.
pub(crate) static SHA256_HEX: Pattern = Pattern {
    regex: &SHA256_RE,
    source: SHA256_SRC,
    hint: "write the ISO's SHA-256 as exactly 64 hex digits (the first field of `sha256sum \
           FILE.iso`), without a \"sha256:\" prefix",
};

static SERVICE_ACCOUNT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(SERVICE_ACCOUNT_SRC).unwrap_or_else(|e| panic!("service account regex: {e}"))
});
const SERVICE_ACCOUNT_SRC: &str = r"^([^@\s/:]+@[^@\s/:]+|[0-9]{10,})$";

/// `gcs_impersonate_service_account`: an e-mail or a numeric unique ID (what IAM Credentials
/// accepts in `projects/-/serviceAccounts/…`).
pub(crate) static SERVICE_ACCOUNT: Pattern = Pattern {
    regex: &SERVICE_ACCOUNT_RE,
    source: SERVICE_ACCOUNT_SRC,
    hint: "write the service account's e-mail, e.g. \"publisher@my-project.iam.gserviceaccount.com\", \
           or its numeric unique ID",
};

impl AttrRule for Pattern {
    fn description(&self) -> String {
        format!("must match {}", self.source)
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        if !self.regex.is_match(s) {
            diags.push(invalid(
                at,
                format!("{s:?} does not match {}: {}.", self.source, self.hint),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(rule: &Pattern, v: &str) -> usize {
        let mut d = Diagnostics::new();
        rule.check(&Value::string(v), &Path::attr("x"), &mut d);
        d.len()
    }

    #[test]
    fn artifact_key_pattern_table() {
        let cases = [
            ("vyos-1.5_qcow2", 0),
            ("a1", 0),
            (&"a".repeat(63)[..], 0),
            (&"a".repeat(64)[..], 1),
            ("a", 1),
            ("-vyos", 1),
            ("Vyos", 1),
            ("vyos/x", 1),
            ("vyos x", 1),
            ("", 1),
        ];
        for (v, n) in cases {
            assert_eq!(errors(&ARTIFACT_KEY, v), n, "{v:?}");
        }
    }

    #[test]
    fn sha256_pattern_table() {
        let good = "ab".repeat(32);
        let cases = [
            (good.clone(), 0),
            (good.to_uppercase(), 0),
            (good[..63].to_string(), 1),
            (format!("{good}0"), 1),
            (format!("sha256:{}", &good[..57]), 1),
            ("zz".repeat(32), 1),
        ];
        for (v, n) in cases {
            assert_eq!(errors(&SHA256_HEX, &v), n, "{v:?}");
        }
    }
}
