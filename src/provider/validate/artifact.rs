//! The rule table of data source `hyops_vyos_artifact`.

use super::exactly_one_of::ExactlyOneOf;
use super::pattern::ARTIFACT_KEY;
use super::requires::Requires;
use super::url_scheme::MANIFEST_URL;
use super::{describe, run, AttrCheck, ObjectCheck, RuleDoc};
use crate::cty::Value;
use crate::tfplugin5::Diagnostics;

static ATTRS: &[AttrCheck] = &[
    AttrCheck {
        at: &["manifest_url"],
        rule: &MANIFEST_URL,
    },
    AttrCheck {
        at: &["artifact_key"],
        rule: &ARTIFACT_KEY,
    },
];

static ONE_SOURCE: ExactlyOneOf = ExactlyOneOf(&["manifest_url", "artifact_state_ref"]);

static STATE_REF_NEEDS_KEY: Requires = Requires {
    attr: "artifact_state_ref",
    needs: "artifact_key",
    why: "a HyOps build state can hold several artifacts; add artifact_key = \"…\" naming the \
          one to read.",
};

static OBJECTS: &[ObjectCheck] = &[
    ObjectCheck {
        at: &[],
        rule: &ONE_SOURCE,
    },
    ObjectCheck {
        at: &[],
        rule: &STATE_REF_NEEDS_KEY,
    },
];

/// Static rules of a `hyops_vyos_artifact` configuration.
pub fn data_source_config(config: &Value) -> Diagnostics {
    run(config, ATTRS, OBJECTS)
}

/// The documented rules of `hyops_vyos_artifact`.
pub fn data_source_rules() -> Vec<RuleDoc> {
    describe(ATTRS, OBJECTS)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{obj, s};
    use super::*;

    fn at(d: &Diagnostics) -> Option<String> {
        d.0.first()
            .and_then(|x| x.attribute.as_ref())
            .map(ToString::to_string)
    }

    #[test]
    fn data_source_rule_table() {
        let ok_manifest = obj(&[("manifest_url", s("gs://b/p/manifest.json"))]);
        let ok_ref = obj(&[
            (
                "artifact_state_ref",
                s("core/shared/vyos-image-build#vyos_default_build"),
            ),
            ("artifact_key", s("vyos-default")),
        ]);
        assert!(data_source_config(&ok_manifest).is_empty());
        assert!(data_source_config(&ok_ref).is_empty());

        let none = data_source_config(&obj(&[("verify", Value::Bool(true))]));
        assert_eq!(none.len(), 1);
        assert_eq!(at(&none), None);

        let both = data_source_config(&obj(&[
            ("manifest_url", s("gs://b/manifest.json")),
            ("artifact_state_ref", s("a/b#c")),
            ("artifact_key", s("vyos")),
        ]));
        assert_eq!(both.len(), 1, "{both:?}");
        assert_eq!(at(&both).as_deref(), Some("artifact_state_ref"));

        let no_key = data_source_config(&obj(&[("artifact_state_ref", s("a/b#c"))]));
        assert_eq!(no_key.len(), 1);
        assert_eq!(at(&no_key).as_deref(), Some("artifact_state_ref"));

        let bad_url = data_source_config(&obj(&[("manifest_url", s("http://x/m.json"))]));
        assert_eq!(at(&bad_url).as_deref(), Some("manifest_url"));

        let unknown = data_source_config(&obj(&[
            ("manifest_url", Value::Unknown),
            ("artifact_state_ref", Value::Null),
        ]));
        assert!(unknown.is_empty());
    }
}
