//! Schema of data source `hyops_vyos_artifact`: state-first consumption of a published artifact.

use crate::cty::Type;
use crate::tfplugin5::schema::{Attribute, Block, Schema};

use super::contract::computed_attributes;

pub(super) fn schema() -> Schema {
    let s = Type::String;
    let mut attributes = vec![
        Attribute::optional_computed(
            "manifest_url",
            s.clone(),
            "URL of the artifact's manifest.json (gs://, s3://, az://, https:// or file://). \
             Exactly one of manifest_url and artifact_state_ref must be set; with \
             artifact_state_ref it is filled from the state.",
        ),
        Attribute::optional(
            "artifact_state_ref",
            s.clone(),
            "HyOps state reference of the build, e.g. \
             \"core/shared/vyos-image-build#vyos_default_build\", resolved under the provider's \
             runtime_root. Requires artifact_key.",
        ),
        Attribute::optional_computed(
            "artifact_key",
            s.clone(),
            "Artifact key to select from the referenced state (required with \
             artifact_state_ref); read from the manifest otherwise.",
        ),
        Attribute::optional(
            "verify",
            Type::Bool,
            "Check that the artifact exists with the recorded size. Default true.",
        ),
        Attribute::computed(
            "artifact_format",
            s.clone(),
            "Disk format of the artifact (qcow2, raw or img).",
        ),
        Attribute::computed(
            "artifact_version",
            s.clone(),
            "Version label of the artifact.",
        ),
        Attribute::computed(
            "artifact_local_path",
            s.clone(),
            "Path the artifact was built at on the builder.",
        ),
        Attribute::computed(
            "source_iso_url",
            s.clone(),
            "Official URL of the ISO the artifact was built from.",
        ),
        Attribute::computed(
            "source_iso_sha256",
            s,
            "SHA-256 of the ISO the artifact was built from.",
        ),
    ];
    // manifest_url is an input here as well as a contract output: declared once, above
    attributes.extend(
        computed_attributes()
            .into_iter()
            .filter(|a| a.name != "manifest_url"),
    );
    Schema {
        version: 0,
        block: Block {
            description: "Reads the artifact contract of a published VyOS image from its \
                          manifest or from HyOps state, for consumers in other configurations."
                .into(),
            attributes,
            block_types: vec![],
        },
    }
}
