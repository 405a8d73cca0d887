//! The tfplugin5 provider service: schemas, validation, configuration decoding, plan rules and
//! the resource / data source implementations. The only place Terraform meets the engine.
//!
//! Layout (STYLE §1): [`service`] routes each RPC to its file under `server/`; [`schema`],
//! [`validate`], [`config`] (raw config → typed spec) and [`plan`] are pure; [`resources`] and
//! [`data_sources`] are where the engine is called.

pub mod config;
mod contract_state;
pub mod data_sources;
pub mod plan;
pub mod resources;
pub mod schema;
mod server;
pub mod service;
mod state_upgrade;
pub mod validate;

pub use service::ProviderService;
