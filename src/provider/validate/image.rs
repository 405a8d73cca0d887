//! The rule table of resource `hyops_vyos_image`.

use super::at_least_one_of::AtLeastOneOf;
use super::each::Each;
use super::env_names::PASSABLE_ENV_NAME;
use super::go_duration::GO_DURATION;
use super::int_range::DISK_SIZE_GB;
use super::no_trailing_slash::FILE_PATH;
use super::one_of::{ARTIFACT_FORMAT, BACKEND, BUILD_METHOD, CONSOLE, EXTRA_FORMAT, GUEST_AGENT};
use super::pattern::{ARTIFACT_KEY, SHA256_HEX};
use super::requires::Requires;
use super::safe_path::{BUCKET, INSTANCE_NAME, PREFIX};
use super::unique::UNIQUE;
use super::url_scheme::{HTTP_URL, ISO_URL};
use super::url_secrets::{MIRROR_URL_SECRETS, SOURCE_URL_SECRETS};
use super::{describe, run, AttrCheck, ObjectCheck, RuleDoc};
use crate::cty::Value;
use crate::tfplugin5::Diagnostics;

static EACH_EXTRA_FORMAT: Each = Each(&EXTRA_FORMAT);
static EACH_PASSABLE_ENV_NAME: Each = Each(&PASSABLE_ENV_NAME);

static ATTRS: &[AttrCheck] = &[
    AttrCheck {
        at: &["artifact_key"],
        rule: &ARTIFACT_KEY,
    },
    AttrCheck {
        at: &["artifact_format"],
        rule: &ARTIFACT_FORMAT,
    },
    AttrCheck {
        at: &["additional_formats"],
        rule: &EACH_EXTRA_FORMAT,
    },
    AttrCheck {
        at: &["additional_formats"],
        rule: &UNIQUE,
    },
    AttrCheck {
        at: &["source_iso_url"],
        rule: &ISO_URL,
    },
    AttrCheck {
        at: &["source_iso_mirror_url"],
        rule: &ISO_URL,
    },
    AttrCheck {
        at: &["source_iso_url"],
        rule: &SOURCE_URL_SECRETS,
    },
    AttrCheck {
        at: &["source_iso_mirror_url"],
        rule: &MIRROR_URL_SECRETS,
    },
    AttrCheck {
        at: &["source_iso_sha256"],
        rule: &SHA256_HEX,
    },
    AttrCheck {
        at: &["artifact_local_path"],
        rule: &FILE_PATH,
    },
    AttrCheck {
        at: &["hyops_state_instance"],
        rule: &INSTANCE_NAME,
    },
    AttrCheck {
        at: &["build", "method"],
        rule: &BUILD_METHOD,
    },
    AttrCheck {
        at: &["build", "console"],
        rule: &CONSOLE,
    },
    AttrCheck {
        at: &["build", "guest_agent"],
        rule: &GUEST_AGENT,
    },
    AttrCheck {
        at: &["build", "disk_size_gb"],
        rule: &DISK_SIZE_GB,
    },
    AttrCheck {
        at: &["build", "pass_environment"],
        rule: &EACH_PASSABLE_ENV_NAME,
    },
    AttrCheck {
        at: &["publish", "backend"],
        rule: &BACKEND,
    },
    AttrCheck {
        at: &["publish", "bucket"],
        rule: &BUCKET,
    },
    AttrCheck {
        at: &["publish", "prefix"],
        rule: &PREFIX,
    },
    AttrCheck {
        at: &["publish", "public_base_url"],
        rule: &HTTP_URL,
    },
    AttrCheck {
        at: &["timeouts", "create"],
        rule: &GO_DURATION,
    },
    AttrCheck {
        at: &["timeouts", "delete"],
        rule: &GO_DURATION,
    },
];

static WO_VERSION_NEEDS_WO: Requires = Requires {
    attr: "gcs_credentials_wo_version",
    needs: "gcs_credentials_wo",
    why: "the version only labels a write-only credential; set gcs_credentials_wo as well or \
          remove gcs_credentials_wo_version.",
};

static PUBLISH_TARGET: AtLeastOneOf = AtLeastOneOf {
    names: &["repo_state_ref", "bucket", "command"],
    why: "the publish block needs a destination. Write repo_state_ref = \
          \"org/gcp/object-repo#vyos_artifacts\" (preferred), a bucket with a backend, or a \
          publish command; remove the block to build locally only.",
};

static OBJECTS: &[ObjectCheck] = &[
    ObjectCheck {
        at: &[],
        rule: &WO_VERSION_NEEDS_WO,
    },
    ObjectCheck {
        at: &["publish"],
        rule: &PUBLISH_TARGET,
    },
];

/// Static rules of a `hyops_vyos_image` configuration.
pub fn resource_config(config: &Value) -> Diagnostics {
    run(config, ATTRS, OBJECTS)
}

