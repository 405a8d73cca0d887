//! cty's JSON encoding of values, as Terraform stores resource state.
//!
//! `UpgradeResourceState` hands the provider the raw state as JSON; this module reads it by type
//! with the same rules as go-cty's `cty/json`:
//! - `null` is null for every type; numbers keep their exact text (serde_json is built with
//!   `arbitrary_precision`), so `1e400` or `18446744073709551617` lose nothing.
//! - like cty's conversions, a string type also accepts a JSON number or bool (kept as its text), a
//!   number type accepts a numeric string and a bool type accepts `"true"`/`"false"`.
//! - objects: a missing attribute is null; an attribute the type does not have is an error naming
//!   it, so schema drift is visible instead of silently dropped.
//! - a `dynamic` value is `{"value": V, "type": T}` with T in type JSON.
//!
//! Numbers are written as their canonical text, except that serde_json spells a positive
//! exponent with a sign (`1e+400`); both read back as the same number.
//! JSON has no unknowns: [`encode_json`] refuses them (state is always wholly known).
//! Nesting is bounded by [`super::msgpack::MAX_DEPTH`].

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::msgpack::MAX_DEPTH;
use super::{CtyError, Number, Path, PathStep, Type, Value};

/// Decodes JSON bytes holding a value of type `ty`.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    let json: Json = serde_json::from_slice(bytes)
        .map_err(|e| CtyError::decode(&Path::root(), format!("not valid JSON: {e}")))?;
    decode_json_value(&json, ty)
}

/// Decodes an already parsed JSON value as type `ty`.
pub fn decode_json_value(json: &Json, ty: &Type) -> Result<Value, CtyError> {
    let mut d = Decoder {
        path: Path::root(),
        depth: 0,
    };
    d.value(json, ty)
}

/// Encodes a wholly known value of type `ty` as JSON.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Json, CtyError> {
    let mut e = Encoder {
        path: Path::root(),
        depth: 0,
    };
    e.value(value, ty)
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

struct Decoder {
    path: Path,
    depth: usize,
}

impl Decoder {
    fn err(&self, message: impl Into<String>) -> CtyError {
        CtyError::decode(&self.path, message)
    }

    fn at<T>(
        &mut self,
        step: PathStep,
        f: impl FnOnce(&mut Self) -> Result<T, CtyError>,
    ) -> Result<T, CtyError> {
        self.path.0.push(step);
        let r = f(self);
        self.path.0.pop();
        r
    }

    fn value(&mut self, j: &Json, ty: &Type) -> Result<Value, CtyError> {
        if j.is_null() {
            return Ok(Value::Null);
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = self.value_inner(j, ty);
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, j: &Json, ty: &Type) -> Result<Value, CtyError> {
        let mismatch =
            |d: &Self, what: &str| d.err(format!("{what} is required, found {}", json_kind(j)));
        match ty {
            Type::String => match j {
                Json::String(s) => Ok(Value::String(s.clone())),
                Json::Number(n) => Ok(Value::String(n.as_str().to_string())),
                Json::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(mismatch(self, "a string")),
            },
            Type::Number => {
                let text = match j {
                    Json::Number(n) => n.as_str(),
                    Json::String(s) => s.as_str(),
                    _ => return Err(mismatch(self, "a number")),
                };
                Number::parse(text)
                    .map(Value::Number)
                    .map_err(|_| self.err("a number is required, found non-numeric text"))
            }
            Type::Bool => match j {
                Json::Bool(b) => Ok(Value::Bool(*b)),
                Json::String(s) if s == "true" => Ok(Value::Bool(true)),
                Json::String(s) if s == "false" => Ok(Value::Bool(false)),
                _ => Err(mismatch(self, "a bool")),
            },
            Type::List(e) | Type::Set(e) => {
                let items = j.as_array().ok_or_else(|| mismatch(self, "an array"))?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.at(PathStep::Index(i as i64), |d| d.value(item, e))?);
                }
                Ok(if matches!(ty, Type::Set(_)) {
                    Value::Set(out)
                } else {
                    Value::List(out)
                })
            }
            Type::Tuple(types) => {
                let items = j.as_array().ok_or_else(|| mismatch(self, "an array"))?;
                if items.len() != types.len() {
                    return Err(self.err(format!(
                        "a tuple of {} elements is required, found {}",
                        types.len(),
                        items.len()
                    )));
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, t)) in items.iter().zip(types).enumerate() {
                    out.push(self.at(PathStep::Index(i as i64), |d| d.value(item, t))?);
                }
                Ok(Value::List(out))
            }
            Type::Map(e) => {
                let obj = j.as_object().ok_or_else(|| mismatch(self, "an object"))?;
                let mut out = BTreeMap::new();
                for (k, item) in obj {
                    let v = self.at(PathStep::Key(k.clone()), |d| d.value(item, e))?;
                    out.insert(k.clone(), v);
                }
                Ok(Value::Map(out))
            }
            Type::Object(attrs) => {
                let obj = j.as_object().ok_or_else(|| mismatch(self, "an object"))?;
                let mut out = BTreeMap::new();
                for (k, item) in obj {
                    let Some(aty) = attrs.get(k) else {
                        return Err(self.err(format!("unsupported attribute {k:?}")));
                    };
                    let v = self.at(PathStep::Attribute(k.clone()), |d| d.value(item, aty))?;
                    out.insert(k.clone(), v);
                }
                for name in attrs.keys() {
                    if !out.contains_key(name) {
                        out.insert(name.clone(), Value::Null);
                    }
                }
                Ok(Value::Object(out))
            }
            Type::Dynamic => {
                let obj = j
                    .as_object()
                    .ok_or_else(|| mismatch(self, "a {\"value\", \"type\"} object"))?;
                if let Some(k) = obj.keys().find(|k| *k != "value" && *k != "type") {
                    return Err(self.err(format!("invalid key {k:?} in a dynamic value")));
                }
                let tj = obj
                    .get("type")
                    .ok_or_else(|| self.err("a dynamic value lacks its \"type\""))?;
                let vj = obj
                    .get("value")
                    .ok_or_else(|| self.err("a dynamic value lacks its \"value\""))?;
                let t = Type::from_json_value(tj).map_err(|e| self.err(e.to_string()))?;
                let v = self.value(vj, &t)?;
                Ok(match t {
                    Type::Dynamic => v,
                    t => Value::Dynamic(t, Box::new(v)),
                })
            }
        }
    }
}

