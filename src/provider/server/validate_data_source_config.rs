//! ValidateDataSourceConfig: static rules of the data source.

use super::{dynamic, lookup};
use crate::provider::validate;
use crate::tfplugin5::pb::validate_data_source_config as m;
use crate::tfplugin5::Diagnostics;

pub(crate) fn handle(req: m::Request) -> m::Response {
    m::Response {
        diagnostics: check(&req).into_pb(),
    }
}

fn check(req: &m::Request) -> Diagnostics {
    let schema = match lookup::data_source_schema(&req.type_name) {
        Ok(s) => s,
        Err(d) => return d.into(),
    };
    match dynamic::decode_with(req.config.as_ref(), schema, "data source configuration") {
        Ok(config) => validate::data_source_config(&config),
        Err(d) => d.into(),
    }
}