/// The documented rules of `hyops_vyos_image`.
pub fn resource_rules() -> Vec<RuleDoc> {
    describe(ATTRS, OBJECTS)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{obj, s};
    use super::*;
    use crate::cty::Number;

    fn good() -> Value {
        obj(&[
            ("artifact_key", s("vyos-1.5-qcow2")),
            ("artifact_format", s("qcow2")),
            (
                "additional_formats",
                Value::List(vec![s("raw.xz"), s("raw.zst")]),
            ),
            ("source_iso_url", s("https://example.com/vyos.iso")),
            ("source_iso_sha256", s(&"a".repeat(64))),
            (
                "build",
                obj(&[
                    ("method", s("packer")),
                    ("disk_size_gb", Value::Number(Number::from_i64(10))),
                ]),
            ),
            (
                "publish",
                obj(&[
                    ("bucket", s("/srv/repo")),
                    ("backend", s("file")),
                    ("prefix", s("img")),
                ]),
            ),
            ("timeouts", obj(&[("create", s("1h30m"))])),
        ])
    }

    fn with(base: &Value, path: &[&str], v: Value) -> Value {
        let Value::Object(mut m) = base.clone() else {
            unreachable!()
        };
        if let [name] = path {
            m.insert(name.to_string(), v);
        } else {
            let inner = m.get(path[0]).cloned().unwrap_or_else(|| obj(&[]));
            m.insert(path[0].to_string(), with(&inner, &path[1..], v));
        }
        Value::Object(m)
    }

    #[test]
    fn good_config_has_no_diagnostics() {
        assert_eq!(resource_config(&good()), Diagnostics::new());
    }

    #[test]
    fn each_bad_value_is_one_error_at_its_path() {
        let cases: Vec<(&[&str], Value, &str)> = vec![
            (&["artifact_key"], s("Bad Key"), "artifact_key"),
            (&["artifact_format"], s("vmdk"), "artifact_format"),
            (
                &["additional_formats"],
                Value::List(vec![s("raw.xz"), s("zip")]),
                "additional_formats[1]",
            ),
            (
                &["additional_formats"],
                Value::List(vec![s("raw.xz"), s("raw.xz")]),
                "additional_formats[1]",
            ),
            (&["source_iso_url"], s("ftp://x/y.iso"), "source_iso_url"),
            (
                &["source_iso_mirror_url"],
                s("nope"),
                "source_iso_mirror_url",
            ),
            (&["source_iso_sha256"], s("abc"), "source_iso_sha256"),
            (
                &["artifact_local_path"],
                s("/var/img/"),
                "artifact_local_path",
            ),
            (&["hyops_state_instance"], s("../x"), "hyops_state_instance"),
            (&["build", "method"], s("docker"), "build.method"),
            (&["build", "console"], s("vga"), "build.console"),
            (&["build", "guest_agent"], s("spice"), "build.guest_agent"),
            (
                &["build", "disk_size_gb"],
                Value::Number(Number::from_i64(0)),
                "build.disk_size_gb",
            ),
            (&["publish", "backend"], s("ftp"), "publish.backend"),
            (&["publish", "prefix"], s("/abs"), "publish.prefix"),
            (&["publish", "prefix"], s("a/../b"), "publish.prefix"),
            (&["publish", "bucket"], s("/srv/../etc"), "publish.bucket"),
            (
                &["publish", "public_base_url"],
                s("ftp://x"),
                "publish.public_base_url",
            ),
            (&["timeouts", "create"], s("3 days"), "timeouts.create"),
            (&["timeouts", "delete"], s("1d"), "timeouts.delete"),
            (
                &["gcs_credentials_wo_version"],
                s("1"),
                "gcs_credentials_wo_version",
            ),
        ];
        for (path, v, expected) in cases {
            let d = resource_config(&with(&good(), path, v));
            assert_eq!(d.len(), 1, "{expected}: {d:?}");
            assert!(d.has_errors());
            let at = d.0[0].attribute.as_ref().map(ToString::to_string);
            assert_eq!(at.as_deref(), Some(expected));
        }
    }

    #[test]
    fn publish_without_destination_is_an_error_at_the_block() {
        let cfg = with(&good(), &["publish"], obj(&[("prefix", s("p"))]));
        let d = resource_config(&cfg);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d.0[0]
                .attribute
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("publish")
        );
    }

    #[test]
    fn unknown_values_pass() {
        let mut cfg = good();
        for path in [
            &["artifact_key"][..],
            &["source_iso_sha256"],
            &["build", "method"],
            &["publish", "bucket"],
            &["publish", "prefix"],
            &["timeouts", "create"],
            &["gcs_credentials_wo_version"],
        ] {
            cfg = with(&cfg, path, Value::Unknown);
        }
        cfg = with(
            &cfg,
            &["additional_formats"],
            Value::List(vec![Value::Unknown, s("raw.xz")]),
        );
        assert_eq!(resource_config(&cfg), Diagnostics::new());
        let whole_block_unknown = with(&good(), &["publish"], Value::Unknown);
        assert_eq!(resource_config(&whole_block_unknown), Diagnostics::new());
    }
}
