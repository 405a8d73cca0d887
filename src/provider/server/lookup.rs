//! Type-name look-ups shared by the handlers.

use crate::provider::schema::{vyos_artifact_schema, vyos_image_schema, VYOS_ARTIFACT, VYOS_IMAGE};
use crate::tfplugin5::schema::Schema;
use crate::tfplugin5::Diagnostic;

/// The schema of resource type `type_name`.
pub(crate) fn resource_schema(type_name: &str) -> Result<&'static Schema, Diagnostic> {
    if type_name == VYOS_IMAGE {
        Ok(vyos_image_schema())
    } else {
        Err(unknown_type("resource", type_name, VYOS_IMAGE))
    }
}

/// The schema of data source type `type_name`.
pub(crate) fn data_source_schema(type_name: &str) -> Result<&'static Schema, Diagnostic> {
    if type_name == VYOS_ARTIFACT {
        Ok(vyos_artifact_schema())
    } else {
        Err(unknown_type("data source", type_name, VYOS_ARTIFACT))
    }
}

fn unknown_type(kind: &str, got: &str, known: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Unknown {kind} type"),
        format!("This provider has no {kind} type {got:?}; it offers {known:?}."),
    )
}
