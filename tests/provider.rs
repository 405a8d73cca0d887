//! The provider service driven in-process through the `tfplugin5.Provider` trait with msgpack
//! `DynamicValue`s, as Terraform drives it: schema, validation, configure, plan, apply edges.

use std::collections::BTreeMap;

use hyops::cty::{msgpack, Number, Path, Type, Value};
use hyops::engine::contract::{ArtifactContract, ArtifactEntry};
use hyops::provider::resources::vyos_image::contract_to_state;
use hyops::provider::schema::{
    provider_schema, vyos_artifact_schema, vyos_image_schema, VYOS_ARTIFACT, VYOS_IMAGE,
};
use hyops::provider::ProviderService;
use hyops::tfplugin5::pb;
use hyops::tfplugin5::pb::provider_server::Provider;

#[path = "common/gcs_stack.rs"]
mod gcs_stack;
#[path = "provider/write_only_lifecycle.rs"]
mod write_only_lifecycle;

// ---------------------------------------------------------------- helpers

fn s(v: &str) -> Value {
    Value::string(v)
}

fn num(n: i64) -> Value {
    Value::Number(Number::from_i64(n))
}

fn image_type() -> Type {
    vyos_image_schema().block.implied_type()
}

fn dv(value: &Value, ty: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: msgpack::encode(value, ty).expect("test value encodes"),
        json: Vec::new(),
    })
}

fn image_dv(value: &Value) -> Option<pb::DynamicValue> {
    dv(value, &image_type())
}

fn decode_image(d: &Option<pb::DynamicValue>) -> Value {
    msgpack::decode(&d.as_ref().expect("a value").msgpack, &image_type()).expect("decodes")
}

/// `obj` with `value` at the dotted `path` (creating intermediate objects).
fn with(obj: &Value, path: &str, value: Value) -> Value {
    let Value::Object(mut m) = obj.clone() else {
        panic!("not an object: {obj:?}")
    };
    match path.split_once('.') {
        None => {
            m.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let inner = match m.get(head) {
                Some(v @ Value::Object(_)) => v.clone(),
                _ => Value::Object(BTreeMap::new()),
            };
            m.insert(head.to_string(), with(&inner, rest, value));
        }
    }
    Value::Object(m)
}

fn good_config() -> Value {
    Value::object([
        ("artifact_key", s("vyos-1.5-qcow2")),
        ("artifact_format", s("qcow2")),
        ("additional_formats", Value::List(vec![s("raw.xz")])),
        ("source_iso_url", s("https://example.com/vyos-1.5.iso")),
        ("source_iso_sha256", s(&"0123456789abcdef".repeat(4))),
        ("notes", s("first")),
        (
            "build",
            Value::object([
                ("method", s("packer")),
                ("disk_size_gb", num(10)),
                ("console", s("kvm")),
            ]),
        ),
        (
            "publish",
            Value::object([
                ("repo_state_ref", s("org/gcp/object-repo#vyos_artifacts")),
                ("prefix", s("images/vyos")),
                ("retain_on_destroy", Value::Bool(false)),
            ]),
        ),
        ("timeouts", Value::object([("create", s("3h"))])),
    ])
}

fn contract() -> ArtifactContract {
    let entry = ArtifactEntry {
        artifact_url: "https://storage.googleapis.com/b/images/vyos/vyos-1.5-qcow2.qcow2".into(),
        artifact_format: "qcow2".into(),
        artifact_version: "1.5".into(),
        artifact_sha256: "ab".repeat(32),
        source_iso_url: "https://example.com/vyos-1.5.iso".into(),
        artifact_local_path: "/cache/vyos-1.5-qcow2.qcow2".into(),
    };
    ArtifactContract {
        id: "build-1".into(),
        artifact_key: "vyos-1.5-qcow2".into(),
        artifact_format: "qcow2".into(),
        artifact_version: "1.5".into(),
        artifact_local_path: "/cache/vyos-1.5-qcow2.qcow2".into(),
        artifact_url: entry.artifact_url.clone(),
        artifact_storage_uri: "gs://b/images/vyos/vyos-1.5-qcow2.qcow2".into(),
        artifact_sha256: "ab".repeat(32),
        artifact_size_bytes: 123_456_789,
        artifact_virtual_size_bytes: 10 << 30,
        vyos_version: "1.5".into(),
        source_iso_url: entry.source_iso_url.clone(),
        source_iso_sha256: "0123456789abcdef".repeat(4),
        build_id: "build-1".into(),
        built_at: "2026-01-01T00:00:00Z".into(),
        published: true,
        published_at: "2026-01-01T00:05:00Z".into(),
        remote_checksum: "crc32c:abcd".into(),
        remote_generation: "42".into(),
        manifest_url: "gs://b/images/vyos/manifest.json".into(),
        artifacts: [("vyos-1.5-qcow2".to_string(), entry)]
            .into_iter()
            .collect(),
        normalization: None,
        build_host: String::new(),
        verification: None,
    }
}

