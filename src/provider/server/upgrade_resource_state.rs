//! UpgradeResourceState: stored JSON state (any schema version up to the current one) → msgpack
//! of the current schema, through `provider::state_upgrade` (attributes the schema no longer has
//! are dropped and logged; version steps applied in order). Called on every plan; the JSON keeps
//! arbitrary-precision numbers.

use super::{dynamic, lookup};
use crate::cty::json::decode_json_value;
use crate::provider::state_upgrade::upgrade_state;
use crate::tfplugin5::pb::upgrade_resource_state as m;
use crate::tfplugin5::{Diagnostic, Diagnostics};

pub(crate) fn handle(req: m::Request) -> m::Response {
    match upgrade(&req) {
        Ok(state) => m::Response {
            upgraded_state: Some(state),
            diagnostics: Vec::new(),
        },
        Err(d) => m::Response {
            upgraded_state: None,
            diagnostics: Diagnostics::from(d).into_pb(),
        },
    }
}

fn upgrade(req: &m::Request) -> Result<crate::tfplugin5::pb::DynamicValue, Diagnostic> {
    let schema = lookup::resource_schema(&req.type_name)?;
    if req.version > schema.version {
        return Err(Diagnostic::error(
            "State from a newer provider",
            format!(
                "The stored state of {} has schema version {}, newer than this provider's {}. \
                 Use the provider version that wrote it (or newer).",
                req.type_name, req.version, schema.version
            ),
        ));
    }
    let raw = req.raw_state.as_ref();
    let json = raw.map(|r| r.json.as_slice()).unwrap_or_default();
    if json.is_empty() {
        if raw.is_some_and(|r| !r.flatmap.is_empty()) {
            return Err(Diagnostic::error(
                "Unsupported state format",
                "The stored state is in the legacy flatmap format, which this provider never \
                 wrote. Remove the resource from state and import it again.",
            ));
        }
        return dynamic::encode_state(crate::cty::Value::Null, schema);
    }
    let mut stored: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        Diagnostic::error(
            "Cannot read stored state",
            format!("The stored state of {} is not JSON: {e}.", req.type_name),
        )
    })?;
    let dropped = upgrade_state(&mut stored, req.version, schema.version, &schema.block);
    if !dropped.is_empty() {
        tracing::info!(
            type_name = %req.type_name,
            from = req.version,
            to = schema.version,
            dropped = ?dropped,
            "state upgraded"
        );
    }
    let value = decode_json_value(&stored, &schema.block.implied_type()).map_err(|e| {
        Diagnostic::error(
            "Cannot read stored state",
            format!(
                "The stored state of {} does not match the provider's schema: {e}. Remove the \
                 resource from state (terraform state rm) and import it again.",
                req.type_name
            ),
        )
    })?;
    dynamic::encode_state(value, schema)
}
