//! [`Value`] → msgpack, driven by the type. See the parent module for the format.

use std::collections::BTreeMap;

use super::{MAX_DEPTH, UNKNOWN_BYTES};
use crate::cty::{CtyError, Number, Path, PathStep, Type, Value};

pub(super) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CtyError> {
    let mut w = Writer {
        out: Vec::new(),
        path: Path::root(),
        depth: 0,
    };
    w.value(value, ty)?;
    Ok(w.out)
}

/// Calls an `rmp::encode` writer on the output buffer, mapping its error to a path error.
macro_rules! put {
    ($w:expr, $f:ident, $($arg:expr),*) => {{
        let r = rmp::encode::$f(&mut $w.out, $($arg),*)
            .map(|_| ())
            .map_err(|e| e.to_string());
        r.map_err(|e| $w.err(format!("msgpack write failed: {e}")))
    }};
}

struct Writer {
    out: Vec<u8>,
    path: Path,
    depth: usize,
}

/// Short name of a value's kind, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a bool",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
        Value::Dynamic(..) => "a dynamic value",
    }
}

impl Writer {
    fn err(&self, message: impl Into<String>) -> CtyError {
        CtyError::encode(&self.path, message)
    }

    fn len32(&self, n: usize) -> Result<u32, CtyError> {
        u32::try_from(n).map_err(|_| self.err("too long for msgpack (more than 2^32-1 items)"))
    }

    fn mismatch(&self, ty: &Type, v: &Value) -> CtyError {
        self.err(format!(
            "{} is required ({}), found {}",
            type_noun(ty),
            ty.friendly_name(),
            kind(v)
        ))
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CtyError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = self.value_inner(v, ty);
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, v: &Value, ty: &Type) -> Result<(), CtyError> {
        match v {
            Value::Unknown => {
                self.out.extend_from_slice(&UNKNOWN_BYTES);
                return Ok(());
            }
            Value::Null => {
                self.out.push(0xc0);
                return Ok(());
            }
            _ => {}
        }
        if *ty == Type::Dynamic {
            return match v {
                Value::Dynamic(Type::Dynamic, inner) => self.value(inner, &Type::Dynamic),
                Value::Dynamic(t, inner) => {
                    // [type JSON as bin, value]
                    put!(self, write_array_len, 2)?;
                    let tj = t.to_json_bytes();
                    put!(self, write_bin, &tj)?;
                    self.value(inner, t)
                }
                other => Err(self.err(format!(
                    "a value of dynamic type must carry its type (Value::Dynamic), found {}",
                    kind(other)
                ))),
            };
        }
        match (ty, v) {
            (_, Value::Dynamic(t, inner)) if t == ty => self.value(inner, ty),
            (Type::String, Value::String(s)) => put!(self, write_str, s),
            (Type::Number, Value::Number(n)) => self.number(n),
            (Type::Bool, Value::Bool(b)) => put!(self, write_bool, *b),
            (Type::List(e), Value::List(items)) => self.elements(items, e),
            (Type::Set(e), Value::Set(items) | Value::List(items)) => self.elements(items, e),
            (Type::Tuple(types), Value::List(items)) => {
                if items.len() != types.len() {
                    return Err(self.err(format!(
                        "a tuple of {} elements is required, found {}",
                        types.len(),
                        items.len()
                    )));
                }
                let n = self.len32(items.len())?;
                put!(self, write_array_len, n)?;
                for (i, (item, t)) in items.iter().zip(types).enumerate() {
                    self.path.0.push(PathStep::Index(i as i64));
                    let r = self.value(item, t);
                    self.path.0.pop();
                    r?;
                }
                Ok(())
            }
            (Type::Map(e), Value::Map(m)) => {
                let n = self.len32(m.len())?;
                put!(self, write_map_len, n)?;
                for (k, item) in m {
                    self.path.0.push(PathStep::Key(k.clone()));
                    let r = put!(self, write_str, k).and_then(|_| self.value(item, e));
                    self.path.0.pop();
                    r?;
                }
                Ok(())
            }
            (Type::Object(attrs), Value::Object(m)) => self.object(attrs, m),
            (ty, v) => Err(self.mismatch(ty, v)),
        }
    }

    fn elements(&mut self, items: &[Value], ety: &Type) -> Result<(), CtyError> {
        let n = self.len32(items.len())?;
        put!(self, write_array_len, n)?;
        for (i, item) in items.iter().enumerate() {
            self.path.0.push(PathStep::Index(i as i64));
            let r = self.value(item, ety);
            self.path.0.pop();
            r?;
        }
        Ok(())
    }

    fn object(
        &mut self,
        attrs: &BTreeMap<String, Type>,
        m: &BTreeMap<String, Value>,
    ) -> Result<(), CtyError> {
        if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
            return Err(self.err(format!("unsupported attribute {extra:?}")));
        }
        let n = self.len32(attrs.len())?;
        put!(self, write_map_len, n)?;
        // BTreeMap order is byte-wise sorted: the order go-cty writes (sort.Strings).
        for (name, aty) in attrs {
            self.path.0.push(PathStep::Attribute(name.clone()));
            let r = put!(self, write_str, name)
                .and_then(|_| self.value(m.get(name).unwrap_or(&Value::Null), aty));
            self.path.0.pop();
            r?;
        }
        Ok(())
    }

    fn number(&mut self, n: &Number) -> Result<(), CtyError> {
        let d = n
            .decimal()
            .ok_or_else(|| self.err("a number with invalid decimal text"))?;
        if d.is_integer() {
            if let Some(i) = n.as_i64() {
                return if i >= 0 {
                    put!(self, write_uint, i as u64)
                } else {
                    put!(self, write_sint, i)
                };
            }
            if let Some(u) = n.as_u64() {
                return put!(self, write_uint, u);
            }
        }
        if let Some(f) = n.to_exact_f64() {
            return put!(self, write_f64, f);
        }
        put!(self, write_str, n.as_str())
    }
}

fn type_noun(ty: &Type) -> &'static str {
    match ty {
        Type::String => "a string",
        Type::Number => "a number",
        Type::Bool => "a bool",
        Type::List(_) => "a list",
        Type::Set(_) => "a set",
        Type::Map(_) => "a map",
        Type::Object(_) => "an object",
        Type::Tuple(_) => "a tuple (Value::List)",
        Type::Dynamic => "a dynamic value",
    }
}
