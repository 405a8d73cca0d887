//! ImportResourceState: the import id is a manifest URL (`gs://…/manifest.json`, `https://…`,
//! `file://…`).

use super::{dynamic, lookup};
use crate::provider::plan::IMPORTED_PRIVATE;
use crate::provider::resources::vyos_image;
use crate::provider::service::ProviderService;
use crate::tfplugin5::pb::import_resource_state as m;
use crate::tfplugin5::Diagnostics;

pub(crate) async fn handle(svc: &ProviderService, req: m::Request) -> m::Response {
    match import(svc, &req).await {
        Ok(resp) => resp,
        Err(diags) => m::Response {
            diagnostics: diags.into_pb(),
            ..m::Response::default()
        },
    }
}

async fn import(svc: &ProviderService, req: &m::Request) -> Result<m::Response, Diagnostics> {
    let schema = lookup::resource_schema(&req.type_name)?;
    let settings = svc.settings().unwrap_or_default().settings;
    let cancel = svc.cancellation().child_token();
    let _drop_guard = cancel.clone().drop_guard();
    let state = vyos_image::import(req.id.trim(), &settings, cancel).await?;
    Ok(m::Response {
        imported_resources: vec![m::ImportedResource {
            type_name: req.type_name.clone(),
            state: Some(dynamic::encode_state(state, schema)?),
            // lets the first plan adopt configured inputs the manifest does not record
            private: IMPORTED_PRIVATE.to_vec(),
            ..m::ImportedResource::default()
        }],
        ..m::Response::default()
    })
}
