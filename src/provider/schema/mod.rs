//! The provider's schemas (DESIGN §2): provider `hyops`, resource `hyops_vyos_image`, data source
//! `hyops_vyos_artifact`. Every attribute and block carries a description, so docs and
//! `terraform providers schema -json` come from here.
//!
//! Owns names and types only; rules live in [`super::validate`], plan semantics in
//! [`super::plan`]. Schemas are built once and shared.

mod contract;
mod provider;
mod vyos_artifact;
mod vyos_image;

use std::sync::LazyLock;

use crate::tfplugin5::schema::Schema;

pub use contract::COMPUTED_CONTRACT_ATTRIBUTES;
pub use vyos_image::{REFERENCE_ID, SCHEMA_VERSION as VYOS_IMAGE_SCHEMA_VERSION};

/// Type name of the resource.
pub const VYOS_IMAGE: &str = "hyops_vyos_image";
/// Type name of the data source.
pub const VYOS_ARTIFACT: &str = "hyops_vyos_artifact";

static PROVIDER: LazyLock<Schema> = LazyLock::new(provider::schema);
static IMAGE: LazyLock<Schema> = LazyLock::new(vyos_image::schema);
static ARTIFACT: LazyLock<Schema> = LazyLock::new(vyos_artifact::schema);

/// The `provider "hyops"` schema.
pub fn provider_schema() -> &'static Schema {
    &PROVIDER
}

/// The `hyops_vyos_image` schema.
pub fn vyos_image_schema() -> &'static Schema {
    &IMAGE
}

/// The `hyops_vyos_artifact` schema.
pub fn vyos_artifact_schema() -> &'static Schema {
    &ARTIFACT
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::tfplugin5::schema::Block;

    fn assert_unique_names(block: &Block, what: &str) {
        let mut seen = BTreeSet::new();
        for name in block
            .attributes
            .iter()
            .map(|a| a.name.as_str())
            .chain(block.block_types.iter().map(|b| b.type_name.as_str()))
        {
            assert!(seen.insert(name), "{what}: {name} declared twice");
        }
        for b in &block.block_types {
            assert_unique_names(&b.block, &format!("{what}.{}", b.type_name));
        }
    }

    #[test]
    fn every_name_is_declared_once_and_described() {
        for (what, schema) in [
            ("provider", provider_schema()),
            (VYOS_IMAGE, vyos_image_schema()),
            (VYOS_ARTIFACT, vyos_artifact_schema()),
        ] {
            assert_unique_names(&schema.block, what);
            assert!(!schema.block.description.is_empty(), "{what}");
            for a in &schema.block.attributes {
                assert!(!a.description.is_empty(), "{what}.{}", a.name);
                assert!(
                    a.required || a.optional || a.computed,
                    "{what}.{} must be required, optional or computed",
                    a.name
                );
            }
        }
    }
}
