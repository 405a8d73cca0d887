//! msgpack → [`Value`], driven by the type. See the parent module for the format.

use std::collections::BTreeMap;

use rmp::Marker;

use super::MAX_DEPTH;
use crate::cty::{CtyError, Number, Path, PathStep, Type, Value};

pub(super) fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        path: Path::root(),
        depth: 0,
    };
    let v = r.value(ty)?;
    if r.pos != r.buf.len() {
        return Err(r.err(format!(
            "{} trailing bytes after the value",
            r.buf.len() - r.pos
        )));
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: Path,
    depth: usize,
}

fn is_ext(m: Marker) -> bool {
    matches!(
        m,
        Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32
    )
}

/// What a marker is, for error messages.
fn describe(m: Marker) -> &'static str {
    match m {
        Marker::FixPos(_) | Marker::FixNeg(_) => "an integer",
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => "an integer",
        Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => "an integer",
        Marker::F32 | Marker::F64 => "a float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a string",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary data",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map",
        Marker::Null => "nil",
        Marker::True | Marker::False => "a bool",
        Marker::Reserved => "the reserved byte 0xc1",
        _ => "an extension value",
    }
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> CtyError {
        CtyError::decode(&self.path, message)
    }

    fn peek(&self) -> Result<Marker, CtyError> {
        self.buf
            .get(self.pos)
            .map(|&b| Marker::from_u8(b))
            .ok_or_else(|| self.err("unexpected end of input"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CtyError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("unexpected end of input"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CtyError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CtyError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CtyError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, CtyError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CtyError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads a length and checks it against the bytes left (each item takes at least `min_item`).
    fn count(&mut self, len: usize, min_item: usize) -> Result<usize, CtyError> {
        if len.saturating_mul(min_item) > self.remaining() {
            return Err(self.err(format!(
                "declared length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(len)
    }

    fn skip_ext(&mut self) -> Result<(), CtyError> {
        let m = Marker::from_u8(self.u8()?);
        let data_len = match m {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => usize::from(self.u8()?),
            Marker::Ext16 => usize::from(self.u16()?),
            Marker::Ext32 => self.u32()? as usize,
            _ => return Err(self.err("an extension value is required")),
        };
        // one byte of ext type code, then the payload (refinements and the like: dropped)
        self.take(1 + data_len)?;
        Ok(())
    }

    /// Reads a str or bin payload.
    fn raw_string(&mut self) -> Result<Option<&'a [u8]>, CtyError> {
        let m = self.peek()?;
        let len = match m {
            Marker::FixStr(n) => {
                self.pos += 1;
                usize::from(n)
            }
            Marker::Str8 | Marker::Bin8 => {
                self.pos += 1;
                usize::from(self.u8()?)
            }
            Marker::Str16 | Marker::Bin16 => {
                self.pos += 1;
                usize::from(self.u16()?)
            }
            Marker::Str32 | Marker::Bin32 => {
                self.pos += 1;
                self.u32()? as usize
            }
            _ => return Ok(None),
        };
        self.take(len).map(Some)
    }

    fn string(&mut self, what: &str) -> Result<String, CtyError> {
        let m = self.peek()?;
        let raw = self
            .raw_string()?
            .ok_or_else(|| self.err(format!("{what} is required, found {}", describe(m))))?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.err(format!("{what} is not valid UTF-8")))
    }

    fn array_len(&mut self, what: &str) -> Result<usize, CtyError> {
        let m = self.peek()?;
        let len = match m {
            Marker::FixArray(n) => {
                self.pos += 1;
                usize::from(n)
            }
            Marker::Array16 => {
                self.pos += 1;
                usize::from(self.u16()?)
            }
            Marker::Array32 => {
                self.pos += 1;
                self.u32()? as usize
            }
            _ => return Err(self.err(format!("{what} is required, found {}", describe(m)))),
        };
        self.count(len, 1)
    }

    fn map_len(&mut self, what: &str) -> Result<usize, CtyError> {
        let m = self.peek()?;
        let len = match m {
            Marker::FixMap(n) => {
                self.pos += 1;
                usize::from(n)
            }
            Marker::Map16 => {
                self.pos += 1;
                usize::from(self.u16()?)
            }
            Marker::Map32 => {
                self.pos += 1;
                self.u32()? as usize
            }
            _ => return Err(self.err(format!("{what} is required, found {}", describe(m)))),
        };
        self.count(len, 2)
    }

    fn value(&mut self, ty: &Type) -> Result<Value, CtyError> {
        let m = self.peek()?;
        if is_ext(m) {
            self.skip_ext()?;
            return Ok(Value::Unknown);
        }
        if *ty == Type::Dynamic {
            return self.nested(|r| r.dynamic());
        }
        if m == Marker::Null {
            self.pos += 1;
            return Ok(Value::Null);
        }
        match ty {
            Type::String => self.string("a string").map(Value::String),
            Type::Number => self.number().map(Value::Number),
            Type::Bool => match m {
                Marker::True | Marker::False => {
                    self.pos += 1;
                    Ok(Value::Bool(m == Marker::True))
                }
                _ => Err(self.err(format!("a bool is required, found {}", describe(m)))),
            },
            Type::List(e) => self.nested(|r| r.elements(e, "a list").map(Value::List)),
            Type::Set(e) => self.nested(|r| r.elements(e, "a set").map(Value::Set)),
            Type::Map(e) => self.nested(|r| r.map(e).map(Value::Map)),
            Type::Tuple(ts) => self.nested(|r| r.tuple(ts).map(Value::List)),
            Type::Object(attrs) => self.nested(|r| r.object(attrs).map(Value::Object)),
            Type::Dynamic => Err(self.err("internal: dynamic handled above")),
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, CtyError>,
    ) -> Result<T, CtyError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn number(&mut self) -> Result<Number, CtyError> {
        let m = self.peek()?;
        let n = match m {
            Marker::FixPos(v) => {
                self.pos += 1;
                Number::from_u64(u64::from(v))
            }
            Marker::FixNeg(v) => {
                self.pos += 1;
                Number::from_i64(i64::from(v))
            }
            Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
                self.pos += 1;
                let v = match m {
                    Marker::U8 => u64::from(self.u8()?),
                    Marker::U16 => u64::from(self.u16()?),
                    Marker::U32 => u64::from(self.u32()?),
                    _ => self.u64()?,
                };
                Number::from_u64(v)
            }
            Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
                self.pos += 1;
                let v = match m {
                    Marker::I8 => i64::from(self.u8()? as i8),
                    Marker::I16 => i64::from(self.u16()? as i16),
                    Marker::I32 => i64::from(self.u32()? as i32),
                    _ => self.u64()? as i64,
                };
                Number::from_i64(v)
            }
            Marker::F32 | Marker::F64 => {
                self.pos += 1;
                let v = match m {
                    Marker::F32 => f64::from(f32::from_bits(self.u32()?)),
                    _ => f64::from_bits(self.u64()?),
                };
                Number::from_f64(v).ok_or_else(|| {
                    self.err("a finite number is required (NaN or infinity found)")
                })?
            }
            _ => {
                let raw = self.raw_string()?.ok_or_else(|| {
                    self.err(format!("a number is required, found {}", describe(m)))
                })?;
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| Number::parse(s).ok())
                    .ok_or_else(|| self.err("a number is required, found non-numeric text"))?
            }
        };
        Ok(n)
    }

    fn elements(&mut self, ety: &Type, what: &str) -> Result<Vec<Value>, CtyError> {
        let len = self.array_len(what)?;
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            self.path.0.push(PathStep::Index(i as i64));
            let v = self.value(ety);
            self.path.0.pop();
            out.push(v?);
        }
        Ok(out)
    }

    fn tuple(&mut self, types: &[Type]) -> Result<Vec<Value>, CtyError> {
        let len = self.array_len("a tuple")?;
        if len != types.len() {
            return Err(self.err(format!(
                "a tuple of {} elements is required, found {len}",
                types.len()
            )));
        }
        let mut out = Vec::with_capacity(len);
        for (i, t) in types.iter().enumerate() {
            self.path.0.push(PathStep::Index(i as i64));
            let v = self.value(t);
            self.path.0.pop();
            out.push(v?);
        }
        Ok(out)
    }

    fn map(&mut self, ety: &Type) -> Result<BTreeMap<String, Value>, CtyError> {
        let len = self.map_len("a map")?;
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let key = self.string("a map key")?;
            self.path.0.push(PathStep::Key(key));
            let v = self.value(ety);
            let Some(PathStep::Key(key)) = self.path.0.pop() else {
                return Err(self.err("internal: path stack out of order"));
            };
            if out.insert(key.clone(), v?).is_some() {
                self.path.0.push(PathStep::Key(key));
                let e = self.err("duplicate map key");
                self.path.0.pop();
                return Err(e);
            }
        }
        Ok(out)
    }

    fn object(
        &mut self,
        attrs: &BTreeMap<String, Type>,
    ) -> Result<BTreeMap<String, Value>, CtyError> {
        let len = self.map_len("an object")?;
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let key = self.string("an attribute name")?;
            let Some(aty) = attrs.get(&key) else {
                return Err(self.err(format!("unsupported attribute {key:?}")));
            };
            self.path.0.push(PathStep::Attribute(key));
            let v = self.value(aty);
            let Some(PathStep::Attribute(key)) = self.path.0.pop() else {
                return Err(self.err("internal: path stack out of order"));
            };
            if out.insert(key.clone(), v?).is_some() {
                return Err(self.err(format!("duplicate attribute {key:?}")));
            }
        }
        for name in attrs.keys() {
            if !out.contains_key(name) {
                out.insert(name.clone(), Value::Null);
            }
        }
        Ok(out)
    }

    fn dynamic(&mut self) -> Result<Value, CtyError> {
        let m = self.peek()?;
        if m == Marker::Null {
            self.pos += 1;
            return Ok(Value::Null);
        }
        let len = self.array_len("a dynamic value ([type, value] array)")?;
        if len != 2 {
            return Err(self.err(format!(
                "a dynamic value must be a [type, value] array, found {len} elements"
            )));
        }
        let tm = self.peek()?;
        let type_json = self.raw_string()?.ok_or_else(|| {
            self.err(format!(
                "a dynamic value's type must be JSON bytes, found {}",
                describe(tm)
            ))
        })?;
        let ty = Type::from_json(type_json).map_err(|e| self.err(e.to_string()))?;
        let v = self.value(&ty)?;
        Ok(match ty {
            // `["\"dynamic\"", x]`: the inner value carries its own type already
            Type::Dynamic => v,
            ty => Value::Dynamic(ty, Box::new(v)),
        })
    }
}
