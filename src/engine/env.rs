//! [`EngineEnv`]: provider-level settings of the engine, resolved **once** from the environment
//! variables of DESIGN §2 (`from_env`) and then overridden by explicit settings (`with_*`, or
//! [`EngineEnv::with_provider_settings`] for the provider block / the CLI's `"provider"` object).
//! The builder defaults' environment variables are named here, next to the code that reads them;
//! the object-store and credential fallbacks (`HYOPS_VYOS_GCS_SA_JSON[_FILE]`, `HYOPS_GCS_ENDPOINT`,
//! `AWS_*`, `AZURE_STORAGE_*`) are read by [`StoreSettings::from_provider`] within the same
//! resolution step. Nothing below `create` reads the process environment for settings.

use std::path::{Path, PathBuf};

use crate::engine::publish::StoreSettings;
use crate::engine::spec::ProviderSettings;

/// `cache_dir` fallback.
pub const ENV_CACHE_DIR: &str = "HYOPS_VYOS_ISO_CACHE_DIR";
/// `runtime_root` fallback.
pub const ENV_RUNTIME_ROOT: &str = "HYOPS_RUNTIME_ROOT";
/// `runtime_root` second fallback (`~/.hybridops/envs/$HYOPS_ENV`).
pub const ENV_HYOPS_ENV: &str = "HYOPS_ENV";
/// `build.method` default.
pub const ENV_BUILD_METHOD: &str = "HYOPS_VYOS_ISO_BUILD_METHOD";
/// `build.command` default.
pub const ENV_BUILD_COMMAND: &str = "HYOPS_VYOS_ISO_BUILD_COMMAND";
/// `build.allow_tcg` when `1`.
pub const ENV_ALLOW_TCG: &str = "HYOPS_VYOS_ALLOW_TCG";
/// `build.packer_template` default.
pub const ENV_PACKER_TEMPLATE: &str = "HYOPS_VYOS_PACKER_TEMPLATE";
/// `build.vyos_vm_images_dir` default.
pub const ENV_VM_IMAGES_DIR: &str = "HYOPS_VYOS_VM_IMAGES_DIR";
/// `cache_max_size_gb` fallback.
pub const ENV_CACHE_MAX_SIZE_GB: &str = "HYOPS_VYOS_CACHE_MAX_SIZE_GB";
/// `cache_failed_max_age` fallback.
pub const ENV_CACHE_FAILED_MAX_AGE: &str = "HYOPS_VYOS_CACHE_FAILED_MAX_AGE";

/// Engine-wide settings (the provider block's meaning plus the builder defaults of DESIGN §2).
#[derive(Debug, Clone)]
pub struct EngineEnv {
    cache_dir: PathBuf,
    runtime_root: PathBuf,
    store: StoreSettings,
    max_parallel_builds: u32,
    build_method: Option<String>,
    build_command: Option<String>,
    allow_tcg: bool,
    packer_template: Option<PathBuf>,
    vyos_vm_images_dir: Option<PathBuf>,
    cache_max_size_bytes: Option<u64>,
    cache_failed_max_age: std::time::Duration,
}

/// GiB (fractions allowed) → bytes; `None` unless positive and finite.
pub fn gib_to_bytes(gib: f64) -> Option<u64> {
    (gib.is_finite() && gib > 0.0).then_some((gib * (1u64 << 30) as f64) as u64)
}

fn env_max_size() -> Option<u64> {
    let raw = var(ENV_CACHE_MAX_SIZE_GB)?;
    let parsed = raw.trim().parse::<f64>().ok().and_then(gib_to_bytes);
    if parsed.is_none() {
        tracing::warn!("{ENV_CACHE_MAX_SIZE_GB}={raw:?} is not a positive number of GiB; ignored");
    }
    parsed
}

