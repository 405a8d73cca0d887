//! Managed resources. Each file owns one resource type's create/read/delete wiring to the engine
//! and the mapping of its results onto state; `bridge` (engine environment, progress, error
//! mapping), `published` (refresh/destroy checks from the recorded contract) and `import` (inputs
//! a manifest records), `references` (confinement and the instance's artifact reference) and `lifecycle` (destroy,
//! destroy-plan warnings, the write-only re-check) support
//! them and the data sources.

pub(crate) mod bridge;
mod import;
mod lifecycle;
pub(crate) mod published;
mod references;
pub mod vyos_image;
