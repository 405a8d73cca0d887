//! Managed resources. Each file owns one resource type's create/read/delete wiring to the engine
//! and the mapping of its results onto state; `bridge` (engine environment, progress, error
//! mapping), `published` (refresh/destroy checks from the recorded contract) and `import` (inputs
//! a manifest records) support them and the data sources; `on_runner` sends a create or refresh
//! to the provider's `build_runner`.

pub(crate) mod bridge;
mod import;
pub(crate) mod on_runner;
pub(crate) mod published;
pub mod vyos_image;
