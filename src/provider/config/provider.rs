//! `provider "hyops"` configuration → [`ProviderSettings`]. Unknown values (possible at plan
//! time with Terraform 1.0) are tolerated: they read as "not set" and their paths are kept so the
//! caller can warn and defer credential errors to apply.

use std::path::PathBuf;

use super::reader::{Reader, Unknowns};
use crate::cty::{Path, Value};
use crate::engine::credentials::SecretString;
use crate::engine::spec::ProviderSettings;
use crate::tfplugin5::Diagnostics;

/// Settings decoded from the provider block, with the attributes that were still unknown.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredSettings {
    /// the settings (unknown attributes read as `None`)
    pub settings: ProviderSettings,
    /// paths of attributes that were unknown when configured
    pub unknown: Vec<Path>,
    /// the `build_runner` block, validated (`None`: build on this machine)
    pub runner: Option<crate::runner::RunnerConfig>,
}

/// Decodes the provider configuration.
pub fn provider_settings(config: &Value) -> Result<ConfiguredSettings, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut unknown = Vec::new();
    let mut r = Reader::new(config, Unknowns::Tolerate, &mut diags, &mut unknown);
    let settings = ProviderSettings {
        cache_dir: r.string("cache_dir").map(PathBuf::from),
        runtime_root: r.string("runtime_root").map(PathBuf::from),
        gcs_credentials: r.string("gcs_credentials").map(SecretString::new),
        gcs_credentials_file: r.string("gcs_credentials_file").map(PathBuf::from),
        gcs_endpoint: r.string("gcs_endpoint"),
        gcs_impersonate_service_account: r.string("gcs_impersonate_service_account"),
        s3_endpoint: r.string("s3_endpoint"),
        s3_region: r.string("s3_region"),
        azure_storage_account: r.string("azure_storage_account"),
        max_parallel_builds: r.u32("max_parallel_builds"),
        cache_max_size_gb: r.positive_f64("cache_max_size_gb"),
        cache_failed_max_age: r.string("cache_failed_max_age"),
    };
    let runner = r.block("build_runner", |b| {
        crate::runner::RunnerConfigBuilder::new()
            .with_host(b.string("host"))
            .with_port(b.u32("port").map(|p| p.to_string()))
            .with_user(b.string("user"))
            .with_identity_file(b.string("identity_file"))
            .with_known_hosts_file(b.string("known_hosts_file"))
            .with_host_key(b.string("host_key"))
            .with_proxy_jump(b.string("proxy_jump"))
            .with_remote_dir(b.string("remote_dir"))
            .with_connect_timeout(b.string("connect_timeout"))
    });
    let runner = match runner.map(|b| b.build()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(c))) => Some(c),
        Some(Err(crate::runner::RunnerError::Config { field, message })) => {
            diags.error_at(
                Path::attr("build_runner").join_attr(field),
                format!("Invalid build_runner.{field}"),
                message,
            );
            None
        }
        Some(Err(e)) => {
            diags.error_at(
                Path::attr("build_runner"),
                "Invalid build_runner",
                e.to_string(),
            );
            None
        }
    };
    if let Some(age) = &settings.cache_failed_max_age {
        if let Err(e) = crate::engine::duration::parse_go_duration(age) {
            let path = Path::root().join_attr("cache_failed_max_age");
            diags.push(
                crate::tfplugin5::Diagnostic::error(
                    "Invalid duration",
                    format!("{path}: {e}; write a Go duration such as \"168h\"."),
                )
                .at(path),
            );
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(ConfiguredSettings {
        settings,
        unknown,
        runner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Number;

    #[test]
    fn unknown_provider_values_are_tolerated_and_recorded() {
        let cfg = Value::object([
            ("cache_dir", Value::string("/var/cache/hyops")),
            ("gcs_credentials", Value::Unknown),
            ("max_parallel_builds", Value::Number(Number::from_i64(2))),
        ]);
        let got = provider_settings(&cfg).unwrap();
        assert_eq!(
            got.settings.cache_dir,
            Some(PathBuf::from("/var/cache/hyops"))
        );
        assert_eq!(got.settings.gcs_credentials, None);
        assert_eq!(got.settings.max_parallel_builds, Some(2));
        assert_eq!(got.unknown, vec![Path::attr("gcs_credentials")]);
    }

    #[test]
    fn cache_limits_are_read_and_bad_values_name_their_attribute() {
        let num = |s: &str| Value::Number(Number::parse(s).unwrap());
        let cfg = Value::object([
            ("cache_max_size_gb", num("1.5")),
            ("cache_failed_max_age", Value::string("72h")),
        ]);
        let got = provider_settings(&cfg).unwrap().settings;
        assert_eq!(got.cache_max_size_gb, Some(1.5));
        let env = crate::engine::env::EngineEnv::from_env().with_provider_settings(&got);
        assert_eq!(env.cache_max_size_bytes(), Some(3 << 29));
        assert_eq!(
            env.cache_failed_max_age(),
            std::time::Duration::from_secs(72 * 3600)
        );

        for (attr, bad) in [
            ("cache_max_size_gb", num("0")),
            ("cache_failed_max_age", Value::string("3d")),
        ] {
            let diags = provider_settings(&Value::object([(attr, bad)])).unwrap_err();
            assert!(format!("{diags:?}").contains(attr), "{diags:?}");
        }
    }
}
