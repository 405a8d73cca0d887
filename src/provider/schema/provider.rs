//! Schema of the `provider "hyops"` block. Provider configuration is never written to state.

use crate::cty::Type;
use crate::tfplugin5::schema::{Attribute, Block, Schema};

pub(super) fn schema() -> Schema {
    let s = Type::String;
    Schema {
        version: 0,
        block: Block {
            description: "Builds, verifies and publishes canonical VyOS disk images. Settings here \
                          apply to every hyops_vyos_image and hyops_vyos_artifact of this provider \
                          configuration; each falls back to the environment variable named in its \
                          description."
                .into(),
            attributes: vec![
                Attribute::optional(
                    "cache_dir",
                    s.clone(),
                    "Directory caching downloaded ISOs and built artifacts. Default: \
                     $HYOPS_VYOS_ISO_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/hybridops/vyos.",
                ),
                Attribute::optional(
                    "runtime_root",
                    s.clone(),
                    "HyOps runtime root used to resolve *_state_ref look-ups and to write HyOps \
                     state files. Default: $HYOPS_RUNTIME_ROOT, else ~/.hybridops/envs/$HYOPS_ENV \
                     when HYOPS_ENV is set, else ~/.hybridops.",
                ),
                Attribute::optional(
                    "gcs_credentials",
                    s.clone(),
                    "Google Cloud credential JSON used to publish to GCS: a service-account key, \
                     authorized_user, external_account (Workload Identity Federation) or \
                     impersonated_service_account. Environment fallback: HYOPS_VYOS_GCS_SA_JSON, \
                     then Application Default Credentials. Conflicts with gcs_credentials_file.",
                )
                .sensitive(),
                Attribute::optional(
                    "gcs_credentials_file",
                    s.clone(),
                    "Path to a Google Cloud credential JSON file (any kind gcs_credentials takes). \
                     Environment fallback: HYOPS_VYOS_GCS_SA_JSON_FILE, then Application Default \
                     Credentials. Conflicts with gcs_credentials.",
                ),
                Attribute::optional(
                    "gcs_impersonate_service_account",
                    s.clone(),
                    "E-mail of a Google service account to impersonate for GCS: short-lived tokens \
                     are minted through the IAM Credentials API (generateAccessToken) on top of \
                     whichever credential was found (the caller needs \
                     roles/iam.serviceAccountTokenCreator on it).",
                ),
                Attribute::optional(
                    "gcs_endpoint",
                    s.clone(),
                    "GCS JSON-API base URL (http or https), for emulators and private endpoints. \
                     Environment fallback: HYOPS_GCS_ENDPOINT. Default: \
                     https://storage.googleapis.com.",
                ),
                Attribute::optional(
                    "s3_endpoint",
                    s.clone(),
                    "Endpoint URL (http or https) of an S3-compatible store. Keys come from the \
                     standard AWS_* environment variables.",
                ),
                Attribute::optional(
                    "s3_region",
                    s.clone(),
                    "S3 region. Default: the standard AWS_REGION / AWS_DEFAULT_REGION variables.",
                ),
                Attribute::optional(
                    "azure_storage_account",
                    s,
                    "Azure storage account for the azure backend. Keys come from the standard \
                     AZURE_STORAGE_* environment variables.",
                ),
                Attribute::optional(
                    "max_parallel_builds",
                    Type::Number,
                    "Maximum number of image builds running at once in this provider; further \
                     builds queue. Default 1; must be at least 1.",
                ),
            ],
            block_types: vec![],
        },
    }
}
