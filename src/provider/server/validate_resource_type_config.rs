//! ValidateResourceTypeConfig: static rules plus the write-only capability check.

use super::{dynamic, lookup, write_only};
use crate::provider::validate;
use crate::tfplugin5::pb::validate_resource_type_config as m;
use crate::tfplugin5::Diagnostics;

pub(crate) fn handle(req: m::Request) -> m::Response {
    m::Response {
        diagnostics: check(&req).into_pb(),
    }
}

fn check(req: &m::Request) -> Diagnostics {
    let schema = match lookup::resource_schema(&req.type_name) {
        Ok(s) => s,
        Err(d) => return d.into(),
    };
    let config = match dynamic::decode_with(req.config.as_ref(), schema, "resource configuration") {
        Ok(v) => v,
        Err(d) => return d.into(),
    };
    let mut diags =
        write_only::refuse_without_capability(schema, &config, req.client_capabilities.as_ref());
    diags.extend(validate::resource_config(&config));
    diags
}
