//! cty: the value model Terraform speaks on the wire.
//!
//! Owns types ([`Type`]), values with unknowns ([`Value`]), lossless numbers ([`Number`]),
//! attribute paths ([`Path`]) and the msgpack / JSON codecs driven by a type.
//! Knows nothing about gRPC, Terraform RPCs or VyOS.
//!
//! Caveat that costs correctness: Terraform encodes an object with **every** attribute key present
//! (nil where null); decoding is therefore always driven by the schema's implied type, never by the
//! bytes alone.

mod convert;
mod error;
pub mod json;
pub mod msgpack;
mod number;
mod path;
mod type_json;
mod types;
mod value;

pub use error::CtyError;
pub use number::Number;
pub use path::{Path, PathStep};
pub use type_json::MAX_TYPE_DEPTH;
pub use types::Type;
pub use value::Value;
