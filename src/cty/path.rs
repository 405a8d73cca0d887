//! Attribute paths, as Terraform's diagnostics address a value.

use std::fmt;

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// `.name`
    Attribute(String),
    /// `["key"]` into a map
    Key(String),
    /// `[n]` into a list or tuple (also used for a single nested block: `build[0]` is not used by
    /// Terraform for `NestingSingle`; single blocks are addressed as attributes)
    Index(i64),
}

/// An attribute path such as `build.method` or `additional_formats[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(pub Vec<PathStep>);

impl Path {
    /// The empty (root) path.
    pub fn root() -> Path {
        Path(Vec::new())
    }
    /// A path of one attribute.
    pub fn attr(name: &str) -> Path {
        Path(vec![PathStep::Attribute(name.to_string())])
    }
    /// This path extended by an attribute.
    pub fn join_attr(&self, name: &str) -> Path {
        let mut p = self.clone();
        p.0.push(PathStep::Attribute(name.to_string()));
        p
    }
    /// This path extended by an index.
    pub fn join_index(&self, i: i64) -> Path {
        let mut p = self.clone();
        p.0.push(PathStep::Index(i));
        p
    }
    /// This path extended by a map key.
    pub fn join_key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(PathStep::Key(k.to_string()));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attribute(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attribute(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
