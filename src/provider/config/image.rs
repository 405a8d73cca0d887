//! `hyops_vyos_image` configuration → [`ImageSpec`] plus the write-only credential.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::reader::{Reader, Unknowns};
use crate::cty::Value;
use crate::engine::credentials::SecretString;
use crate::engine::spec::{
    BootVerifySpec, BuildSpec, ImageSpec, ProviderSettings, PublishSpec, SmokeVerifySpec,
    TimeoutsSpec,
};
use crate::tfplugin5::Diagnostics;

/// The write-only credential `gcs_credentials_wo`: zeroed on drop, never printed.
#[derive(Clone)]
pub struct WriteOnlySecret(Zeroizing<String>);

impl WriteOnlySecret {
    /// The secret text (hand it only to the credential layer).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WriteOnlySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteOnlySecret(<redacted>)")
    }
}

/// A decoded resource configuration.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// what the engine builds and publishes
    pub spec: ImageSpec,
    /// `gcs_credentials_wo`, when set
    pub gcs_credentials_wo: Option<WriteOnlySecret>,
}

impl ImageConfig {
    /// The provider settings for this resource's create: a write-only credential given on the
    /// resource takes precedence over the provider's `gcs_credentials` / `gcs_credentials_file`.
    pub fn effective_settings(&self, provider: &ProviderSettings) -> ProviderSettings {
        let mut settings = provider.clone();
        if let Some(secret) = &self.gcs_credentials_wo {
            settings.gcs_credentials = Some(SecretString::new(secret.expose().to_string()));
            settings.gcs_credentials_file = None;
        }
        settings
    }
}

/// Builds the typed spec from a wholly known configuration (apply time). Unknown values are
/// errors at their path.
pub fn image_config(config: &Value) -> Result<ImageConfig, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut unknown = Vec::new();
    let mut r = Reader::new(config, Unknowns::Refuse, &mut diags, &mut unknown);

    let artifact_key = r.string("artifact_key");
    let artifact_format = r.spelling("artifact_format", "\"qcow2\", \"raw\" or \"img\"");
    let additional_formats = r.spellings(
        "additional_formats",
        "\"raw.xz\", \"raw.zst\", \"raw.gz\" or \"qcow2\"",
    );
    let artifact_version = r.string("artifact_version");
    let source_iso_url = r.string("source_iso_url");
    let source_iso_mirror_url = r.string("source_iso_mirror_url");
    let source_iso_sha256 = r.string("source_iso_sha256");
    let artifact_local_path = r.string("artifact_local_path").map(PathBuf::from);
    let rebuild_if_exists = r.bool("rebuild_if_exists").unwrap_or(false);
    let hyops_state_instance = r.string("hyops_state_instance");
    let notes = r.string("notes");
    let gcs_credentials_wo = r
        .string("gcs_credentials_wo")
        .map(|s| WriteOnlySecret(Zeroizing::new(s)));
    let build = r.block("build", read_build).unwrap_or_default();
    let smoke_verify = r
        .block("smoke_verify", |b| SmokeVerifySpec {
            command: b.string("command"),
            required: b.bool("required").unwrap_or(true),
            boot: b.block("boot", read_boot),
        })
        .unwrap_or_default();
    let publish = r.block("publish", read_publish);
    let timeouts = r
        .block("timeouts", |b| TimeoutsSpec {
            create: b.string("create"),
            delete: b.string("delete"),
        })
        .unwrap_or_default();

    let missing = |name: &str, diags: &mut Diagnostics| {
        diags.error_at(
            crate::cty::Path::attr(name),
            format!("Missing {name}"),
            format!("{name} is required."),
        );
    };
    let (Some(artifact_key), Some(source_iso_url), Some(source_iso_sha256)) =
        (artifact_key, source_iso_url, source_iso_sha256)
    else {
        for name in ["artifact_key", "source_iso_url", "source_iso_sha256"] {
            if config.get(name).is_none_or(Value::is_null) {
                missing(name, &mut diags);
            }
        }
        if !diags.has_errors() {
            diags.error(
                "Invalid configuration",
                "A required attribute could not be read.",
            );
        }
        return Err(diags);
    };
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(ImageConfig {
        spec: ImageSpec {
            artifact_key,
            artifact_format: artifact_format.unwrap_or_default(),
            additional_formats: additional_formats.unwrap_or_default(),
            artifact_version,
            source_iso_url,
            source_iso_mirror_url,
            source_iso_sha256,
            artifact_local_path,
            rebuild_if_exists,
            hyops_state_instance,
            notes,
            build,
            smoke_verify,
            publish,
            timeouts,
            provider: None,
        },
        gcs_credentials_wo,
    })
}