struct Encoder {
    path: Path,
    depth: usize,
}

impl Encoder {
    fn err(&self, message: impl Into<String>) -> CtyError {
        CtyError::encode(&self.path, message)
    }

    fn at<T>(
        &mut self,
        step: PathStep,
        f: impl FnOnce(&mut Self) -> Result<T, CtyError>,
    ) -> Result<T, CtyError> {
        self.path.0.push(step);
        let r = f(self);
        self.path.0.pop();
        r
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<Json, CtyError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = self.value_inner(v, ty);
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, v: &Value, ty: &Type) -> Result<Json, CtyError> {
        match v {
            Value::Null => return Ok(Json::Null),
            Value::Unknown => return Err(self.err("an unknown value cannot be encoded as JSON")),
            _ => {}
        }
        if *ty == Type::Dynamic {
            return match v {
                Value::Dynamic(Type::Dynamic, inner) => self.value(inner, &Type::Dynamic),
                Value::Dynamic(t, inner) => {
                    let mut m = serde_json::Map::new();
                    m.insert("value".to_string(), self.value(inner, t)?);
                    m.insert("type".to_string(), t.to_json_value());
                    Ok(Json::Object(m))
                }
                _ => Err(self.err("a value of dynamic type must carry its type (Value::Dynamic)")),
            };
        }
        match (ty, v) {
            (_, Value::Dynamic(t, inner)) if t == ty => self.value(inner, ty),
            (Type::String, Value::String(s)) => Ok(Json::String(s.clone())),
            (Type::Bool, Value::Bool(b)) => Ok(Json::Bool(*b)),
            (Type::Number, Value::Number(n)) => n
                .as_str()
                .parse::<serde_json::Number>()
                .map(Json::Number)
                .map_err(|_| self.err("a number whose text is not valid JSON")),
            (Type::List(e), Value::List(items))
            | (Type::Set(e), Value::Set(items) | Value::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.at(PathStep::Index(i as i64), |s| s.value(item, e))?);
                }
                Ok(Json::Array(out))
            }
            (Type::Tuple(types), Value::List(items)) if items.len() == types.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, t)) in items.iter().zip(types).enumerate() {
                    out.push(self.at(PathStep::Index(i as i64), |s| s.value(item, t))?);
                }
                Ok(Json::Array(out))
            }
            (Type::Map(e), Value::Map(m)) => {
                let mut out = serde_json::Map::new();
                for (k, item) in m {
                    let j = self.at(PathStep::Key(k.clone()), |s| s.value(item, e))?;
                    out.insert(k.clone(), j);
                }
                Ok(Json::Object(out))
            }
            (Type::Object(attrs), Value::Object(m)) => {
                if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                    return Err(self.err(format!("unsupported attribute {extra:?}")));
                }
                let mut out = serde_json::Map::new();
                for (name, aty) in attrs {
                    let av = m.get(name).unwrap_or(&Value::Null);
                    let j = self.at(PathStep::Attribute(name.clone()), |s| s.value(av, aty))?;
                    out.insert(name.clone(), j);
                }
                Ok(Json::Object(out))
            }
            (Type::Tuple(types), Value::List(items)) => Err(self.err(format!(
                "a tuple of {} elements is required, found {}",
                types.len(),
                items.len()
            ))),
            _ => Err(self.err(format!(
                "value does not conform to type {}",
                ty.friendly_name()
            ))),
        }
    }
}
