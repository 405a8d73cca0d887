//! [`BuildSettings`]: the `build` block with every default resolved (spec value, then the
//! environment default carried by [`EngineEnv`], then the DESIGN §2 default). Resolution happens
//! once per create; builders and preflight only ever see this type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::engine::env::{EngineEnv, ENV_BUILD_METHOD};
use crate::engine::spec::{BuildMethod, BuildSpec, Console, NormalizeMode};
use crate::engine::supervisor::{env_name_denied, EnvName};

/// Default `disk_size_gb`.
pub const DEFAULT_DISK_SIZE_GB: u32 = 10;

/// A `build` block value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("build.{field}: {message}")]
pub struct SettingsError {
    /// attribute name inside the `build` block
    pub field: &'static str,
    /// what is wrong and how to fix it
    pub message: String,
}

/// The resolved `build` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSettings {
    /// `method`
    pub method: BuildMethod,
    /// `command` (required for `method = "command"`)
    pub command: Option<String>,
    /// `workdir`: where the build runs (default: a fresh directory under the cache)
    pub workdir: Option<PathBuf>,
    /// `disk_size_gb`
    pub disk_size_gb: u32,
    /// `cloud_init`
    pub cloud_init: bool,
    /// `cloud_init_datasources`
    pub cloud_init_datasources: Vec<String>,
    /// `guest_agent`
    pub guest_agent: String,
    /// `console`
    pub console: Console,
    /// `allow_tcg`
    pub allow_tcg: bool,
    /// `skip_preflight`
    pub skip_preflight: bool,
    /// `packer_template`
    pub packer_template: Option<PathBuf>,
    /// `packer_vars_file`
    pub packer_vars_file: Option<PathBuf>,
    /// `packer_extra_args`
    pub packer_extra_args: Vec<String>,
    /// `vyos_vm_images_dir`
    pub vyos_vm_images_dir: Option<PathBuf>,
    /// `triggers`: only part of the build fingerprint
    pub triggers: BTreeMap<String, String>,
    /// `environment`
    pub environment: BTreeMap<String, String>,
    /// `normalize` (default `auto`)
    pub normalize: NormalizeMode,
    /// `pass_environment`: names read from the provider's environment for every child. Not part
    /// of the build fingerprint: these are host plumbing (credentials, agent sockets, tool
    /// config), not image inputs; byte-affecting inputs belong in `environment`.
    #[serde(skip)]
    pub pass_environment: Vec<EnvName>,
}

fn parse_method(s: &str) -> Option<BuildMethod> {
    match s {
        "vyos-vm-images" => Some(BuildMethod::VyosVmImages),
        "packer" => Some(BuildMethod::Packer),
        "command" => Some(BuildMethod::Command),
        _ => None,
    }
}

