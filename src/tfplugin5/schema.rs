//! The schema model: what a provider, resource or data source declares to Terraform.
//!
//! Owns [`Schema`], [`Block`], [`Attribute`] and [`NestedBlock`], the implied cty type of a block
//! (the type every `DynamicValue` of that schema is decoded with) and the conversion to the
//! protocol's `Schema` message. Knows nothing about VyOS or about any particular provider.
//!
//! Caveat: the implied type must match Terraform's own derivation exactly (a single or group
//! nested block is an object, a list block a list of objects, …); a mismatch makes every msgpack
//! value undecodable.

use std::collections::BTreeMap;

use super::pb;
use crate::cty::{Path, Type};

/// A versioned schema of a provider, resource or data source.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// schema version (state upgrades key on it)
    pub version: i64,
    /// the top-level block
    pub block: Block,
}

/// A configuration block: attributes and nested blocks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// attributes, in declaration order
    pub attributes: Vec<Attribute>,
    /// nested block types, in declaration order
    pub block_types: Vec<NestedBlock>,
    /// plain-text description (docs come from it)
    pub description: String,
}

/// One attribute of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// attribute name
    pub name: String,
    /// cty type
    pub ty: Type,
    /// plain-text description
    pub description: String,
    /// must be set in configuration
    pub required: bool,
    /// may be set in configuration
    pub optional: bool,
    /// the provider may set it (alone: read-only; with `optional`: defaulted by the provider)
    pub computed: bool,
    /// hidden in Terraform's UI output
    pub sensitive: bool,
    /// never persisted: null in every state and plan the provider returns (protocol 5.8)
    pub write_only: bool,
}

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// at most one block; its value is an object (null when absent)
    Single,
    /// an ordered list of blocks
    List,
    /// a set of blocks
    Set,
    /// blocks labelled by a key
    Map,
    /// exactly one block whose absence means "all attributes null"
    Group,
}

/// A nested block type.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    /// block type name as written in configuration
    pub type_name: String,
    /// the block's contents
    pub block: Block,
    /// how it repeats
    pub nesting: Nesting,
    /// minimum number of blocks (0: optional)
    pub min_items: i64,
    /// maximum number of blocks (0: unlimited)
    pub max_items: i64,
}

impl Attribute {
    fn new(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
        }
    }
    /// A required attribute.
    pub fn required(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            required: true,
            ..Attribute::new(name, ty, description)
        }
    }
    /// An optional attribute.
    pub fn optional(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            optional: true,
            ..Attribute::new(name, ty, description)
        }
    }
    /// A read-only attribute set by the provider.
    pub fn computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            computed: true,
            ..Attribute::new(name, ty, description)
        }
    }
    /// An optional attribute the provider fills when it is not configured.
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, ty, description)
        }
    }
    /// Marks the attribute sensitive.
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }
    /// Marks the attribute write-only.
    pub fn write_only(mut self) -> Attribute {
        self.write_only = true;
        self
    }
}

impl NestedBlock {
    /// A `NestingSingle` block (at most one).
    pub fn single(type_name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            type_name: type_name.to_string(),
            block,
            nesting: Nesting::Single,
            min_items: 0,
            max_items: 0,
        }
    }

    /// The cty type of this block's value inside its parent object.
    pub fn implied_type(&self) -> Type {
        let obj = self.block.implied_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => obj,
            Nesting::List => Type::list(obj),
            Nesting::Set => Type::set(obj),
            Nesting::Map => Type::map(obj),
        }
    }
}

