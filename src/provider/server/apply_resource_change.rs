//! ApplyResourceChange: create (one call into [`vyos_image::create`], or [`on_runner::create`]
//! with a `build_runner`), destroy, or an in-place
//! update (state-only attributes: the planned state becomes the new state).

use super::{dynamic, lookup};
use crate::cty::Value;
use crate::provider::config::image_config;
use crate::provider::plan::is_imported;
use crate::provider::resources::{on_runner, vyos_image};
use crate::provider::service::ProviderService;
use crate::tfplugin5::pb::apply_resource_change as m;
use crate::tfplugin5::schema::Schema;
use crate::tfplugin5::Diagnostics;

pub(crate) async fn handle(svc: &ProviderService, req: m::Request) -> m::Response {
    match apply(svc, &req).await {
        Ok(resp) => resp,
        Err(diags) => m::Response {
            diagnostics: diags.into_pb(),
            ..m::Response::default()
        },
    }
}

async fn apply(svc: &ProviderService, req: &m::Request) -> Result<m::Response, Diagnostics> {
    let schema = lookup::resource_schema(&req.type_name)?;
    let prior = dynamic::decode_with(req.prior_state.as_ref(), schema, "prior state")?;
    let planned = dynamic::decode_with(req.planned_state.as_ref(), schema, "planned state")?;
    let config = dynamic::decode_with(req.config.as_ref(), schema, "configuration")?;
    let configured = svc.settings().unwrap_or_default();
    let settings = configured.settings;
    let cancel = svc.cancellation().child_token();
    // dropping this RPC (client gone) cancels the work too
    let _drop_guard = cancel.clone().drop_guard();

    let mut warnings = Diagnostics::new();
    let new_state = if planned.is_null() {
        tracing::info!("destroying {}", req.type_name);
        warnings = vyos_image::delete(&prior, &settings, cancel).await?;
        Value::Null
    } else if prior.is_null() {
        let image = image_config(&config)?;
        let settings = image.effective_settings(&settings);
        tracing::info!(artifact_key = %image.spec.artifact_key, "creating");
        let created = match &configured.runner {
            Some(rc) => {
                let session = svc.runner_session(rc).await?;
                on_runner::create(&session, &image.spec, &settings, cancel).await?
            }
            None => vyos_image::create(&image.spec, &settings, cancel).await?,
        };
        warnings = created.warnings;
        vyos_image::contract_to_state(&created.contract, &planned)?
    } else {
        // the plan allowed an in-place update only for state-only attributes
        planned
    };
    let mut resp = respond(new_state, schema, req)?;
    resp.diagnostics = warnings.into_pb();
    Ok(resp)
}

fn respond(state: Value, schema: &Schema, req: &m::Request) -> Result<m::Response, Diagnostics> {
    // the import marker lives until the first apply (it adopted configured inputs by then)
    let private = if is_imported(&req.planned_private) {
        Vec::new()
    } else {
        req.planned_private.clone()
    };
    Ok(m::Response {
        new_state: Some(dynamic::encode_state(state, schema)?),
        private,
        ..m::Response::default()
    })
}
