//! cty: the value model Terraform speaks on the wire.
//!
//! Owns types ([`Type`]), values with unknowns ([`Value`]), lossless numbers ([`Number`]),
//! attribute paths ([`Path`]) and the codecs driven by a type: [`msgpack`] (`DynamicValue.msgpack`),
//! [`json`] (raw state), Terraform's type JSON ([`Type::to_json_bytes`] / [`Type::from_json`]).
//! Errors are one [`CtyError`] carrying the attribute path. Knows nothing about gRPC, Terraform
//! RPCs or VyOS.
//!
//! Numbers are canonical decimal text (one spelling per value, so `==` is numeric equality); the
//! rules are on [`Number`].
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