fn env_failed_age() -> std::time::Duration {
    let default = crate::engine::cache::eviction::DEFAULT_FAILED_MAX_AGE;
    match var(ENV_CACHE_FAILED_MAX_AGE) {
        Some(raw) => crate::engine::duration::parse_go_duration(&raw).unwrap_or_else(|e| {
            tracing::warn!("{ENV_CACHE_FAILED_MAX_AGE}: {e}; using the default");
            default
        }),
        None => default,
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> PathBuf {
    var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

impl EngineEnv {
    /// Read every fallback of DESIGN §2 from the process environment, once.
    pub fn from_env() -> Self {
        let cache_dir = var(ENV_CACHE_DIR).map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home().join(".cache"))
                .join("hybridops")
                .join("vyos")
        });
        let runtime_root =
            var(ENV_RUNTIME_ROOT)
                .map(PathBuf::from)
                .unwrap_or_else(|| match var(ENV_HYOPS_ENV) {
                    Some(env) => home().join(".hybridops").join("envs").join(env),
                    None => home().join(".hybridops"),
                });
        EngineEnv {
            cache_dir,
            runtime_root,
            store: StoreSettings::from_provider(&ProviderSettings::default()),
            max_parallel_builds: 1,
            build_method: var(ENV_BUILD_METHOD),
            build_command: var(ENV_BUILD_COMMAND),
            allow_tcg: var(ENV_ALLOW_TCG).as_deref() == Some("1"),
            packer_template: var(ENV_PACKER_TEMPLATE).map(PathBuf::from),
            vyos_vm_images_dir: var(ENV_VM_IMAGES_DIR).map(PathBuf::from),
            cache_max_size_bytes: env_max_size(),
            cache_failed_max_age: env_failed_age(),
        }
    }

    /// Overlay the set fields of a provider block / the CLI's `"provider"` object. The store
    /// settings are rebuilt from `p` (with their environment fallbacks).
    pub fn with_provider_settings(mut self, p: &ProviderSettings) -> Self {
        if let Some(v) = &p.cache_dir {
            self.cache_dir = v.clone();
        }
        if let Some(v) = &p.runtime_root {
            self.runtime_root = v.clone();
        }
        self.store = StoreSettings::from_provider(p);
        if let Some(v) = p.max_parallel_builds {
            self.max_parallel_builds = v.max(1);
        }
        if let Some(v) = p.cache_max_size_gb.and_then(gib_to_bytes) {
            self.cache_max_size_bytes = Some(v);
        }
        if let Some(age) = p
            .cache_failed_max_age
            .as_deref()
            .and_then(|a| crate::engine::duration::parse_go_duration(a).ok())
        {
            self.cache_failed_max_age = age;
        }
        self
    }

    /// Set the cache size limit (bytes of build entries plus ISOs; `None`: unlimited).
    pub fn with_cache_max_size_bytes(mut self, max: Option<u64>) -> Self {
        self.cache_max_size_bytes = max;
        self
    }
    /// Set the age after which failed work directories and logs are removed.
    pub fn with_cache_failed_max_age(mut self, age: std::time::Duration) -> Self {
        self.cache_failed_max_age = age;
        self
    }
    /// Cache size limit in bytes (`cache_max_size_gb`), if any.
    pub fn cache_max_size_bytes(&self) -> Option<u64> {
        self.cache_max_size_bytes
    }
    /// Age after which failed work directories and logs are removed.
    pub fn cache_failed_max_age(&self) -> std::time::Duration {
        self.cache_failed_max_age
    }

    /// Set `cache_dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }
    /// Set `runtime_root`.
    pub fn with_runtime_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_root = dir.into();
        self
    }
    /// Set the object-store settings (endpoints, credentials) used by publishing.
    pub fn with_store_settings(mut self, store: StoreSettings) -> Self {
        self.store = store;
        self
    }
    /// Set `max_parallel_builds` (at least 1).
    pub fn with_max_parallel_builds(mut self, n: u32) -> Self {
        self.max_parallel_builds = n.max(1);
        self
    }
    /// Set the `build.method` default (normally `HYOPS_VYOS_ISO_BUILD_METHOD`).
    pub fn with_build_method(mut self, method: Option<String>) -> Self {
        self.build_method = method;
        self
    }
    /// Set the `build.command` default (normally `HYOPS_VYOS_ISO_BUILD_COMMAND`).
    pub fn with_build_command(mut self, command: Option<String>) -> Self {
        self.build_command = command;
        self
    }
    /// Set the `build.allow_tcg` default (normally `HYOPS_VYOS_ALLOW_TCG=1`).
    pub fn with_allow_tcg(mut self, allow: bool) -> Self {
        self.allow_tcg = allow;
        self
    }
    /// Set the `build.packer_template` default (normally `HYOPS_VYOS_PACKER_TEMPLATE`).
    pub fn with_packer_template(mut self, path: Option<PathBuf>) -> Self {
        self.packer_template = path;
        self
    }
    /// Set the `build.vyos_vm_images_dir` default (normally `HYOPS_VYOS_VM_IMAGES_DIR`).
    pub fn with_vyos_vm_images_dir(mut self, path: Option<PathBuf>) -> Self {
        self.vyos_vm_images_dir = path;
        self
    }

    /// ISO/artifact cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
    /// HyOps runtime root.
    pub fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }
    /// Object-store settings used by publishing.
    pub fn store_settings(&self) -> &StoreSettings {
        &self.store
    }
    /// Concurrent builds allowed in this process.
    pub fn max_parallel_builds(&self) -> u32 {
        self.max_parallel_builds
    }
    /// `build.method` default, unparsed (validated when a spec is resolved).
    pub fn build_method(&self) -> Option<&str> {
        self.build_method.as_deref()
    }
    /// `build.command` default.
    pub fn build_command(&self) -> Option<&str> {
        self.build_command.as_deref()
    }
    /// `build.allow_tcg` default.
    pub fn allow_tcg(&self) -> bool {
        self.allow_tcg
    }
    /// `build.packer_template` default.
    pub fn packer_template(&self) -> Option<&Path> {
        self.packer_template.as_deref()
    }
    /// `build.vyos_vm_images_dir` default.
    pub fn vyos_vm_images_dir(&self) -> Option<&Path> {
        self.vyos_vm_images_dir.as_deref()
    }
}
