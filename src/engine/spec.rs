//! Typed inputs of the create path: what the resource's configuration and the operator CLI's
//! `SPEC.json` both become. Field names are the resource's attribute names (blocks as nested objects,
//! the way Terraform's JSON syntax writes them), so one spec file drives either entry point.
//!
//! Pure data: no I/O, no Terraform types. Validation of static rules lives in
//! [`crate::engine::spec::validate`]-style helpers owned by the engine; the provider maps their
//! field paths onto Terraform attribute paths.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything `hyops_vyos_image` needs to build and publish one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// `artifact_key`: `^[a-z0-9][a-z0-9._-]{1,62}$`
    pub artifact_key: String,
    /// `artifact_format`
    #[serde(default)]
    pub artifact_format: ArtifactFormat,
    /// `additional_formats`
    #[serde(default)]
    pub additional_formats: Vec<ExtraFormat>,
    /// `artifact_version`; default: the VyOS version read from the ISO
    #[serde(default)]
    pub artifact_version: Option<String>,
    /// `source_iso_url` (provenance; http, https or file)
    pub source_iso_url: String,
    /// `source_iso_mirror_url` (downloaded from instead, when set)
    #[serde(default)]
    pub source_iso_mirror_url: Option<String>,
    /// `source_iso_sha256` (64 hex)
    pub source_iso_sha256: String,
    /// `artifact_local_path`; default under the cache dir
    #[serde(default)]
    pub artifact_local_path: Option<PathBuf>,
    /// `rebuild_if_exists`
    #[serde(default)]
    pub rebuild_if_exists: bool,
    /// `hyops_state_instance`
    #[serde(default)]
    pub hyops_state_instance: Option<String>,
    /// `notes`
    #[serde(default)]
    pub notes: Option<String>,
    /// block `build`
    #[serde(default)]
    pub build: BuildSpec,
    /// block `smoke_verify`
    #[serde(default)]
    pub smoke_verify: SmokeVerifySpec,
    /// block `publish`; `None`: local build only
    #[serde(default)]
    pub publish: Option<PublishSpec>,
    /// block `timeouts`
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// operator CLI only: provider-level settings (same names as the provider block)
    #[serde(default)]
    pub provider: Option<ProviderSettings>,
    /// the reference this create records next to the published artifact (the resource's
    /// computed `reference_id`); `None` records none. An operator CLI spec may name one to
    /// hold the artifact against other users' destroys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
}

/// `artifact_format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactFormat {
    /// compressed qcow2 (default)
    #[default]
    Qcow2,
    /// raw disk
    Raw,
    /// raw disk with the `.img` extension
    Img,
}

impl ArtifactFormat {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactFormat::Qcow2 => "qcow2",
            ArtifactFormat::Raw => "raw",
            ArtifactFormat::Img => "img",
        }
    }
}

/// An entry of `additional_formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExtraFormat {
    /// `raw.xz`
    #[serde(rename = "raw.xz")]
    RawXz,
    /// `raw.zst`
    #[serde(rename = "raw.zst")]
    RawZst,
    /// `raw.gz`
    #[serde(rename = "raw.gz")]
    RawGz,
    /// `qcow2`
    #[serde(rename = "qcow2")]
    Qcow2,
}

impl ExtraFormat {
    /// The attribute's spelling (also the file extension).
    pub fn as_str(self) -> &'static str {
        match self {
            ExtraFormat::RawXz => "raw.xz",
            ExtraFormat::RawZst => "raw.zst",
            ExtraFormat::RawGz => "raw.gz",
            ExtraFormat::Qcow2 => "qcow2",
        }
    }
}

/// `build.method`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BuildMethod {
    /// `vyos-vm-images` (default)
    #[default]
    #[serde(rename = "vyos-vm-images")]
    VyosVmImages,
    /// `packer`
    #[serde(rename = "packer")]
    Packer,
    /// `command`
    #[serde(rename = "command")]
    Command,
}

impl BuildMethod {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildMethod::VyosVmImages => "vyos-vm-images",
            BuildMethod::Packer => "packer",
            BuildMethod::Command => "command",
        }
    }
}

/// `build.normalize`: what happens to the builder's image before it is hashed and published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizeMode {
    /// take the builder's output as it is when it already is the primary format (default);
    /// convert only when the formats differ
    #[default]
    Auto,
    /// always re-encode (compressed qcow2 with zlib, or raw): reproducible bytes from any builder
    Always,
    /// re-encode as compressed qcow2, zstd where `qemu-img` supports it, else zlib
    Compress,
}

impl NormalizeMode {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NormalizeMode::Auto => "auto",
            NormalizeMode::Always => "always",
            NormalizeMode::Compress => "compress",
        }
    }
}

