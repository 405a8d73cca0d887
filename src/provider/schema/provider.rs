//! Schema of the `provider "hyops"` block. Provider configuration is never written to state.

use crate::cty::Type;
use crate::tfplugin5::schema::{Attribute, Block, NestedBlock, Schema};

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
                Attribute::optional(
                    "cache_max_size_gb",
                    Type::Number,
                    "Size limit in GiB for the build cache entries plus cached ISOs; after each \
                     successful create the least recently used go until the cache fits, never \
                     one a running build uses. Default: no limit. Environment default: \
                     HYOPS_VYOS_CACHE_MAX_SIZE_GB.",
                ),
                Attribute::optional(
                    "cache_failed_max_age",
                    Type::String,
                    "Age (Go duration) after which failed build work directories and build logs \
                     in the cache are removed. Default \"168h\". Environment default: \
                     HYOPS_VYOS_CACHE_FAILED_MAX_AGE.",
                ),
            ],
            block_types: vec![NestedBlock::single("build_runner", build_runner_block())],
        },
    }
}

/// `build_runner`: every build of this provider configuration runs on that host over SSH.
fn build_runner_block() -> Block {
    let s = Type::String;
    Block {
        description: "Build on a dedicated runner over SSH (the system OpenSSH client, one \
                      multiplexed connection): the provider ships its own binary there and runs \
                      the build, ISO cache, preflight and publish on the runner. Host keys are \
                      always checked. The operator CLI reads the same fields from \
                      HYOPS_VYOS_BUILD_RUNNER_* (HOST, PORT, USER, IDENTITY_FILE, \
                      KNOWN_HOSTS_FILE, HOST_KEY, PROXY_JUMP, REMOTE_DIR, CONNECT_TIMEOUT)."
            .into(),
        attributes: vec![
            Attribute::required("host", s.clone(), "Runner host name or address."),
            Attribute::optional("port", Type::Number, "SSH port. Default 22."),
            Attribute::optional(
                "user",
                s.clone(),
                "SSH user. Default: ssh's own default (~/.ssh/config).",
            ),
            Attribute::optional(
                "identity_file",
                s.clone(),
                "Private key file. Default: the SSH agent and ~/.ssh/config.",
            ),
            Attribute::optional(
                "known_hosts_file",
                s.clone(),
                "known_hosts file holding the runner's host key (used alone). Conflicts with \
                 host_key. Without either, ssh's own known_hosts files are used, strictly.",
            ),
            Attribute::optional(
                "host_key",
                s.clone(),
                "The runner's public host key, `<type> <base64>` (e.g. the content of \
                 /etc/ssh/ssh_host_ed25519_key.pub). Conflicts with known_hosts_file.",
            ),
            Attribute::optional(
                "proxy_jump",
                s.clone(),
                "Jump host(s), as ssh -J takes them.",
            ),
            Attribute::optional(
                "remote_dir",
                s.clone(),
                "Runner directory for the shipped binary and run files (absolute or ~/...). \
                 Default ~/.cache/hybridops/runner.",
            ),
            Attribute::optional(
                "connect_timeout",
                s,
                "Give up connecting after this long (Go duration or seconds). Default 30s.",
            ),
        ],
        block_types: vec![],
    }
}
