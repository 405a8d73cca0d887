//! `DynamicValue` in and out at the service edge, driven by a schema's implied type.
//!
//! Every state the service returns is encoded by [`encode_state`], which nulls write-only
//! attributes first: that is the single place the protocol's "write-only values never reach
//! state or plan" duty is carried out (STYLE rule 4).

use crate::cty::{Type, Value};
use crate::tfplugin5::schema::Schema;
use crate::tfplugin5::{cty_error_diagnostic, decode_dynamic_opt, encode_dynamic, pb, Diagnostic};

/// Decodes `dv` (msgpack, else JSON; absent means null) as a value of type `ty`. `what` names
/// the request field in the error.
pub(crate) fn decode(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostic> {
    decode_dynamic_opt(dv, ty).map_err(|e| {
        let mut d = cty_error_diagnostic(format!("Cannot decode {what}"), &e);
        d.detail = format!(
            "{}. The provider could not read the {what} Terraform sent; this usually means the \
             provider binary and the schema Terraform cached disagree: run `terraform init` \
             again.",
            d.detail
        );
        d
    })
}

/// Decodes `dv` with the block type of `schema`.
pub(crate) fn decode_with(
    dv: Option<&pb::DynamicValue>,
    schema: &Schema,
    what: &str,
) -> Result<Value, Diagnostic> {
    decode(dv, &schema.block.implied_type(), what)
}

/// Encodes a state or plan of `schema`, nulling its write-only attributes first.
pub(crate) fn encode_state(value: Value, schema: &Schema) -> Result<pb::DynamicValue, Diagnostic> {
    let value = null_write_only(value, schema);
    encode_dynamic(&value, &schema.block.implied_type())
        .map_err(|e| cty_error_diagnostic("Provider bug: cannot encode the new state", &e))
}

/// `value` with every write-only attribute of `schema` set to null (a null value stays null).
pub(crate) fn null_write_only(value: Value, schema: &Schema) -> Value {
    let paths = schema.block.write_only_paths();
    if paths.is_empty() || value.is_null() {
        return value;
    }
    value.map_leaves(&mut |path, leaf| {
        if paths.contains(path) {
            Value::Null
        } else {
            leaf
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::schema::vyos_image_schema;

    #[test]
    fn encode_state_nulls_write_only_attributes() {
        let schema = vyos_image_schema();
        let state = Value::object([
            ("artifact_key", Value::string("k")),
            (
                "gcs_credentials_wo",
                Value::string("{\"private_key\":\"x\"}"),
            ),
            ("gcs_credentials_wo_version", Value::string("1")),
        ]);
        let dv = encode_state(state, schema).unwrap();
        let back = decode_with(Some(&dv), schema, "state").unwrap();
        assert_eq!(back.get("gcs_credentials_wo"), Some(&Value::Null));
        assert_eq!(
            back.get("gcs_credentials_wo_version"),
            Some(&Value::string("1"))
        );
        assert_eq!(back.get("artifact_key"), Some(&Value::string("k")));
        let unknown_wo = Value::object([("gcs_credentials_wo", Value::Unknown)]);
        let dv = encode_state(unknown_wo, schema).unwrap();
        let back = decode_with(Some(&dv), schema, "plan").unwrap();
        assert_eq!(back.get("gcs_credentials_wo"), Some(&Value::Null));
    }
}
