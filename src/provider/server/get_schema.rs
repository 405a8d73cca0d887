//! GetSchema (GetProviderSchema): provider, resource and data source schemas.

use crate::provider::schema::{
    provider_schema, vyos_artifact_schema, vyos_image_schema, VYOS_ARTIFACT, VYOS_IMAGE,
};
use crate::tfplugin5::pb;
use crate::tfplugin5::pb::get_provider_schema as m;

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
        ..m::Response::default()
    }
}
