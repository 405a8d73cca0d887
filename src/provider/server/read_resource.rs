//! ReadResource (refresh): check the published object; gone or changed → removed from state.

use super::{dynamic, lookup};
use crate::cty::Value;
use crate::provider::resources::vyos_image;
use crate::provider::service::ProviderService;
use crate::tfplugin5::pb::read_resource as m;
use crate::tfplugin5::Diagnostics;

pub(crate) async fn handle(svc: &ProviderService, req: m::Request) -> m::Response {
    match read(svc, &req).await {
        Ok(resp) => resp,
        Err(diags) => m::Response {
            diagnostics: diags.into_pb(),
            ..m::Response::default()
        },
    }
}

async fn read(svc: &ProviderService, req: &m::Request) -> Result<m::Response, Diagnostics> {
    let schema = lookup::resource_schema(&req.type_name)?;
    let current = dynamic::decode_with(req.current_state.as_ref(), schema, "current state")?;
    if current.is_null() {
        return Ok(m::Response {
            new_state: req.current_state.clone(),
            ..m::Response::default()
        });
    }
    let configured = svc.settings().unwrap_or_default();
    let settings = configured.settings;
    let runner = match &configured.runner {
        Some(rc) => Some(svc.runner_session(rc).await?),
        None => None,
    };
    let cancel = svc.cancellation().child_token();
    let _drop_guard = cancel.clone().drop_guard();
    let (refreshed, warnings) =
        vyos_image::read(&current, &settings, runner.as_deref(), cancel).await?;
    Ok(m::Response {
        new_state: Some(dynamic::encode_state(
            refreshed.unwrap_or(Value::Null),
            schema,
        )?),
        private: req.private.clone(),
        diagnostics: warnings.into_pb(),
        ..m::Response::default()
    })
}
