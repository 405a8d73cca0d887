//! Plan rule: what computed attributes hold in a planned state.

use crate::cty::Value;
use crate::provider::schema::{vyos_image_schema, COMPUTED_CONTRACT_ATTRIBUTES, REFERENCE_ID};

/// Optional+computed attributes: unknown when not configured, the configured value otherwise.
fn optional_computed() -> impl Iterator<Item = &'static str> {
    vyos_image_schema()
        .block
        .attributes
        .iter()
        .filter(|a| a.computed && a.optional)
        .map(|a| a.name.as_str())
}

/// The plan of a new object: computed attributes unknown, optional+computed ones unknown unless
/// configured.
pub(super) fn unknown_for_create(proposed: Value, config: &Value) -> Value {
    let Value::Object(mut attrs) = proposed else {
        return proposed;
    };
    for name in COMPUTED_CONTRACT_ATTRIBUTES.iter().chain([&REFERENCE_ID]) {
        attrs.insert((*name).to_string(), Value::Unknown);
    }
    for name in optional_computed() {
        let configured = config.get(name).is_some_and(|v| !v.is_null());
        if !configured {
            attrs.insert(name.to_string(), Value::Unknown);
        }
    }
    Value::Object(attrs)
}

/// The plan of an in-place update: computed attributes exactly as in the prior state (Terraform's
/// proposed state already does this; kept explicit so a client quirk cannot lose them).
pub(super) fn carry_forward(proposed: Value, prior: &Value) -> Value {
    let Value::Object(mut attrs) = proposed else {
        return proposed;
    };
    for name in COMPUTED_CONTRACT_ATTRIBUTES.iter().chain([&REFERENCE_ID]) {
        if let Some(v) = prior.get(name) {
            attrs.insert((*name).to_string(), v.clone());
        }
    }
    Value::Object(attrs)
}
