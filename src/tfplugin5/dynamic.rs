//! `DynamicValue` ⇄ cty [`Value`]: the one place where wire values enter and leave the provider.
//!
//! Terraform sends a value as msgpack (every RPC except `UpgradeResourceState`, whose raw state is
//! JSON) and always expects msgpack back. Decoding needs the schema's implied [`Type`]; see
//! [`crate::cty::msgpack`] and [`crate::cty::json`] for the rules. Knows nothing about schemas
//! or resources.
//!
//! Caveat: a `DynamicValue` with neither field set decodes as null (proto3 cannot tell an empty
//! field from an absent one, and Terraform never sends an empty encoding of a non-null value:
//! null is the one-byte msgpack nil).

use super::diagnostics::Diagnostic;
use super::pb;
use crate::cty::json::decode_json;
use crate::cty::{msgpack, CtyError, Type, Value};

/// Decodes a `DynamicValue` of type `ty`, from its msgpack field, else from its JSON field.
pub fn decode_dynamic(dv: &pb::DynamicValue, ty: &Type) -> Result<Value, CtyError> {
    if !dv.msgpack.is_empty() {
        msgpack::decode(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        decode_json(&dv.json, ty)
    } else {
        Ok(Value::Null)
    }
}

/// Decodes an optional `DynamicValue` (an absent message is null).
pub fn decode_dynamic_opt(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, CtyError> {
    dv.map_or(Ok(Value::Null), |dv| decode_dynamic(dv, ty))
}

/// Encodes `value` of type `ty` as a msgpack `DynamicValue` (the JSON field stays empty).
pub fn encode_dynamic(value: &Value, ty: &Type) -> Result<pb::DynamicValue, CtyError> {
    Ok(pb::DynamicValue {
        msgpack: msgpack::encode(value, ty)?,
        json: Vec::new(),
    })
}

/// An error diagnostic for a codec failure, pointing at the attribute where it happened.
///
/// The detail names the path and what was expected, never the value (it may be a secret).
pub fn cty_error_diagnostic(summary: impl Into<String>, err: &CtyError) -> Diagnostic {
    let d = Diagnostic::error(summary, err.to_string());
    match err.path() {
        Some(p) if !p.0.is_empty() => d.at(p.clone()),
        _ => d,
    }
}