impl BuildSettings {
    /// Resolve `spec` against the environment defaults in `env`.
    pub fn resolve(spec: &BuildSpec, env: &EngineEnv) -> Result<Self, SettingsError> {
        let method = match (spec.method, env.build_method()) {
            (Some(m), _) => m,
            (None, Some(raw)) => parse_method(raw).ok_or_else(|| SettingsError {
                field: "method",
                message: format!(
                    "{ENV_BUILD_METHOD}={raw:?} is not a build method; use vyos-vm-images, packer or command"
                ),
            })?,
            (None, None) => BuildMethod::default(),
        };
        let command = spec
            .command
            .clone()
            .or_else(|| env.build_command().map(str::to_owned))
            .filter(|c| !c.trim().is_empty());
        if method == BuildMethod::Command && command.is_none() {
            return Err(SettingsError {
                field: "command",
                message: "method \"command\" needs build.command (or HYOPS_VYOS_ISO_BUILD_COMMAND)"
                    .to_owned(),
            });
        }
        let disk_size_gb = spec.disk_size_gb.unwrap_or(DEFAULT_DISK_SIZE_GB);
        if !(2..=2048).contains(&disk_size_gb) {
            return Err(SettingsError {
                field: "disk_size_gb",
                message: format!("{disk_size_gb} is outside 2..=2048 GB"),
            });
        }
        let cloud_init_datasources = spec
            .cloud_init_datasources
            .clone()
            .unwrap_or_else(|| vec!["NoCloud".to_owned(), "ConfigDrive".to_owned()]);
        if let Some(bad) = cloud_init_datasources
            .iter()
            .find(|d| d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(SettingsError {
                field: "cloud_init_datasources",
                message: format!(
                    "{bad:?} is not a cloud-init datasource name (letters and digits only)"
                ),
            });
        }
        let guest_agent = spec
            .guest_agent
            .clone()
            .unwrap_or_else(|| "qemu".to_owned());
        if !matches!(guest_agent.as_str(), "qemu" | "vmware" | "none") {
            return Err(SettingsError {
                field: "guest_agent",
                message: format!("{guest_agent:?}: use qemu, vmware or none"),
            });
        }
        for key in spec.environment.keys() {
            let valid = !key.is_empty()
                && !key.starts_with(|c: char| c.is_ascii_digit())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(SettingsError {
                    field: "environment",
                    message: format!("{key:?} is not an environment variable name"),
                });
            }
            if key.starts_with("HYOPS_VYOS_GCS_SA_JSON") {
                return Err(SettingsError {
                    field: "environment",
                    message: format!(
                        "{key} is a credential variable and is never passed to builders"
                    ),
                });
            }
        }
        let mut pass_environment: Vec<EnvName> = Vec::new();
        for raw in &spec.pass_environment {
            let name = EnvName::new(raw.as_str()).map_err(|e| SettingsError {
                field: "pass_environment",
                message: e.to_string(),
            })?;
            if env_name_denied(name.as_str()) {
                return Err(SettingsError {
                    field: "pass_environment",
                    message: format!(
                        "{name} is never passed to children (credentials reach the publish \
                         command only as the path HYOPS_VYOS_GCS_SA_JSON_FILE)"
                    ),
                });
            }
            if !pass_environment.contains(&name) {
                pass_environment.push(name);
            }
        }
        Ok(BuildSettings {
            method,
            command,
            workdir: spec.workdir.clone(),
            disk_size_gb,
            cloud_init: spec.cloud_init.unwrap_or(true),
            cloud_init_datasources,
            guest_agent,
            console: spec.console.unwrap_or_default(),
            allow_tcg: spec.allow_tcg.unwrap_or(false) || env.allow_tcg(),
            skip_preflight: spec.skip_preflight.unwrap_or(false),
            packer_template: spec
                .packer_template
                .clone()
                .or_else(|| env.packer_template().map(PathBuf::from)),
            packer_vars_file: spec.packer_vars_file.clone(),
            packer_extra_args: spec.packer_extra_args.clone().unwrap_or_default(),
            vyos_vm_images_dir: spec
                .vyos_vm_images_dir
                .clone()
                .or_else(|| env.vyos_vm_images_dir().map(PathBuf::from)),
            triggers: spec.triggers.clone(),
            environment: spec.environment.clone(),
            normalize: spec.normalize.unwrap_or_default(),
            pass_environment,
        })
    }

    /// The current values of the `pass_environment` names that are set in this process's
    /// environment (unset names are skipped; a name set to a non-UTF-8 value is skipped too).
    pub fn passed_env(&self) -> BTreeMap<String, String> {
        self.pass_environment
            .iter()
            .filter_map(|n| {
                std::env::var(n.as_str())
                    .ok()
                    .map(|v| (n.as_str().to_owned(), v))
            })
            .collect()
    }

    /// `console` as the builders spell it.
    pub fn console_str(&self) -> &'static str {
        match self.console {
            Console::Kvm => "kvm",
            Console::Serial => "serial",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(names: &[&str]) -> Result<BuildSettings, SettingsError> {
        let spec = BuildSpec {
            method: Some(BuildMethod::Command),
            command: Some("true".into()),
            pass_environment: names.iter().map(|n| (*n).to_owned()).collect(),
            ..BuildSpec::default()
        };
        BuildSettings::resolve(&spec, &EngineEnv::from_env())
    }

    #[test]
    fn pass_environment_names_are_checked_deduplicated_and_kept_out_of_the_fingerprint() {
        let s = resolve(&["AWS_PROFILE", "SSH_AUTH_SOCK", "AWS_PROFILE"]).unwrap();
        let names: Vec<&str> = s.pass_environment.iter().map(EnvName::as_str).collect();
        assert_eq!(names, ["AWS_PROFILE", "SSH_AUTH_SOCK"]);
        let doc = serde_json::to_string(&s).unwrap();
        assert!(!doc.contains("pass_environment"), "{doc}");
        for bad in [
            "HYOPS_VYOS_GCS_SA_JSON",
            "HYOPS_VYOS_GCS_SA_JSON_FILE",
            "A-B",
            "9X",
        ] {
            let e = resolve(&[bad]).unwrap_err();
            assert_eq!(e.field, "pass_environment", "{bad}");
        }
    }
}