/// A state as it would be after a successful create of `good_config()`.
fn prior_state() -> Value {
    contract_to_state(&contract(), &good_config()).expect("state")
}

fn paths(diags: &[pb::Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|d| {
            d.attribute
                .as_ref()
                .map(|a| Path::from(a).to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn errors(diags: &[pb::Diagnostic]) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .count()
}

async fn validate_image(
    svc: &ProviderService,
    config: &Value,
    caps: Option<pb::ClientCapabilities>,
) -> Vec<pb::Diagnostic> {
    svc.validate_resource_type_config(tonic::Request::new(
        pb::validate_resource_type_config::Request {
            type_name: VYOS_IMAGE.into(),
            config: image_dv(config),
            client_capabilities: caps,
        },
    ))
    .await
    .expect("RPC ok")
    .into_inner()
    .diagnostics
}

async fn plan(
    svc: &ProviderService,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> pb::plan_resource_change::Response {
    svc.plan_resource_change(tonic::Request::new(pb::plan_resource_change::Request {
        type_name: VYOS_IMAGE.into(),
        prior_state: image_dv(prior),
        proposed_new_state: image_dv(proposed),
        config: image_dv(config),
        ..Default::default()
    }))
    .await
    .expect("RPC ok")
    .into_inner()
}

const CONTRACT: &[&str] = &[
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

// ---------------------------------------------------------------- schema

fn attr<'a>(block: &'a pb::schema::Block, name: &str) -> &'a pb::schema::Attribute {
    block
        .attributes
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("attribute {name} missing"))
}

fn nested<'a>(block: &'a pb::schema::Block, name: &str) -> &'a pb::schema::Block {
    let nb = block
        .block_types
        .iter()
        .find(|b| b.type_name == name)
        .unwrap_or_else(|| panic!("block {name} missing"));
    assert_eq!(
        nb.nesting,
        pb::schema::nested_block::NestingMode::Single as i32
    );
    assert!(!nb.block.as_ref().unwrap().description.is_empty());
    nb.block.as_ref().unwrap()
}

fn assert_described(block: &pb::schema::Block, names: &[&str]) {
    for name in names {
        let a = attr(block, name);
        assert!(
            !a.description.trim().is_empty(),
            "{name} has no description"
        );
    }
    for a in &block.attributes {
        assert!(
            !a.description.trim().is_empty(),
            "{} has no description",
            a.name
        );
    }
}

