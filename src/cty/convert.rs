//! Small constructors and visitors over [`Value`] that the provider layer needs.
//!
//! Values carry no type, so "null of type T" is just [`Value::Null`]; the helpers here build
//! objects, shape a whole object from its type (every attribute null or unknown) and walk or
//! rewrite values with their attribute [`Path`]s (e.g. to null write-only attributes).
//! Knows nothing about any schema or resource.

use std::collections::BTreeMap;

use super::{Number, Path, PathStep, Type, Value};

impl Value {
    /// An object from `(name, value)` pairs.
    pub fn object<I, K>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map from `(key, value)` pairs.
    pub fn map<I, K>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A known number from an integer.
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// For an object type, an object with every attribute null; otherwise [`Value::Null`].
    pub fn null_object(ty: &Type) -> Value {
        match ty {
            Type::Object(attrs) => {
                Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect())
            }
            _ => Value::Null,
        }
    }

    /// For an object type, an object with every attribute unknown (the plan of a resource being
    /// created, before computed values are filled in); otherwise [`Value::Unknown`].
    pub fn unknown_like(ty: &Type) -> Value {
        match ty {
            Type::Object(attrs) => {
                Value::Object(attrs.keys().map(|k| (k.clone(), Value::Unknown)).collect())
            }
            _ => Value::Unknown,
        }
    }

    /// The value at `path` (`None` when a step does not exist or does not fit the value).
    /// Set elements are addressed by position, like list elements.
    pub fn get_path(&self, path: &Path) -> Option<&Value> {
        let mut cur = self;
        for step in &path.0 {
            cur = cur.step(step)?;
        }
        Some(cur)
    }

    fn step(&self, step: &PathStep) -> Option<&Value> {
        match (self, step) {
            (Value::Dynamic(_, v), s) => v.step(s),
            (Value::Object(m), PathStep::Attribute(a)) => m.get(a),
            (Value::Map(m), PathStep::Key(k)) => m.get(k),
            (Value::List(v) | Value::Set(v), PathStep::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| v.get(i))
            }
            _ => None,
        }
    }

    /// Visits this value and everything inside it, parents before children, with each one's
    /// path. A dynamic wrapper is visited, then its inner value at the same path.
    pub fn walk<F: FnMut(&Path, &Value)>(&self, f: &mut F) {
        let mut path = Path::root();
        self.walk_at(&mut path, f);
    }

    fn walk_at<F: FnMut(&Path, &Value)>(&self, path: &mut Path, f: &mut F) {
        f(path, self);
        match self {
            Value::List(items) | Value::Set(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.0.push(PathStep::Index(i as i64));
                    item.walk_at(path, f);
                    path.0.pop();
                }
            }
            Value::Map(m) => {
                for (k, item) in m {
                    path.0.push(PathStep::Key(k.clone()));
                    item.walk_at(path, f);
                    path.0.pop();
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    path.0.push(PathStep::Attribute(k.clone()));
                    item.walk_at(path, f);
                    path.0.pop();
                }
            }
            Value::Dynamic(_, v) => v.walk_at(path, f),
            _ => {}
        }
    }

    /// Rebuilds the value with every leaf (null, unknown, string, number, bool — including a
    /// null or unknown where a container could be) replaced by `f(path, leaf)`.
    pub fn map_leaves<F: FnMut(&Path, Value) -> Value>(self, f: &mut F) -> Value {
        let mut path = Path::root();
        self.map_leaves_at(&mut path, f)
    }

    fn map_leaves_at<F: FnMut(&Path, Value) -> Value>(self, path: &mut Path, f: &mut F) -> Value {
        match self {
            Value::List(items) => Value::List(map_items(items, path, f)),
            Value::Set(items) => Value::Set(map_items(items, path, f)),
            Value::Map(m) => Value::Map(map_entries(m, path, f, PathStep::Key)),
            Value::Object(m) => Value::Object(map_entries(m, path, f, PathStep::Attribute)),
            Value::Dynamic(t, v) => Value::Dynamic(t, Box::new(v.map_leaves_at(path, f))),
            leaf => f(path, leaf),
        }
    }
}

fn map_items<F: FnMut(&Path, Value) -> Value>(
    items: Vec<Value>,
    path: &mut Path,
    f: &mut F,
) -> Vec<Value> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            path.0.push(PathStep::Index(i as i64));
            let v = item.map_leaves_at(path, f);
            path.0.pop();
            v
        })
        .collect()
}

fn map_entries<F: FnMut(&Path, Value) -> Value>(
    m: BTreeMap<String, Value>,
    path: &mut Path,
    f: &mut F,
    step: fn(String) -> PathStep,
) -> BTreeMap<String, Value> {
    m.into_iter()
        .map(|(k, item)| {
            path.0.push(step(k.clone()));
            let v = item.map_leaves_at(path, f);
            path.0.pop();
            (k, v)
        })
        .collect()
}