/// `build.console`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Console {
    /// `kvm` (default)
    #[default]
    Kvm,
    /// `serial`
    Serial,
}

/// block `build`. `None` fields fall back to the environment variable named in DESIGN §2, then
/// to the default; that resolution happens once, in the engine, not here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// `method` (env `HYOPS_VYOS_ISO_BUILD_METHOD`)
    #[serde(default)]
    pub method: Option<BuildMethod>,
    /// `command` (env `HYOPS_VYOS_ISO_BUILD_COMMAND`)
    #[serde(default)]
    pub command: Option<String>,
    /// `workdir`
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// `disk_size_gb` (default 10)
    #[serde(default)]
    pub disk_size_gb: Option<u32>,
    /// `cloud_init` (default true)
    #[serde(default)]
    pub cloud_init: Option<bool>,
    /// `cloud_init_datasources` (default `["NoCloud","ConfigDrive"]`)
    #[serde(default)]
    pub cloud_init_datasources: Option<Vec<String>>,
    /// `guest_agent` (default `qemu`)
    #[serde(default)]
    pub guest_agent: Option<String>,
    /// `console` (default `kvm`)
    #[serde(default)]
    pub console: Option<Console>,
    /// `allow_tcg` (default false; env `HYOPS_VYOS_ALLOW_TCG=1`)
    #[serde(default)]
    pub allow_tcg: Option<bool>,
    /// `skip_preflight` (default false)
    #[serde(default)]
    pub skip_preflight: Option<bool>,
    /// `packer_template` (env `HYOPS_VYOS_PACKER_TEMPLATE`; default: packaged templates)
    #[serde(default)]
    pub packer_template: Option<PathBuf>,
    /// `packer_vars_file`
    #[serde(default)]
    pub packer_vars_file: Option<PathBuf>,
    /// `packer_extra_args`
    #[serde(default)]
    pub packer_extra_args: Option<Vec<String>>,
    /// `vyos_vm_images_dir` (env `HYOPS_VYOS_VM_IMAGES_DIR`)
    #[serde(default)]
    pub vyos_vm_images_dir: Option<PathBuf>,
    /// `triggers`: arbitrary values whose change forces a rebuild (fingerprint input only)
    #[serde(default)]
    pub triggers: BTreeMap<String, String>,
    /// `environment`: extra environment for the builder
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `normalize` (default `auto`)
    #[serde(default)]
    pub normalize: Option<NormalizeMode>,
    /// `pass_environment`: names of variables of the provider's own environment that every child
    /// (builder, smoke-verify and publish commands) also gets; nothing else is inherited beyond
    /// the supervisor's base allow-list
    #[serde(default)]
    pub pass_environment: Vec<String>,
}

/// block `smoke_verify`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeVerifySpec {
    /// `command`: replaces the default `qemu-img check` + `qemu-img info` gate
    #[serde(default)]
    pub command: Option<String>,
    /// `required` (default true): false turns a failure into a warning
    #[serde(default = "default_true")]
    pub required: bool,
    /// nested block `boot`: boot the image under QEMU before publishing
    #[serde(default)]
    pub boot: Option<BootVerifySpec>,
}

impl Default for SmokeVerifySpec {
    fn default() -> Self {
        SmokeVerifySpec {
            command: None,
            required: true,
            boot: None,
        }
    }
}

/// `smoke_verify.boot.accelerator`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootAccelerator {
    /// KVM when usable, TCG only under `build.allow_tcg` (default)
    #[default]
    Auto,
    /// KVM, refused when unusable
    Kvm,
    /// TCG software emulation (slow, always available)
    Tcg,
}

impl BootAccelerator {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BootAccelerator::Auto => "auto",
            BootAccelerator::Kvm => "kvm",
            BootAccelerator::Tcg => "tcg",
        }
    }
}

/// block `smoke_verify.boot`. `None` fields take the defaults the engine derives from the build
/// method and the `build` block (see `engine::verify::boot::BootSettings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootVerifySpec {
    /// `enabled` (default true for `packer`/`vyos-vm-images`, false for `command`)
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `accelerator` (default `auto`)
    #[serde(default)]
    pub accelerator: Option<BootAccelerator>,
    /// `timeout`, Go duration (default `5m`)
    #[serde(default)]
    pub timeout: Option<String>,
    /// `memory_mb` (default 1024)
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// `guest_agent` (default: `build.guest_agent = "qemu"`)
    #[serde(default)]
    pub guest_agent: Option<bool>,
    /// `cloud_init` (default: `build.cloud_init`)
    #[serde(default)]
    pub cloud_init: Option<bool>,
    /// `expect`: regexes that must appear on the serial console (default: a login prompt when
    /// `build.console = "serial"`)
    #[serde(default)]
    pub expect: Option<Vec<String>>,
    /// `fail_on`: regexes that fail the boot at once (default: kernel panic, emergency mode,
    /// no bootable device)
    #[serde(default)]
    pub fail_on: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}

