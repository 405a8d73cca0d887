//! One file per RPC (STYLE §1): each handler looks things up, decodes with [`dynamic`], calls the
//! provider core and encodes back. Shared edge duties live beside them: panic catching
//! ([`edge`]), write-only nulling ([`dynamic::encode_state`]) and write-only refusal
//! ([`write_only`]).

pub(crate) mod apply_resource_change;
pub(crate) mod configure;
pub(crate) mod dynamic;
pub(crate) mod edge;
pub(crate) mod get_metadata;
pub(crate) mod get_schema;
pub(crate) mod import_resource_state;
pub(crate) mod lookup;
pub(crate) mod plan_resource_change;
pub(crate) mod prepare_provider_config;
pub(crate) mod read_data_source;
pub(crate) mod read_resource;
pub(crate) mod upgrade_resource_state;
pub(crate) mod validate_data_source_config;
pub(crate) mod validate_resource_type_config;
pub(crate) mod write_only;
