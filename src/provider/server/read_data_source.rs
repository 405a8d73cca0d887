//! ReadDataSource: resolve the contract of `hyops_vyos_artifact`.

use super::{dynamic, lookup};
use crate::provider::config::artifact_query;
use crate::provider::data_sources::vyos_artifact;
use crate::provider::service::ProviderService;
use crate::tfplugin5::pb::read_data_source as m;
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
    let schema = lookup::data_source_schema(&req.type_name)?;
    let config = dynamic::decode_with(req.config.as_ref(), schema, "data source configuration")?;
    let query = artifact_query(&config)?;
    let settings = svc.settings().unwrap_or_default().settings;
    let cancel = svc.cancellation().child_token();
    let _drop_guard = cancel.clone().drop_guard();
    let contract = vyos_artifact::read(&query, &settings, cancel).await?;
    let state = vyos_artifact::contract_to_state(&contract, &config)?;
    Ok(m::Response {
        state: Some(dynamic::encode_state(state, schema)?),
        ..m::Response::default()
    })
}
