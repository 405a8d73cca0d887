//! Stored state of an older schema → the current schema, as JSON, before it is decoded:
//! - attributes and blocks the current schema no longer has are dropped, each logged by path
//!   (a provider downgrade-then-upgrade, or a removed attribute, must not strand a state);
//! - then one step per schema version, in order. v0 → v1: `reference_id` (new in v1) is set to
//!   null — the instance was published before references existed, so its destroy treats it as
//!   the only known user unless other references are recorded next to the artifact.
//!
//! Pure JSON over the schema; knows no RPC.

use serde_json::{Map, Value as Json};

use super::schema::REFERENCE_ID;
use crate::tfplugin5::schema::{Block, Nesting};

/// One upgrade step: the state of version `from` becomes `from + 1`.
type Step = fn(&mut Map<String, Json>);

/// Steps by source version: `STEPS[n]` upgrades v`n` to v`n+1`.
const STEPS: &[Step] = &[v0_to_v1];

/// v0 → v1: instances of v0 hold no artifact reference.
fn v0_to_v1(state: &mut Map<String, Json>) {
    state.insert(REFERENCE_ID.to_owned(), Json::Null);
    tracing::info!(
        "state from schema version 0: no artifact reference recorded (published before references existed)"
    );
}

/// Upgrades `state` (an object) from `version` to `target`, dropping what `block` lacks.
/// Returns the dropped attribute paths.
pub(crate) fn upgrade_state(
    state: &mut Json,
    version: i64,
    target: i64,
    block: &Block,
) -> Vec<String> {
    let mut dropped = Vec::new();
    prune(state, block, "", &mut dropped);
    if let Json::Object(map) = state {
        for step in STEPS
            .iter()
            .skip(usize::try_from(version.max(0)).unwrap_or(usize::MAX))
            .take(usize::try_from((target - version).max(0)).unwrap_or(0))
        {
            step(map);
        }
    }
    for path in &dropped {
        tracing::warn!(
            attribute = %path,
            "stored state holds an attribute this provider's schema no longer has; dropped"
        );
    }
    dropped
}

fn prune(v: &mut Json, block: &Block, at: &str, dropped: &mut Vec<String>) {
    let Json::Object(map) = v else { return };
    let known = |k: &str| {
        block.attributes.iter().any(|a| a.name == k)
            || block.block_types.iter().any(|b| b.type_name == k)
    };
    let gone: Vec<String> = map.keys().filter(|k| !known(k)).cloned().collect();
    for k in gone {
        map.remove(&k);
        dropped.push(format!("{at}{k}"));
    }
    for nested in &block.block_types {
        let Some(child) = map.get_mut(&nested.type_name) else {
            continue;
        };
        let path = format!("{at}{}", nested.type_name);
        match (&nested.nesting, child) {
            (Nesting::Single | Nesting::Group, c @ Json::Object(_)) => {
                prune(c, &nested.block, &format!("{path}."), dropped)
            }
            (_, Json::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, &nested.block, &format!("{path}[{i}]."), dropped);
                }
            }
            (Nesting::Map, Json::Object(items)) => {
                for (k, item) in items.iter_mut() {
                    prune(item, &nested.block, &format!("{path}[{k:?}]."), dropped);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::schema::vyos_image_schema;

    #[test]
    fn unknown_attributes_are_dropped_and_v0_gains_a_null_reference() {
        let mut state = serde_json::json!({
            "artifact_key": "k",
            "retired_attribute": "x",
            "publish": {"backend": "file", "old_knob": true},
        });
        let dropped = upgrade_state(&mut state, 0, 1, &vyos_image_schema().block);
        assert_eq!(dropped, vec!["retired_attribute", "publish.old_knob"]);
        assert_eq!(state["reference_id"], Json::Null);
        assert_eq!(state["publish"]["backend"], "file");
        assert!(state.get("retired_attribute").is_none());
    }

    #[test]
    fn a_current_state_is_left_alone() {
        let mut state =
            serde_json::json!({"artifact_key": "k", "reference_id": "abcdef0123456789"});
        let dropped = upgrade_state(&mut state, 1, 1, &vyos_image_schema().block);
        assert!(dropped.is_empty());
        assert_eq!(state["reference_id"], "abcdef0123456789");
    }
}
