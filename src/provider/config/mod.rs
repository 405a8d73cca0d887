//! Raw configuration → typed specs, in one low→high step (STYLE rule 3): a decoded cty object
//! becomes an [`ImageSpec`](crate::engine::spec::ImageSpec), a
//! [`ProviderSettings`](crate::engine::spec::ProviderSettings) or an [`ArtifactQuery`]. Nothing
//! past this module sees a cty value.
//!
//! Problems are error diagnostics at the attribute's path. Static rules ([`super::validate`]) run
//! first; this step re-checks only what it must to build the typed value (e.g. an enum spelling),
//! so it never produces a half-valid spec.

mod artifact;
mod image;
mod provider;
mod reader;

pub use artifact::{artifact_query, ArtifactQuery, ArtifactSource};
pub use image::{image_config, ImageConfig, WriteOnlySecret};
pub use provider::{provider_settings, ConfiguredSettings};
