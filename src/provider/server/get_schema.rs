//! GetSchema (GetProviderSchema): provider, resource and data source schemas.

use crate::provider::schema::{
    provider_schema, vyos_artifact_schema, vyos_image_schema, VYOS_ARTIFACT, VYOS_IMAGE,
};
use crate::tfplugin5::pb;
use crate::tfplugin5::pb::get_provider_schema as m;

/// What this provider announces (GetProviderSchema field 6, GetMetadata field 1):
/// - `plan_destroy`: PlanResourceChange copes with a destroy (null proposed state and config;
///   the plan rules return a null planned state);
/// - `get_provider_schema_optional`: schemas are static, nothing depends on GetSchema having been
///   called, so a client may use a cached copy.
///
/// `move_resource_state` stays off (no MoveResourceState RPC). Clients older than the fields
/// (Terraform 1.0) ignore them.
pub(crate) fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: false,
    }
}

pub(crate) fn handle(_req: m::Request) -> m::Response {
    m::Response {
        provider: Some(pb::Schema::from(provider_schema())),
        resource_schemas: [(
            VYOS_IMAGE.to_string(),
            pb::Schema::from(vyos_image_schema()),
        )]
        .into_iter()
        .collect(),
        data_source_schemas: [(
            VYOS_ARTIFACT.to_string(),
            pb::Schema::from(vyos_artifact_schema()),
        )]
        .into_iter()
        .collect(),
        server_capabilities: Some(server_capabilities()),
        ..m::Response::default()
    }
}
