//! PlanResourceChange semantics of `hyops_vyos_image` (DESIGN §2, "Lifecycle"):
//! - create (prior null): every computed attribute unknown; optional+computed ones unknown only
//!   when not configured.
//! - update: computed values carried forward from prior state, unless a build or publish input
//!   changed (`replace.rs`): then `requires_replace` lists the exact attribute paths and the
//!   computed attributes (and unconfigured optional+computed ones) become unknown.
//! - changes only in `timeouts`, `notes`, `publish.retain_on_destroy` or
//!   `gcs_credentials_wo_version`: in-place update, computed values kept.
//! - destroy (proposed null): passes through.
//!
//! Pure functions over cty values; write-only nulling happens at the service edge.

mod computed;
mod replace;

use crate::cty::{Path, Value};

pub use replace::IN_PLACE;

/// The provider's answer to one plan request.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChange {
    /// the planned new state (null for destroy)
    pub planned: Value,
    /// attribute paths whose change forces replacement
    pub requires_replace: Vec<Path>,
}

/// Plans a change of one `hyops_vyos_image` instance.
pub fn plan_vyos_image(prior: &Value, proposed: &Value, config: &Value) -> PlannedChange {
    if proposed.is_null() {
        return PlannedChange {
            planned: Value::Null,
            requires_replace: Vec::new(),
        };
    }
    if prior.is_null() {
        return PlannedChange {
            planned: computed::unknown_for_create(proposed.clone(), config),
            requires_replace: Vec::new(),
        };
    }
    let requires_replace = replace::changed_inputs(prior, proposed);
    let planned = if requires_replace.is_empty() {
        computed::carry_forward(proposed.clone(), prior)
    } else {
        computed::unknown_for_create(proposed.clone(), config)
    };
    PlannedChange {
        planned,
        requires_replace,
    }
}