impl Block {
    /// The object type of a value of this block: one key per attribute and per nested block type.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = BTreeMap::new();
        for a in &self.attributes {
            attrs.insert(a.name.clone(), a.ty.clone());
        }
        for b in &self.block_types {
            attrs.insert(b.type_name.clone(), b.implied_type());
        }
        Type::Object(attrs)
    }

    /// The attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The nested block type named `name`.
    pub fn block_type(&self, name: &str) -> Option<&NestedBlock> {
        self.block_types.iter().find(|b| b.type_name == name)
    }

    /// Paths of every write-only attribute, descending into single and group nested blocks
    /// (the only nestings whose elements have a stable attribute path).
    pub fn write_only_paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_write_only(&Path::root(), &mut out);
        out
    }

    fn collect_write_only(&self, at: &Path, out: &mut Vec<Path>) {
        for a in self.attributes.iter().filter(|a| a.write_only) {
            out.push(at.join_attr(&a.name));
        }
        for b in &self.block_types {
            if matches!(b.nesting, Nesting::Single | Nesting::Group) {
                b.block.collect_write_only(&at.join_attr(&b.type_name), out);
            }
        }
    }
}

impl From<&Schema> for pb::Schema {
    fn from(s: &Schema) -> pb::Schema {
        pb::Schema {
            version: s.version,
            block: Some(pb::schema::Block::from(&s.block)),
        }
    }
}

impl From<&Block> for pb::schema::Block {
    fn from(b: &Block) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: b
                .attributes
                .iter()
                .map(pb::schema::Attribute::from)
                .collect(),
            block_types: b
                .block_types
                .iter()
                .map(pb::schema::NestedBlock::from)
                .collect(),
            description: b.description.clone(),
            description_kind: pb::StringKind::Plain as i32,
            deprecated: false,
        }
    }
}

impl From<&Attribute> for pb::schema::Attribute {
    fn from(a: &Attribute) -> pb::schema::Attribute {
        pb::schema::Attribute {
            name: a.name.clone(),
            r#type: a.ty.to_json_bytes(),
            description: a.description.clone(),
            required: a.required,
            optional: a.optional,
            computed: a.computed,
            sensitive: a.sensitive,
            description_kind: pb::StringKind::Plain as i32,
            deprecated: false,
            write_only: a.write_only,
        }
    }
}

impl From<&NestedBlock> for pb::schema::NestedBlock {
    fn from(b: &NestedBlock) -> pb::schema::NestedBlock {
        use pb::schema::nested_block::NestingMode;
        let nesting = match b.nesting {
            Nesting::Single => NestingMode::Single,
            Nesting::List => NestingMode::List,
            Nesting::Set => NestingMode::Set,
            Nesting::Map => NestingMode::Map,
            Nesting::Group => NestingMode::Group,
        };
        pb::schema::NestedBlock {
            type_name: b.type_name.clone(),
            block: Some(pb::schema::Block::from(&b.block)),
            nesting: nesting as i32,
            min_items: b.min_items,
            max_items: b.max_items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Block {
        Block {
            attributes: vec![
                Attribute::required("name", Type::String, "n"),
                Attribute::optional("secret", Type::String, "s")
                    .sensitive()
                    .write_only(),
            ],
            block_types: vec![
                NestedBlock::single(
                    "one",
                    Block {
                        attributes: vec![Attribute::optional("x", Type::Number, "x")],
                        ..Block::default()
                    },
                ),
                NestedBlock {
                    nesting: Nesting::List,
                    ..NestedBlock::single("many", Block::default())
                },
                NestedBlock {
                    nesting: Nesting::Map,
                    ..NestedBlock::single("keyed", Block::default())
                },
            ],
            description: String::new(),
        }
    }

    #[test]
    fn implied_type_maps_each_nesting_to_its_collection() {
        let t = sample().implied_type();
        let expected = Type::object([
            ("name", Type::String),
            ("secret", Type::String),
            ("one", Type::object([("x", Type::Number)])),
            (
                "many",
                Type::list(Type::object::<[(&str, Type); 0], &str>([])),
            ),
            (
                "keyed",
                Type::map(Type::object::<[(&str, Type); 0], &str>([])),
            ),
        ]);
        assert_eq!(t, expected);
    }

    #[test]
    fn write_only_paths_lists_top_level_and_single_block_attributes() {
        let mut b = sample();
        b.block_types[0].block.attributes[0].write_only = true;
        let paths: Vec<String> = b.write_only_paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, vec!["secret".to_string(), "one.x".to_string()]);
    }
}
