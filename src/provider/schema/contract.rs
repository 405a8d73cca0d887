//! The computed attributes of the artifact contract, shared by `hyops_vyos_image` and
//! `hyops_vyos_artifact` (DESIGN §2, "Computed").

use crate::cty::Type;
use crate::tfplugin5::schema::Attribute;

/// Names of the contract attributes that are always computed (never configured) on the resource.
pub const COMPUTED_CONTRACT_ATTRIBUTES: &[&str] = &[
    "id",
    "artifact_url",
    "artifact_storage_uri",
    "artifact_sha256",
    "artifact_size_bytes",
    "artifact_virtual_size_bytes",
    "vyos_version",
    "build_id",
    "built_at",
    "published",
    "published_at",
    "remote_checksum",
    "remote_generation",
    "manifest_url",
    "artifacts",
    "contract_json",
];

/// The element type of `artifacts` (HyOps shape).
pub(crate) fn artifact_entry_type() -> Type {
    Type::object([
        ("artifact_url", Type::String),
        ("artifact_format", Type::String),
        ("artifact_version", Type::String),
        ("artifact_sha256", Type::String),
        ("source_iso_url", Type::String),
        ("artifact_local_path", Type::String),
    ])
}

/// The always-computed contract attributes, in [`COMPUTED_CONTRACT_ATTRIBUTES`] order.
pub(super) fn computed_attributes() -> Vec<Attribute> {
    let s = Type::String;
    vec![
        Attribute::computed(
            "id",
            s.clone(),
            "Identifier of this artifact: the build id, or the manifest URL for imported and \
             looked-up artifacts.",
        ),
        Attribute::computed(
            "artifact_url",
            s.clone(),
            "URL consumers download the image from: https://storage.googleapis.com/BUCKET/OBJECT \
             for GCS, public_base_url + object when set, file:// for local-only builds.",
        ),
        Attribute::computed(
            "artifact_storage_uri",
            s.clone(),
            "Storage URI of the published object (gs://, s3://, az:// or file://).",
        ),
        Attribute::computed(
            "artifact_sha256",
            s.clone(),
            "SHA-256 (hex) of the artifact as published; use it as the download checksum.",
        ),
        Attribute::computed(
            "artifact_size_bytes",
            Type::Number,
            "Size of the artifact file in bytes.",
        ),
        Attribute::computed(
            "artifact_virtual_size_bytes",
            Type::Number,
            "Virtual disk size in bytes as reported by qemu-img.",
        ),
        Attribute::computed(
            "vyos_version",
            s.clone(),
            "VyOS version read from the ISO's version.json (empty when the ISO carries none).",
        ),
        Attribute::computed("build_id", s.clone(), "Unique identifier of the build run."),
        Attribute::computed(
            "built_at",
            s.clone(),
            "Time the image was built (RFC 3339, UTC).",
        ),
        Attribute::computed(
            "published",
            Type::Bool,
            "True when the artifact was published to object storage; false for local-only builds.",
        ),
        Attribute::computed(
            "published_at",
            s.clone(),
            "Time the artifact was published (RFC 3339, UTC); empty when not published.",
        ),
        Attribute::computed(
            "remote_checksum",
            s.clone(),
            "Checksum reported by the store for the uploaded object (crc32c, md5 or ETag, as the \
             store gives it).",
        ),
        Attribute::computed(
            "remote_generation",
            s.clone(),
            "Object generation or version reported by the store (empty when the store has none).",
        ),
        Attribute::computed(
            "manifest_url",
            s.clone(),
            "URL of the manifest.json written next to the image.",
        ),
        Attribute::computed(
            "artifacts",
            Type::map(artifact_entry_type()),
            "All published encodings in HyOps shape, keyed by artifact key; additional formats \
             are keyed <artifact_key>+<format>. Each entry has artifact_url, artifact_format, \
             artifact_version, artifact_sha256, source_iso_url and artifact_local_path.",
        ),
        Attribute::computed(
            "contract_json",
            s,
            "The whole artifact contract as a JSON document (the same content as manifest.json).",
        ),
    ]
}
