//! Terraform's JSON spelling of cty types.
//!
//! Primitive types are strings (`"string"`, `"number"`, `"bool"`, `"dynamic"`); collections are
//! two-element arrays (`["list","string"]`, `["set",T]`, `["map",T]`); structural types carry their
//! members (`["object",{"a":"string"}]`, `["tuple",["string","bool"]]`). Schemas (`SchemaAttribute.type`)
//! and msgpack/JSON dynamic values use this form. Output is compact with object attributes in sorted
//! order, byte-identical to what go-cty's `Type.MarshalJSON` writes.
//!
//! Input also accepts the three-element object form of type constraints
//! (`["object",{...},["optional_attr"]]`); the optional-attribute list is ignored, since a decoded
//! value type has no optional attributes. Nesting deeper than [`MAX_TYPE_DEPTH`] is refused.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{CtyError, Type};

/// Deepest type nesting accepted by [`Type::from_json`].
pub const MAX_TYPE_DEPTH: usize = 64;

impl Type {
    /// The type as a JSON value (object attributes in sorted order).
    pub fn to_json_value(&self) -> Json {
        match self {
            Type::String => Json::from("string"),
            Type::Number => Json::from("number"),
            Type::Bool => Json::from("bool"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(e) => Json::Array(vec![Json::from("list"), e.to_json_value()]),
            Type::Set(e) => Json::Array(vec![Json::from("set"), e.to_json_value()]),
            Type::Map(e) => Json::Array(vec![Json::from("map"), e.to_json_value()]),
            Type::Object(attrs) => {
                let m = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json_value()))
                    .collect::<serde_json::Map<_, _>>();
                Json::Array(vec![Json::from("object"), Json::Object(m)])
            }
            Type::Tuple(elems) => Json::Array(vec![
                Json::from("tuple"),
                Json::Array(elems.iter().map(Type::to_json_value).collect()),
            ]),
        }
    }

    /// The type's compact JSON bytes, e.g. `["object",{"a":"string"}]`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json_value().to_string().into_bytes()
    }

    /// Parses Terraform type JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Type, CtyError> {
        let json: Json = serde_json::from_slice(bytes)
            .map_err(|e| CtyError::InvalidType(format!("not JSON: {e}")))?;
        Type::from_json_value(&json)
    }

    /// Converts an already parsed JSON value into a type.
    pub fn from_json_value(json: &Json) -> Result<Type, CtyError> {
        parse(json, 0)
    }
}

fn bad(msg: impl Into<String>) -> CtyError {
    CtyError::InvalidType(msg.into())
}

fn parse(json: &Json, depth: usize) -> Result<Type, CtyError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(bad(format!("nested deeper than {MAX_TYPE_DEPTH} levels")));
    }
    match json {
        Json::String(s) => match s.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "dynamic" => Ok(Type::Dynamic),
            other => Err(bad(format!("unknown primitive type {other:?}"))),
        },
        Json::Array(items) => {
            let kind = items
                .first()
                .and_then(Json::as_str)
                .ok_or_else(|| bad("a type array must start with its kind as a string"))?;
            let arg = items
                .get(1)
                .ok_or_else(|| bad(format!("{kind:?} needs an argument")))?;
            let max_len = if kind == "object" { 3 } else { 2 };
            if items.len() > max_len {
                return Err(bad(format!("too many elements in a {kind:?} type")));
            }
            match kind {
                "list" => Ok(Type::list(parse(arg, depth + 1)?)),
                "set" => Ok(Type::set(parse(arg, depth + 1)?)),
                "map" => Ok(Type::map(parse(arg, depth + 1)?)),
                "object" => {
                    let attrs = arg
                        .as_object()
                        .ok_or_else(|| bad("object attributes must be a JSON object"))?;
                    if let Some(opt) = items.get(2) {
                        let names = opt
                            .as_array()
                            .ok_or_else(|| bad("optional attributes must be an array"))?;
                        if let Some(n) = names
                            .iter()
                            .find(|n| !n.as_str().is_some_and(|s| attrs.contains_key(s)))
                        {
                            return Err(bad(format!("optional attribute {n} is not an attribute")));
                        }
                    }
                    let mut out = BTreeMap::new();
                    for (k, v) in attrs {
                        out.insert(k.clone(), parse(v, depth + 1)?);
                    }
                    Ok(Type::Object(out))
                }
                "tuple" => {
                    let elems = arg
                        .as_array()
                        .ok_or_else(|| bad("tuple elements must be a JSON array"))?;
                    elems
                        .iter()
                        .map(|e| parse(e, depth + 1))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Type::Tuple)
                }
                other => Err(bad(format!("unknown type kind {other:?}"))),
            }
        }
        _ => Err(bad("a type is a string or an array")),
    }
}
