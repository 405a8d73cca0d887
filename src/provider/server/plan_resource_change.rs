//! PlanResourceChange: decode prior / proposed / config, apply the plan rules, encode the plan
//! (write-only attributes nulled by the encoder). A destroy plan (the `plan_destroy` capability)
//! carries warnings about what its apply would not be able to do.

use super::{dynamic, lookup};
use crate::provider::plan::{is_imported, plan_vyos_image_with};
use crate::provider::resources::vyos_image;
use crate::provider::service::ProviderService;
use crate::tfplugin5::pb;
use crate::tfplugin5::pb::plan_resource_change as m;
use crate::tfplugin5::Diagnostics;

pub(crate) fn handle(svc: &ProviderService, req: m::Request) -> m::Response {
    match plan(svc, &req) {
        Ok(resp) => resp,
        Err(diags) => m::Response {
            diagnostics: diags.into_pb(),
            ..m::Response::default()
        },
    }
}

fn plan(svc: &ProviderService, req: &m::Request) -> Result<m::Response, Diagnostics> {
    let schema = lookup::resource_schema(&req.type_name)?;
    let prior = dynamic::decode_with(req.prior_state.as_ref(), schema, "prior state")?;
    let proposed = dynamic::decode_with(req.proposed_new_state.as_ref(), schema, "proposed state")?;
    let config = dynamic::decode_with(req.config.as_ref(), schema, "configuration")?;
    let change = plan_vyos_image_with(&prior, &proposed, &config, is_imported(&req.prior_private));
    // a destroy (asked for because of the plan_destroy capability): say now what would fail
    let warnings = if proposed.is_null() && !prior.is_null() {
        let settings = svc.settings().unwrap_or_default().settings;
        vyos_image::plan_destroy_warnings(&prior, &settings)
    } else {
        Diagnostics::new()
    };
    if !change.requires_replace.is_empty() {
        let paths: Vec<String> = change
            .requires_replace
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::debug!(requires_replace = ?paths, "plan forces replacement");
    }
    Ok(m::Response {
        planned_state: Some(dynamic::encode_state(change.planned, schema)?),
        requires_replace: change
            .requires_replace
            .iter()
            .map(pb::AttributePath::from)
            .collect(),
        planned_private: req.prior_private.clone(),
        diagnostics: warnings.into_pb(),
        ..m::Response::default()
    })
}