fn read_build(b: &mut Reader<'_>) -> BuildSpec {
    BuildSpec {
        method: b.spelling("method", "\"vyos-vm-images\", \"packer\" or \"command\""),
        command: b.string("command"),
        workdir: b.string("workdir").map(PathBuf::from),
        disk_size_gb: b.u32("disk_size_gb"),
        cloud_init: b.bool("cloud_init"),
        cloud_init_datasources: b.strings("cloud_init_datasources"),
        guest_agent: b.string("guest_agent"),
        console: b.spelling("console", "\"kvm\" or \"serial\""),
        allow_tcg: b.bool("allow_tcg"),
        skip_preflight: b.bool("skip_preflight"),
        packer_template: b.string("packer_template").map(PathBuf::from),
        packer_vars_file: b.string("packer_vars_file").map(PathBuf::from),
        packer_extra_args: b.strings("packer_extra_args"),
        vyos_vm_images_dir: b.string("vyos_vm_images_dir").map(PathBuf::from),
        triggers: b.string_map("triggers").unwrap_or_default(),
        environment: b.string_map("environment").unwrap_or_default(),
        normalize: b.spelling("normalize", "\"auto\", \"always\" or \"compress\""),
        pass_environment: b.strings("pass_environment").unwrap_or_default(),
    }
}

fn read_boot(b: &mut Reader<'_>) -> BootVerifySpec {
    BootVerifySpec {
        enabled: b.bool("enabled"),
        accelerator: b.spelling("accelerator", "\"auto\", \"kvm\" or \"tcg\""),
        timeout: b.string("timeout"),
        memory_mb: b.u32("memory_mb"),
        guest_agent: b.bool("guest_agent"),
        cloud_init: b.bool("cloud_init"),
        expect: b.strings("expect"),
        fail_on: b.strings("fail_on"),
    }
}