#[tokio::test]
async fn schema_has_every_design_attribute_with_a_description() {
    let svc = ProviderService::new();
    let resp = svc
        .get_schema(tonic::Request::new(pb::get_provider_schema::Request {}))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty());

    let provider = resp.provider.as_ref().unwrap().block.as_ref().unwrap();
    assert_described(
        provider,
        &[
            "cache_dir",
            "runtime_root",
            "gcs_credentials",
            "gcs_credentials_file",
            "gcs_impersonate_service_account",
            "gcs_endpoint",
            "s3_endpoint",
            "s3_region",
            "azure_storage_account",
            "max_parallel_builds",
            "cache_max_size_gb",
            "cache_failed_max_age",
        ],
    );
    assert!(attr(provider, "gcs_credentials").sensitive);

    let image = resp.resource_schemas[VYOS_IMAGE].block.as_ref().unwrap();
    assert_eq!(
        resp.resource_schemas[VYOS_IMAGE].version, 1,
        "v1 added reference_id"
    );
    assert!(!image.description.is_empty());
    let mut image_attrs = vec![
        "artifact_key",
        "artifact_format",
        "additional_formats",
        "artifact_version",
        "source_iso_url",
        "source_iso_mirror_url",
        "source_iso_sha256",
        "artifact_local_path",
        "rebuild_if_exists",
        "hyops_state_instance",
        "notes",
        "gcs_credentials_wo",
        "gcs_credentials_wo_version",
        "reference_id",
    ];
    image_attrs.extend_from_slice(CONTRACT);
    assert_described(image, &image_attrs);
    for name in ["artifact_key", "source_iso_url", "source_iso_sha256"] {
        assert!(attr(image, name).required, "{name} required");
    }
    for name in ["artifact_version", "artifact_local_path"] {
        let a = attr(image, name);
        assert!(a.optional && a.computed, "{name} optional+computed");
    }
    for name in CONTRACT {
        let a = attr(image, name);
        assert!(
            a.computed && !a.optional && !a.required,
            "{name} computed only"
        );
    }
    let wo = attr(image, "gcs_credentials_wo");
    assert!(wo.write_only && wo.sensitive && wo.optional);
    let artifacts_type: serde_json::Value =
        serde_json::from_slice(&attr(image, "artifacts").r#type).unwrap();
    assert_eq!(
        artifacts_type,
        serde_json::json!(["map", ["object", {
            "artifact_url": "string", "artifact_format": "string",
            "artifact_version": "string", "artifact_sha256": "string",
            "source_iso_url": "string", "artifact_local_path": "string"
        }]])
    );
    assert_described(
        nested(image, "build"),
        &[
            "method",
            "command",
            "workdir",
            "disk_size_gb",
            "cloud_init",
            "cloud_init_datasources",
            "guest_agent",
            "console",
            "allow_tcg",
            "skip_preflight",
            "packer_template",
            "packer_vars_file",
            "packer_extra_args",
            "vyos_vm_images_dir",
            "environment",
            "triggers",
        ],
    );
    assert_described(nested(image, "smoke_verify"), &["command", "required"]);
    assert_described(
        nested(image, "publish"),
        &[
            "repo_state_ref",
            "backend",
            "bucket",
            "prefix",
            "public_base_url",
            "command",
            "workdir",
            "retain_on_destroy",
        ],
    );
    assert_described(nested(image, "timeouts"), &["create", "delete"]);

    let data = resp.data_source_schemas[VYOS_ARTIFACT]
        .block
        .as_ref()
        .unwrap();
    let mut data_attrs = vec![
        "manifest_url",
        "artifact_state_ref",
        "artifact_key",
        "verify",
    ];
    data_attrs.extend_from_slice(CONTRACT);
    assert_described(data, &data_attrs);
    for name in CONTRACT {
        assert!(
            attr(data, name).computed,
            "{name} computed on the data source"
        );
    }
    let manifest_url = attr(data, "manifest_url");
    assert!(manifest_url.optional && manifest_url.computed);
    let mut names: Vec<&str> = data.attributes.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "no attribute declared twice");
}

