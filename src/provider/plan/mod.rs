//! PlanResourceChange semantics of `hyops_vyos_image` (DESIGN §2, "Lifecycle"):
//! - create (prior null): every computed attribute unknown; optional+computed ones unknown only
//!   when not configured.
//! - update: computed values carried forward from prior state, unless a build or publish input
//!   changed (`replace.rs`): then `requires_replace` lists the exact attribute paths and the
//!   computed attributes (and unconfigured optional+computed ones) become unknown.
//! - changes only in `timeouts`, `notes`, `publish.retain_on_destroy` or
//!   `gcs_credentials_wo_version`: in-place update, computed values kept.
//! - destroy (proposed null): passes through.
//! - right after import: inputs a manifest does not record, null in the imported state, are
//!   adopted from the configuration in place (`imported.rs`).
//!
//! Pure functions over cty values; write-only nulling happens at the service edge.

mod computed;
mod imported;
mod replace;

use crate::cty::{Path, Value};

pub use imported::{is_imported, IMPORTED_PRIVATE};
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
    plan_vyos_image_with(prior, proposed, config, false)
}

/// [`plan_vyos_image`], for an instance that was just imported when `imported` (see
/// [`is_imported`]).
pub fn plan_vyos_image_with(
    prior: &Value,
    proposed: &Value,
    config: &Value,
    imported: bool,
) -> PlannedChange {
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
    let mut requires_replace = replace::changed_inputs(prior, proposed);
    if imported {
        requires_replace = imported::remaining(requires_replace, prior);
        requires_replace = imported::adopt_source_url(requires_replace, prior, proposed);
    }
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
