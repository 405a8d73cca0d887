//! The tfplugin5 provider service: schemas, validation, configuration decoding, plan rules and
//! the resource / data source implementations. The only place Terraform meets the engine.

pub mod schema;
pub mod validate;