#[tokio::test]
async fn metadata_lists_the_resource_and_the_data_source() {
    let svc = ProviderService::new();
    let resp = svc
        .get_metadata(tonic::Request::new(pb::get_metadata::Request {}))
        .await
        .unwrap()
        .into_inner();
    let resources: Vec<&str> = resp
        .resources
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    let data: Vec<&str> = resp
        .data_sources
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    assert_eq!(resources, vec![VYOS_IMAGE]);
    assert_eq!(data, vec![VYOS_ARTIFACT]);
    let caps = resp.server_capabilities.expect("capabilities announced");
    assert!(caps.plan_destroy && caps.get_provider_schema_optional);
    assert!(!caps.move_resource_state, "no MoveResourceState RPC");
    let schema = svc
        .get_schema(tonic::Request::new(pb::get_provider_schema::Request {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(schema.server_capabilities, Some(caps));
    assert_eq!(schema.resource_schemas[VYOS_IMAGE].version, 1);
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn good_config_validates_without_diagnostics() {
    let svc = ProviderService::new();
    let diags = validate_image(&svc, &good_config(), None).await;
    assert!(diags.is_empty(), "{diags:?}");
}

#[tokio::test]
async fn each_bad_config_is_one_error_at_its_attribute_path() {
    let svc = ProviderService::new();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("artifact_key", s("VyOS"), "artifact_key"),
        ("artifact_format", s("vmdk"), "artifact_format"),
        (
            "additional_formats",
            Value::List(vec![s("raw.xz"), s("raw.bz2")]),
            "additional_formats[1]",
        ),
        (
            "additional_formats",
            Value::List(vec![s("raw.gz"), s("raw.gz")]),
            "additional_formats[1]",
        ),
        (
            "source_iso_url",
            s("ftp://example.com/x.iso"),
            "source_iso_url",
        ),
        (
            "source_iso_mirror_url",
            s("mirror.local/x.iso"),
            "source_iso_mirror_url",
        ),
        ("source_iso_sha256", s("deadbeef"), "source_iso_sha256"),
        (
            "artifact_local_path",
            s("/var/lib/images/"),
            "artifact_local_path",
        ),
        ("hyops_state_instance", s("a/../b"), "hyops_state_instance"),
        ("build.method", s("docker"), "build.method"),
        ("build.console", s("vga"), "build.console"),
        ("build.guest_agent", s("spice"), "build.guest_agent"),
        ("build.disk_size_gb", num(4096), "build.disk_size_gb"),
        (
            "build.pass_environment",
            Value::List(vec![s("AWS_PROFILE"), s("HYOPS_VYOS_GCS_SA_JSON")]),
            "build.pass_environment[1]",
        ),
        (
            "build.pass_environment",
            Value::List(vec![s("NOT-A-NAME")]),
            "build.pass_environment[0]",
        ),
        ("publish.backend", s("ftp"), "publish.backend"),
        ("publish.prefix", s("/images"), "publish.prefix"),
        ("publish.prefix", s("images/../../etc"), "publish.prefix"),
        ("publish.prefix", s("images\u{1b}x"), "publish.prefix"),
        ("publish.bucket", s("/srv/../etc"), "publish.bucket"),
        (
            "publish.public_base_url",
            s("gs://bucket"),
            "publish.public_base_url",
        ),
        ("timeouts.create", s("2 hours"), "timeouts.create"),
        ("timeouts.delete", s("1d"), "timeouts.delete"),
        (
            "gcs_credentials_wo_version",
            s("v2"),
            "gcs_credentials_wo_version",
        ),
        (
            "publish",
            Value::object([("prefix", s("images"))]),
            "publish",
        ),
    ];
    for (path, value, expected) in cases {
        let config = with(&good_config(), path, value);
        let diags = validate_image(&svc, &config, None).await;
        assert_eq!(errors(&diags), 1, "{expected}: {diags:?}");
        assert_eq!(diags.len(), 1, "{expected}: {diags:?}");
        assert_eq!(paths(&diags), vec![expected.to_string()]);
        assert!(
            diags[0].summary.contains(expected) || expected == "publish",
            "summary names the attribute: {}",
            diags[0].summary
        );
        assert!(!diags[0].detail.is_empty());
    }
}

#[tokio::test]
async fn source_urls_with_credentials_warn_without_repeating_them() {
    let svc = ProviderService::new();
    let secret = "https://isouser:isopass-31d9@example.com/vyos.iso?X-Goog-Signature=isosig-8e02";
    for (path, advice) in [
        ("source_iso_url", "source_iso_mirror_url"),
        ("source_iso_mirror_url", "state"),
    ] {
        let config = with(&good_config(), path, s(secret));
        let diags = validate_image(&svc, &config, None).await;
        assert_eq!(errors(&diags), 0, "{diags:?}");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].severity, pb::diagnostic::Severity::Warning as i32);
        assert_eq!(paths(&diags), vec![path.to_string()]);
        assert!(diags[0].detail.contains(advice), "{}", diags[0].detail);
        let shown = format!("{} {}", diags[0].summary, diags[0].detail);
        for m in ["isouser", "isopass-31d9", "isosig-8e02"] {
            assert!(!shown.contains(m), "{shown}");
        }
    }
    // An unparseable URL is refused without echoing it.
    let config = with(
        &good_config(),
        "source_iso_url",
        s("https://u:isopass-31d9@[bad/x.iso"),
    );
    let diags = validate_image(&svc, &config, None).await;
    assert_eq!(errors(&diags), 1, "{diags:?}");
    assert!(
        !diags[0].detail.contains("isopass-31d9"),
        "{}",
        diags[0].detail
    );
}

#[tokio::test]
async fn unknown_values_pass_validation() {
    let svc = ProviderService::new();
    let mut config = good_config();
    for path in [
        "artifact_key",
        "artifact_format",
        "source_iso_url",
        "source_iso_sha256",
        "artifact_local_path",
        "hyops_state_instance",
        "build.method",
        "build.disk_size_gb",
        "publish.prefix",
        "publish.bucket",
        "publish.repo_state_ref",
        "timeouts.create",
    ] {
        config = with(&config, path, Value::Unknown);
    }
    config = with(
        &config,
        "additional_formats",
        Value::List(vec![Value::Unknown, s("raw.xz")]),
    );
    let diags = validate_image(&svc, &config, None).await;
    assert!(diags.is_empty(), "{diags:?}");
    let unknown_list = with(&good_config(), "additional_formats", Value::Unknown);
    assert!(validate_image(&svc, &unknown_list, None).await.is_empty());
}

#[tokio::test]
async fn data_source_rules_name_the_attribute() {
    let svc = ProviderService::new();
    let ty = vyos_artifact_schema().block.implied_type();
    let cases: Vec<(Value, Option<&str>)> = vec![
        (
            Value::object([("manifest_url", s("gs://b/vyos/manifest.json"))]),
            None,
        ),
        (
            Value::object([
                (
                    "artifact_state_ref",
                    s("core/shared/vyos-image-build#vyos_default_build"),
                ),
                ("artifact_key", s("vyos-1.5-qcow2")),
            ]),
            None,
        ),
        (
            Value::object([("manifest_url", s("ftp://b/manifest.json"))]),
            Some("manifest_url"),
        ),
        (
            Value::object([("artifact_state_ref", s("core/shared/vyos-image-build"))]),
            Some("artifact_state_ref"),
        ),
        (
            Value::object([
                ("manifest_url", s("file:///srv/manifest.json")),
                ("artifact_state_ref", s("a/b#c")),
                ("artifact_key", s("vyos")),
            ]),
            Some("artifact_state_ref"),
        ),
        (Value::object([("verify", Value::Bool(false))]), Some("")),
        (
            Value::object([
                ("manifest_url", Value::Unknown),
                ("artifact_state_ref", Value::Null),
            ]),
            None,
        ),
    ];
    for (config, expected) in cases {
        let diags = svc
            .validate_data_source_config(tonic::Request::new(
                pb::validate_data_source_config::Request {
                    type_name: VYOS_ARTIFACT.into(),
                    config: dv(&config, &ty),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .diagnostics;
        match expected {
            None => assert!(diags.is_empty(), "{config:?}: {diags:?}"),
            Some(p) => {
                assert_eq!(errors(&diags), 1, "{config:?}: {diags:?}");
                assert_eq!(paths(&diags), vec![p.to_string()]);
            }
        }
    }
}

#[tokio::test]
async fn provider_config_rules_and_configure_tolerate_unknowns() {
    let svc = ProviderService::new();
    let ty = provider_schema().block.implied_type();
    let conflict = Value::object([
        ("gcs_credentials", s("{}")),
        ("gcs_credentials_file", s("/etc/hyops/sa.json")),
    ]);
    let resp = svc
        .prepare_provider_config(tonic::Request::new(pb::prepare_provider_config::Request {
            config: dv(&conflict, &ty),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        paths(&resp.diagnostics),
        vec!["gcs_credentials_file".to_string()]
    );

    let bad_endpoint = Value::object([("gcs_endpoint", s("storage.local:4443"))]);
    let resp = svc
        .prepare_provider_config(tonic::Request::new(pb::prepare_provider_config::Request {
            config: dv(&bad_endpoint, &ty),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paths(&resp.diagnostics), vec!["gcs_endpoint".to_string()]);

    let zero = Value::object([("max_parallel_builds", num(0))]);
    let resp = svc
        .configure(tonic::Request::new(pb::configure::Request {
            config: dv(&zero, &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        paths(&resp.diagnostics),
        vec!["max_parallel_builds".to_string()]
    );

    let unknown = Value::object([
        ("gcs_credentials", Value::Unknown),
        ("cache_dir", s("/var/cache/hyops")),
    ]);
    let resp = svc
        .configure(tonic::Request::new(pb::configure::Request {
            terraform_version: "1.0.3".into(),
            config: dv(&unknown, &ty),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&resp.diagnostics), 0, "{:?}", resp.diagnostics);
    assert_eq!(resp.diagnostics.len(), 1, "a warning about deferred checks");
    assert!(resp.diagnostics[0].detail.contains("gcs_credentials"));
}

// ---------------------------------------------------------------- write-only

#[tokio::test]
async fn write_only_credential_is_refused_without_client_capability() {
    let svc = ProviderService::new();
    let config = with(
        &good_config(),
        "gcs_credentials_wo",
        s("{\"type\":\"service_account\"}"),
    );
    let diags = validate_image(&svc, &config, None).await;
    assert_eq!(errors(&diags), 1, "{diags:?}");
    assert_eq!(paths(&diags), vec!["gcs_credentials_wo".to_string()]);
    assert!(diags[0].detail.contains("Terraform 1.11"));
    assert!(diags[0].detail.contains("HYOPS_VYOS_GCS_SA_JSON"));
    assert!(diags[0].detail.contains("gcs_credentials_file"));

    let old_client = pb::ClientCapabilities {
        deferral_allowed: true,
        write_only_attributes_allowed: false,
    };
    assert_eq!(
        errors(&validate_image(&svc, &config, Some(old_client)).await),
        1
    );

    let new_client = pb::ClientCapabilities {
        deferral_allowed: false,
        write_only_attributes_allowed: true,
    };
    let diags = validate_image(&svc, &config, Some(new_client)).await;
    assert!(diags.is_empty(), "{diags:?}");
}

#[tokio::test]
async fn write_only_credential_is_null_in_every_plan() {
    let svc = ProviderService::new();
    let config = with(
        &good_config(),
        "gcs_credentials_wo",
        s("{\"private_key\":\"k\"}"),
    );
    let config = with(&config, "gcs_credentials_wo_version", s("1"));
    let resp = plan(&svc, &Value::Null, &config, &config).await;
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    let planned = decode_image(&resp.planned_state);
    assert_eq!(planned.get("gcs_credentials_wo"), Some(&Value::Null));
    assert_eq!(planned.get("gcs_credentials_wo_version"), Some(&s("1")));

    // rotating the credential: only the version label changes → in-place, value still null
    let prior = with(&prior_state(), "gcs_credentials_wo_version", s("1"));
    let next = with(&config, "gcs_credentials_wo_version", s("2"));
    let proposed = with(&prior, "gcs_credentials_wo_version", s("2"));
    let proposed = with(
        &proposed,
        "gcs_credentials_wo",
        s("{\"private_key\":\"k2\"}"),
    );
    let resp = plan(&svc, &prior, &proposed, &next).await;
    assert!(
        resp.requires_replace.is_empty(),
        "{:?}",
        resp.requires_replace
    );
    let planned = decode_image(&resp.planned_state);
    assert_eq!(planned.get("gcs_credentials_wo"), Some(&Value::Null));
    assert_eq!(planned.get("gcs_credentials_wo_version"), Some(&s("2")));
}

// ---------------------------------------------------------------- plan

#[tokio::test]
async fn plan_on_create_marks_computed_attributes_unknown() {
    let svc = ProviderService::new();
    let config = good_config();
    let resp = plan(&svc, &Value::Null, &config, &config).await;
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    assert!(resp.requires_replace.is_empty());
    let planned = decode_image(&resp.planned_state);
    for name in CONTRACT {
        assert_eq!(planned.get(name), Some(&Value::Unknown), "{name}");
    }
    assert_eq!(planned.get("artifact_version"), Some(&Value::Unknown));
    assert_eq!(planned.get("artifact_local_path"), Some(&Value::Unknown));
    assert_eq!(planned.get("artifact_key"), Some(&s("vyos-1.5-qcow2")));
    assert_eq!(planned.get("notes"), Some(&s("first")));

    // a configured optional+computed value is planned as configured
    let pinned = with(&config, "artifact_version", s("1.5-custom"));
    let planned = decode_image(
        &plan(&svc, &Value::Null, &pinned, &pinned)
            .await
            .planned_state,
    );
    assert_eq!(planned.get("artifact_version"), Some(&s("1.5-custom")));
    assert_eq!(planned.get("artifact_local_path"), Some(&Value::Unknown));
}

#[tokio::test]
async fn plan_with_changed_build_input_requires_replace_at_its_path() {
    let svc = ProviderService::new();
    let prior = prior_state();
    let cases: Vec<(&str, Value)> = vec![
        ("source_iso_sha256", s(&"f".repeat(64))),
        ("artifact_key", s("vyos-1.6")),
        ("build.method", s("command")),
        ("build.disk_size_gb", num(20)),
        ("publish.prefix", s("images/other")),
        ("additional_formats", Value::List(vec![s("raw.zst")])),
        ("source_iso_url", Value::Unknown),
    ];
    for (path, value) in cases {
        let config = with(&good_config(), path, value.clone());
        let proposed = with(&prior, path, value);
        let resp = plan(&svc, &prior, &proposed, &config).await;
        assert!(
            resp.diagnostics.is_empty(),
            "{path}: {:?}",
            resp.diagnostics
        );
        let replace: Vec<String> = resp
            .requires_replace
            .iter()
            .map(|p| Path::from(p).to_string())
            .collect();
        assert_eq!(replace, vec![path.to_string()], "{path}");
        let planned = decode_image(&resp.planned_state);
        for name in CONTRACT {
            assert_eq!(planned.get(name), Some(&Value::Unknown), "{path}: {name}");
        }
        assert_eq!(planned.get("artifact_version"), Some(&Value::Unknown));
    }
}

#[tokio::test]
async fn plan_with_state_only_changes_updates_in_place_and_keeps_computed() {
    let svc = ProviderService::new();
    let prior = prior_state();
    let cases: Vec<(&str, Value)> = vec![
        ("notes", s("second")),
        ("timeouts.create", s("5h")),
        ("timeouts.delete", s("45m")),
        ("publish.retain_on_destroy", Value::Bool(true)),
        ("gcs_credentials_wo_version", s("7")),
    ];
    for (path, value) in cases {
        let config = with(&good_config(), path, value.clone());
        let proposed = with(&prior, path, value.clone());
        let resp = plan(&svc, &prior, &proposed, &config).await;
        assert!(
            resp.diagnostics.is_empty(),
            "{path}: {:?}",
            resp.diagnostics
        );
        assert!(
            resp.requires_replace.is_empty(),
            "{path}: {:?}",
            resp.requires_replace
        );
        let planned = decode_image(&resp.planned_state);
        for name in CONTRACT {
            assert_eq!(planned.get(name), prior.get(name), "{path}: {name} kept");
        }
        assert_eq!(planned.get("artifact_version"), Some(&s("1.5")));
        let at = Path(
            path.split('.')
                .map(|p| hyops::cty::PathStep::Attribute(p.to_string()))
                .collect(),
        );
        assert_eq!(
            planned.get_path(&at),
            Some(&value),
            "{path} planned as configured"
        );
    }
    // nothing changed: the plan is the prior state
    let resp = plan(&svc, &prior, &prior, &good_config()).await;
    assert!(resp.requires_replace.is_empty());
    assert_eq!(
        decode_image(&resp.planned_state),
        decode_image(&image_dv(&prior))
    );
}

#[tokio::test]
async fn destroy_plan_passes_through() {
    let svc = ProviderService::new();
    let resp = plan(&svc, &prior_state(), &Value::Null, &Value::Null).await;
    // the prior state is a GCS artifact and this provider has no credential: a warning only
    assert_eq!(errors(&resp.diagnostics), 0, "{:?}", resp.diagnostics);
    assert!(
        resp.diagnostics
            .iter()
            .all(|d| d.summary.contains("no provider credential")),
        "{:?}",
        resp.diagnostics
    );
    assert!(resp.requires_replace.is_empty());
    assert_eq!(decode_image(&resp.planned_state), Value::Null);
}

// ---------------------------------------------------------------- state, apply, stop

#[tokio::test]
async fn upgrade_resource_state_drops_stale_attributes_and_upgrades_v0() {
    let svc = ProviderService::new();
    let json = serde_json::json!({
        "artifact_key": "vyos-1.5-qcow2",
        "source_iso_url": "https://example.com/vyos-1.5.iso",
        "source_iso_sha256": "0123456789abcdef".repeat(4),
        "artifact_size_bytes": 18446744073709551615u64,
        "gcs_credentials_wo": "leaked",
        "build": {"method": "packer", "disk_size_gb": 10, "retired_knob": 3},
        "attribute_of_an_older_provider": "x",
        "published": true
    });
    let resp = svc
        .upgrade_resource_state(tonic::Request::new(pb::upgrade_resource_state::Request {
            type_name: VYOS_IMAGE.into(),
            version: 0,
            raw_state: Some(pb::RawState {
                json: serde_json::to_vec(&json).unwrap(),
                flatmap: Default::default(),
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    let state = decode_image(&resp.upgraded_state);
    assert_eq!(state.get("artifact_key"), Some(&s("vyos-1.5-qcow2")));
    assert_eq!(
        state.get("artifact_size_bytes"),
        Some(&Value::Number(Number::from_u64(u64::MAX)))
    );
    assert_eq!(
        state.get("build").and_then(|b| b.get("method")),
        Some(&s("packer"))
    );
    assert_eq!(state.get("gcs_credentials_wo"), Some(&Value::Null));
    assert_eq!(state.get("notes"), Some(&Value::Null));
    assert_eq!(
        state.get("reference_id"),
        Some(&Value::Null),
        "v0: published before references existed"
    );
    assert!(state.get("attribute_of_an_older_provider").is_none());

    let newer = svc
        .upgrade_resource_state(tonic::Request::new(pb::upgrade_resource_state::Request {
            type_name: VYOS_IMAGE.into(),
            version: 7,
            raw_state: Some(pb::RawState {
                json: b"{}".to_vec(),
                flatmap: Default::default(),
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&newer.diagnostics), 1);
}

/// A create that cannot resolve its publish target fails before building: an error diagnostic at
/// the create, and no state (nothing half-published is ever claimed).
#[tokio::test]
async fn apply_create_failure_returns_an_error_and_no_state() {
    let svc = ProviderService::new();
    let config = good_config();
    let planned = plan(&svc, &Value::Null, &config, &config)
        .await
        .planned_state;
    let resp = svc
        .apply_resource_change(tonic::Request::new(pb::apply_resource_change::Request {
            type_name: VYOS_IMAGE.into(),
            prior_state: image_dv(&Value::Null),
            planned_state: planned,
            config: image_dv(&config),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&resp.diagnostics), 1, "{:?}", resp.diagnostics);
    assert!(
        resp.diagnostics[0].detail.contains("org/gcp/object-repo"),
        "{:?}",
        resp.diagnostics
    );
    assert!(resp.new_state.is_none());
}

#[tokio::test]
async fn apply_in_place_update_returns_the_planned_state() {
    let svc = ProviderService::new();
    let prior = prior_state();
    let config = with(&good_config(), "notes", s("second"));
    let proposed = with(&prior, "notes", s("second"));
    let planned = plan(&svc, &prior, &proposed, &config).await.planned_state;
    let resp = svc
        .apply_resource_change(tonic::Request::new(pb::apply_resource_change::Request {
            type_name: VYOS_IMAGE.into(),
            prior_state: image_dv(&prior),
            planned_state: planned.clone(),
            config: image_dv(&config),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    assert_eq!(decode_image(&resp.new_state), decode_image(&planned));
    assert_eq!(
        decode_image(&resp.new_state).get("notes"),
        Some(&s("second"))
    );
}

/// A manifest that is not there is an error at `manifest_url`, not a fake result.
#[tokio::test]
async fn read_data_source_reports_a_missing_manifest() {
    let svc = ProviderService::new();
    let ty = vyos_artifact_schema().block.implied_type();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/manifest.json", dir.path().display());
    let config = Value::object([("manifest_url", s(&url))]);
    let resp = svc
        .read_data_source(tonic::Request::new(pb::read_data_source::Request {
            type_name: VYOS_ARTIFACT.into(),
            config: dv(&config, &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&resp.diagnostics), 1);
    assert_eq!(
        resp.diagnostics[0].summary,
        "Cannot read the artifact manifest"
    );
    assert!(resp.state.is_none());
}

#[tokio::test]
async fn unknown_type_name_is_a_diagnostic_not_a_grpc_error() {
    let svc = ProviderService::new();
    let resp = svc
        .plan_resource_change(tonic::Request::new(pb::plan_resource_change::Request {
            type_name: "hyops_nope".into(),
            ..Default::default()
        }))
        .await
        .expect("Ok even for a bad request")
        .into_inner();
    assert_eq!(errors(&resp.diagnostics), 1);
    assert!(resp.diagnostics[0].detail.contains("hyops_nope"));
}

#[tokio::test]
async fn stop_cancels_in_flight_work() {
    let svc = ProviderService::new();
    let token = svc.cancellation();
    let work = tokio::spawn({
        let token = token.clone();
        async move { token.cancelled().await }
    });
    assert!(!token.is_cancelled());
    let resp = svc
        .stop(tonic::Request::new(pb::stop::Request {}))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.error.is_empty());
    work.await
        .expect("the waiting task observed the cancellation");
    assert!(token.is_cancelled());
}
