//! cty values with unknowns.

use std::collections::BTreeMap;

use super::{Number, Type};

/// A cty value. Values carry no type of their own: the codecs take the type from the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// null of whatever type the schema says
    Null,
    /// not yet known (plan time); refinements on input are accepted and dropped
    Unknown,
    /// a string
    String(String),
    /// a number (lossless)
    Number(Number),
    /// a bool
    Bool(bool),
    /// list or tuple elements, in order
    List(Vec<Value>),
    /// set elements (order as received)
    Set(Vec<Value>),
    /// map entries
    Map(BTreeMap<String, Value>),
    /// object attributes (every attribute of the type present)
    Object(BTreeMap<String, Value>),
    /// a value of `dynamic` type: its concrete type travels with it
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// True when this value is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// True when no unknown appears anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) => v.iter().all(Value::is_wholly_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }
    /// An object attribute (`None` when this is not an object or lacks it).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(name),
            Value::Dynamic(_, v) => v.get(name),
            _ => None,
        }
    }
    /// The string, when this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The bool, when this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The number, when this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}
