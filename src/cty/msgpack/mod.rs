//! cty's msgpack encoding, as Terraform puts it in `DynamicValue.msgpack`.
//!
//! The bytes alone are ambiguous; decoding and encoding are always driven by the [`Type`] (the
//! schema's implied type), exactly like go-cty's `cty/msgpack`:
//! - nil is null; **any** msgpack ext value (any type code, any length — refinements included) is
//!   an unknown value, its payload dropped. Unknowns are written only as `d4 00 00` (fixext1,
//!   type 0, one zero byte).
//! - strings are msgpack str (bin is accepted on input); bools are msgpack bools.
//! - numbers are read from every int width, float32, float64 and decimal strings (cty writes
//!   numbers that fit neither an int64 nor a float64 as strings such as `"1e400"`). Written as the
//!   smallest int when they are integers in the `i64`/`u64` range, else as float64 when that float's
//!   exact value is the number, else as the canonical decimal string (see [`Number`]).
//! - lists and sets are arrays, tuples arrays of exactly their element count, maps are maps with
//!   string keys (written in sorted key order).
//! - objects are maps carrying **every** attribute of the type in sorted key order, nil where the
//!   value is null. On input a missing attribute becomes null (tolerant) and a key the type does
//!   not have is an error naming the key (schema drift stays visible).
//! - a value whose type is `dynamic` travels as a two-element array `[type JSON, value]`, the type
//!   JSON as msgpack bin (str accepted on input); an unknown or null dynamic value is the plain
//!   unknown ext / nil.
//!
//! Decoding never panics on any input: lengths are checked against the remaining bytes, nesting is
//! bounded by [`MAX_DEPTH`], trailing bytes after the value are an error, and every error carries
//! the attribute path where it happened.
//!
//! [`Number`]: super::Number

mod decode;
mod encode;

use super::{CtyError, Type, Value};

/// Deepest container nesting accepted by [`decode`] and [`encode`] (dynamic wrappers count).
pub const MAX_DEPTH: usize = 64;

/// The only bytes written for an unknown value: fixext1, ext type 0, data 0.
pub const UNKNOWN_BYTES: [u8; 3] = [0xd4, 0x00, 0x00];

/// Decodes msgpack bytes holding a value of type `ty`.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    decode::decode(bytes, ty)
}

/// Encodes `value` as msgpack for type `ty`.
///
/// The value must conform to the type: objects may omit attributes (written as nil) but not carry
/// extra ones; a value in a `dynamic` position must be [`Value::Dynamic`] (or null / unknown); a set
/// type also accepts [`Value::List`].
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CtyError> {
    encode::encode(value, ty)
}
