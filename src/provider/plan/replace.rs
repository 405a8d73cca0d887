//! Plan rule: which input changes force replacement, with exact attribute paths.
//!
//! Every configurable attribute is a build or publish input except those in [`IN_PLACE`] and
//! write-only ones (never in state, so never comparable). Blocks are compared attribute by
//! attribute, an absent block counting as all-null attributes, so `build.method` is reported
//! rather than `build`. An unknown proposed value counts as a change.

use crate::cty::{Path, Value};
use crate::provider::schema::vyos_image_schema;
use crate::tfplugin5::schema::Block;

/// Attribute paths (dotted) whose changes update in place.
pub const IN_PLACE: &[&str] = &[
    "timeouts",
    "notes",
    "publish.retain_on_destroy",
    "publish.chunk_size_mib",
    "build.pass_environment",
    "gcs_credentials_wo_version",
];

fn in_place(path: &Path) -> bool {
    let dotted = path.to_string();
    IN_PLACE.contains(&dotted.as_str())
}

/// Paths of build/publish inputs that differ between `prior` and `proposed`.
pub(super) fn changed_inputs(prior: &Value, proposed: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    diff_block(
        &vyos_image_schema().block,
        &Path::root(),
        prior,
        proposed,
        &mut out,
    );
    out
}

fn diff_block(block: &Block, at: &Path, prior: &Value, proposed: &Value, out: &mut Vec<Path>) {
    for attr in &block.attributes {
        // computed-only attributes are outputs, write-only ones never reach state
        if (attr.computed && !attr.optional) || attr.write_only {
            continue;
        }
        let path = at.join_attr(&attr.name);
        if in_place(&path) {
            continue;
        }
        if differs(field(prior, &attr.name), field(proposed, &attr.name)) {
            out.push(path);
        }
    }
    for nested in &block.block_types {
        let path = at.join_attr(&nested.type_name);
        if in_place(&path) {
            continue;
        }
        let (p, n) = (
            field(prior, &nested.type_name),
            field(proposed, &nested.type_name),
        );
        if n.is_unknown() || p.is_unknown() {
            out.push(path);
            continue;
        }
        diff_block(&nested.block, &path, p, n, out);
    }
}

/// The attribute `name` of an object; null when the object (or the attribute) is null.
fn field<'v>(obj: &'v Value, name: &str) -> &'v Value {
    obj.get(name).unwrap_or(&Value::Null)
}

fn differs(prior: &Value, proposed: &Value) -> bool {
    !proposed.is_wholly_known() || prior != proposed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_build_trigger_forces_replacement_at_its_path() {
        let with = |v: &str| {
            Value::object([(
                "build",
                Value::object([("triggers", Value::map([("roles", Value::string(v))]))]),
            )])
        };
        assert_eq!(
            changed_inputs(&with("v1"), &with("v2")),
            vec![Path::attr("build").join_attr("triggers")]
        );
        assert!(changed_inputs(&with("v1"), &with("v1")).is_empty());
    }
}
