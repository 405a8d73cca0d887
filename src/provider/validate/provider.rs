//! The rule table of the `provider "hyops"` block.

use super::conflicts_with::ConflictsWith;
use super::int_range::AT_LEAST_ONE;
use super::pattern::SERVICE_ACCOUNT;
use super::url_scheme::HTTP_URL;
use super::{describe, run, AttrCheck, ObjectCheck, RuleDoc};
use crate::cty::Value;
use crate::tfplugin5::Diagnostics;

static ATTRS: &[AttrCheck] = &[
    AttrCheck {
        at: &["gcs_endpoint"],
        rule: &HTTP_URL,
    },
    AttrCheck {
        at: &["s3_endpoint"],
        rule: &HTTP_URL,
    },
    AttrCheck {
        at: &["max_parallel_builds"],
        rule: &AT_LEAST_ONE,
    },
    AttrCheck {
        at: &["gcs_impersonate_service_account"],
        rule: &SERVICE_ACCOUNT,
    },
];

static CREDENTIALS: ConflictsWith = ConflictsWith {
    attr: "gcs_credentials_file",
    other: "gcs_credentials",
};

static OBJECTS: &[ObjectCheck] = &[ObjectCheck {
    at: &[],
    rule: &CREDENTIALS,
}];

/// Static rules of the provider configuration.
pub fn provider_config(config: &Value) -> Diagnostics {
    run(config, ATTRS, OBJECTS)
}

/// The documented rules of the provider block.
pub fn provider_rules() -> Vec<RuleDoc> {
    describe(ATTRS, OBJECTS)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{obj, s};
    use super::*;
    use crate::cty::Number;

    #[test]
    fn provider_rule_table() {
        let cases: Vec<(Value, Option<&str>)> = vec![
            (obj(&[("gcs_endpoint", s("http://127.0.0.1:9023"))]), None),
            (obj(&[("gcs_endpoint", s("gs://x"))]), Some("gcs_endpoint")),
            (
                obj(&[(
                    "gcs_impersonate_service_account",
                    s("publisher@p.iam.gserviceaccount.com"),
                )]),
                None,
            ),
            (
                obj(&[("gcs_impersonate_service_account", s("publisher"))]),
                Some("gcs_impersonate_service_account"),
            ),
            (
                obj(&[("s3_endpoint", s("localhost:9000"))]),
                Some("s3_endpoint"),
            ),
            (
                obj(&[("max_parallel_builds", Value::Number(Number::from_i64(0)))]),
                Some("max_parallel_builds"),
            ),
            (
                obj(&[
                    ("gcs_credentials", s("{}")),
                    ("gcs_credentials_file", s("/k.json")),
                ]),
                Some("gcs_credentials_file"),
            ),
            (
                obj(&[
                    ("gcs_credentials", Value::Unknown),
                    ("gcs_credentials_file", s("/k.json")),
                ]),
                None,
            ),
        ];
        for (cfg, expected) in cases {
            let d = provider_config(&cfg);
            match expected {
                None => assert!(d.is_empty(), "{cfg:?}: {d:?}"),
                Some(p) => {
                    assert_eq!(d.len(), 1, "{cfg:?}: {d:?}");
                    let at = d.0[0].attribute.as_ref().map(ToString::to_string);
                    assert_eq!(at.as_deref(), Some(p));
                }
            }
        }
    }
}
