//! GetMetadata: the resource and data source type names, without schemas.

use crate::provider::schema::{VYOS_ARTIFACT, VYOS_IMAGE};
use crate::tfplugin5::pb;
use crate::tfplugin5::pb::get_metadata as m;

pub(crate) fn handle(_req: m::Request) -> m::Response {
    m::Response {
        server_capabilities: Some(super::get_schema::server_capabilities()),
        resources: vec![m::ResourceMetadata {
            type_name: VYOS_IMAGE.to_string(),
        }],
        data_sources: vec![m::DataSourceMetadata {
            type_name: VYOS_ARTIFACT.to_string(),
        }],
        ..pb::get_metadata::Response::default()
    }
}