/// `publish.backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Google Cloud Storage (JSON API)
    Gcs,
    /// S3 or S3-compatible
    S3,
    /// Azure Blob Storage
    Azure,
    /// a local directory as an object repository
    File,
}

impl Backend {
    /// The attribute's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Gcs => "gcs",
            Backend::S3 => "s3",
            Backend::Azure => "azure",
            Backend::File => "file",
        }
    }
}

/// block `publish`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// `repo_state_ref`, e.g. `org/gcp/object-repo#vyos_artifacts`
    #[serde(default)]
    pub repo_state_ref: Option<String>,
    /// `backend`; derived from the repo state when omitted
    #[serde(default)]
    pub backend: Option<Backend>,
    /// `bucket` (for `file`: a directory)
    #[serde(default)]
    pub bucket: Option<String>,
    /// `prefix`
    #[serde(default)]
    pub prefix: Option<String>,
    /// `public_base_url`
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// `command`: publish-command override; prints the final URL alone on stdout
    #[serde(default)]
    pub command: Option<String>,
    /// `workdir`
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// `retain_on_destroy`
    #[serde(default)]
    pub retain_on_destroy: bool,
    /// `chunk_size_mib`: GCS sends the object in requests of this many MiB instead of one;
    /// S3/Azure use it as the part/block size (default 64 MiB there)
    #[serde(default)]
    pub chunk_size_mib: Option<u32>,
}

/// block `timeouts` (Go duration syntax, parsed by the engine)
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// `create` (default `3h`)
    #[serde(default)]
    pub create: Option<String>,
    /// `delete` (default `30m`)
    #[serde(default)]
    pub delete: Option<String>,
}

/// Provider-level settings (the `provider "hyops"` block, or the CLI's `"provider"` object).
/// `None` fields fall back to the environment variables of DESIGN §2.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// `cache_dir` (env `HYOPS_VYOS_ISO_CACHE_DIR`)
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// `runtime_root` (env `HYOPS_RUNTIME_ROOT`, `HYOPS_ENV`)
    #[serde(default)]
    pub runtime_root: Option<PathBuf>,
    /// `gcs_credentials` (env `HYOPS_VYOS_GCS_SA_JSON`). Secret: redacted in Debug/Display,
    /// zeroized on drop.
    #[serde(default)]
    pub gcs_credentials: Option<crate::engine::credentials::SecretString>,
    /// `gcs_credentials_file` (env `HYOPS_VYOS_GCS_SA_JSON_FILE`)
    #[serde(default)]
    pub gcs_credentials_file: Option<PathBuf>,
    /// `gcs_endpoint` (env `HYOPS_GCS_ENDPOINT`)
    #[serde(default)]
    pub gcs_endpoint: Option<String>,
    /// `gcs_impersonate_service_account`: e-mail of a service account impersonated (IAM
    /// Credentials `generateAccessToken`) on top of whichever credential was found
    #[serde(default)]
    pub gcs_impersonate_service_account: Option<String>,
    /// `s3_endpoint`
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// `s3_region`
    #[serde(default)]
    pub s3_region: Option<String>,
    /// `azure_storage_account`
    #[serde(default)]
    pub azure_storage_account: Option<String>,
    /// `max_parallel_builds` (default 1)
    #[serde(default)]
    pub max_parallel_builds: Option<u32>,
    /// `cache_max_size_gb` (env `HYOPS_VYOS_CACHE_MAX_SIZE_GB`): GiB limit for build entries
    /// plus ISOs, enforced after each successful create
    #[serde(default)]
    pub cache_max_size_gb: Option<f64>,
    /// `cache_failed_max_age` (env `HYOPS_VYOS_CACHE_FAILED_MAX_AGE`, Go duration, default
    /// `168h`): failed work directories and logs older than this are removed
    #[serde(default)]
    pub cache_failed_max_age: Option<String>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("cache_dir", &self.cache_dir)
            .field("runtime_root", &self.runtime_root)
            .field("gcs_credentials", &self.gcs_credentials)
            .field("gcs_credentials_file", &self.gcs_credentials_file)
            .field("gcs_endpoint", &self.gcs_endpoint)
            .field(
                "gcs_impersonate_service_account",
                &self.gcs_impersonate_service_account,
            )
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("azure_storage_account", &self.azure_storage_account)
            .field("max_parallel_builds", &self.max_parallel_builds)
            .field("cache_max_size_gb", &self.cache_max_size_gb)
            .field("cache_failed_max_age", &self.cache_failed_max_age)
            .finish()
    }
}