fn read_publish(b: &mut Reader<'_>) -> PublishSpec {
    PublishSpec {
        repo_state_ref: b.string("repo_state_ref"),
        backend: b.spelling("backend", "\"gcs\", \"s3\", \"azure\" or \"file\""),
        bucket: b.string("bucket"),
        prefix: b.string("prefix"),
        public_base_url: b.string("public_base_url"),
        command: b.string("command"),
        workdir: b.string("workdir").map(PathBuf::from),
        retain_on_destroy: b.bool("retain_on_destroy").unwrap_or(false),
        chunk_size_mib: b.u32("chunk_size_mib"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Number;
    use crate::engine::spec::{ArtifactFormat, Backend, BuildMethod, Console, ExtraFormat};

    fn s(v: &str) -> Value {
        Value::string(v)
    }

    fn full() -> Value {
        Value::object([
            ("artifact_key", s("vyos-1.5")),
            ("artifact_format", s("raw")),
            (
                "additional_formats",
                Value::List(vec![s("raw.xz"), s("qcow2")]),
            ),
            ("artifact_version", Value::Null),
            ("source_iso_url", s("https://example.com/vyos.iso")),
            ("source_iso_mirror_url", s("file:///srv/vyos.iso")),
            ("source_iso_sha256", s(&"0".repeat(64))),
            ("artifact_local_path", s("/var/img/vyos.raw")),
            ("rebuild_if_exists", Value::Bool(true)),
            ("hyops_state_instance", s("vyos_default_build")),
            ("notes", s("n")),
            ("gcs_credentials_wo", s("{\"k\":1}")),
            (
                "build",
                Value::object([
                    ("method", s("packer")),
                    ("disk_size_gb", Value::Number(Number::from_i64(12))),
                    ("console", s("serial")),
                    ("cloud_init_datasources", Value::List(vec![s("NoCloud")])),
                    ("environment", Value::map([("A", s("1"))])),
                ]),
            ),
            ("smoke_verify", Value::Null),
            (
                "publish",
                Value::object([("backend", s("file")), ("bucket", s("/srv/repo"))]),
            ),
            ("timeouts", Value::object([("create", s("2h"))])),
        ])
    }

    #[test]
    fn full_config_becomes_typed_spec() {
        let cfg = image_config(&full()).unwrap();
        let spec = &cfg.spec;
        assert_eq!(spec.artifact_key, "vyos-1.5");
        assert_eq!(spec.artifact_format, ArtifactFormat::Raw);
        assert_eq!(
            spec.additional_formats,
            vec![ExtraFormat::RawXz, ExtraFormat::Qcow2]
        );
        assert_eq!(spec.artifact_version, None);
        assert_eq!(
            spec.source_iso_mirror_url.as_deref(),
            Some("file:///srv/vyos.iso")
        );
        assert_eq!(
            spec.artifact_local_path,
            Some(PathBuf::from("/var/img/vyos.raw"))
        );
        assert!(spec.rebuild_if_exists);
        assert_eq!(spec.build.method, Some(BuildMethod::Packer));
        assert_eq!(spec.build.disk_size_gb, Some(12));
        assert_eq!(spec.build.console, Some(Console::Serial));
        assert_eq!(
            spec.build.environment.get("A").map(String::as_str),
            Some("1")
        );
        assert!(
            spec.smoke_verify.required,
            "absent smoke_verify block defaults to required"
        );
        let publish = spec.publish.as_ref().unwrap();
        assert_eq!(publish.backend, Some(Backend::File));
        assert!(!publish.retain_on_destroy);
        assert_eq!(spec.timeouts.create.as_deref(), Some("2h"));
        assert_eq!(
            cfg.gcs_credentials_wo.as_ref().map(|w| w.expose()),
            Some("{\"k\":1}")
        );
        assert!(
            !format!("{cfg:?}").contains("\"k\""),
            "secret must not reach Debug"
        );
        let settings = cfg.effective_settings(&ProviderSettings {
            gcs_credentials_file: Some(PathBuf::from("/k.json")),
            ..ProviderSettings::default()
        });
        assert_eq!(
            settings.gcs_credentials.as_ref().map(|s| s.expose_secret()),
            Some("{\"k\":1}")
        );
        assert_eq!(settings.gcs_credentials_file, None);
    }

    #[test]
    fn errors_name_the_attribute_path() {
        let Value::Object(mut m) = full() else {
            unreachable!()
        };
        m.insert(
            "build".into(),
            Value::object([("method", s("docker")), ("disk_size_gb", Value::Unknown)]),
        );
        m.insert("source_iso_url".into(), Value::Null);
        let diags = image_config(&Value::Object(m)).unwrap_err();
        let paths: Vec<String> = diags
            .iter()
            .filter_map(|d| d.attribute.as_ref().map(ToString::to_string))
            .collect();
        assert!(paths.contains(&"build.method".to_string()), "{paths:?}");
        assert!(
            paths.contains(&"build.disk_size_gb".to_string()),
            "{paths:?}"
        );
        assert!(paths.contains(&"source_iso_url".to_string()), "{paths:?}");
    }
}
