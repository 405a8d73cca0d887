//! Credentials across the lifecycle, in-process against the GCS emulator stack (private bucket:
//! the proxy refuses requests without a valid token): an image created with only the write-only
//! `gcs_credentials_wo` (client announcing write-only support) — refresh keeps the state with a
//! warning, destroy fails naming the provider settings, a new `gcs_credentials_wo_version`
//! re-checks the objects with the new credential, and a provider credential then destroys it.

use std::path::Path;

use hyops::cty::Value;
use hyops::provider::schema::{vyos_image_schema, VYOS_IMAGE};
use hyops::provider::ProviderService;
use hyops::tfplugin5::pb;
use hyops::tfplugin5::pb::provider_server::Provider;

use crate::gcs_stack::{self, GcsStack};

const PREFIX: &str = "wo-lifecycle/";

fn image_dv(v: &Value) -> Option<pb::DynamicValue> {
    let ty = vyos_image_schema().block.implied_type();
    Some(pb::DynamicValue {
        msgpack: hyops::cty::msgpack::encode(v, &ty).expect("encodes"),
        json: Vec::new(),
    })
}

fn decode(d: &Option<pb::DynamicValue>) -> Value {
    let ty = vyos_image_schema().block.implied_type();
    hyops::cty::msgpack::decode(&d.as_ref().expect("a value").msgpack, &ty).expect("decodes")
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

fn caps() -> Option<pb::ClientCapabilities> {
    Some(pb::ClientCapabilities {
        deferral_allowed: false,
        write_only_attributes_allowed: true,
    })
}

/// A configured provider: endpoint and cache, and a credential only when `credential` is set.
async fn provider(s: &GcsStack, cache: &Path, credential: Option<String>) -> ProviderService {
    let svc = ProviderService::new();
    let mut attrs = vec![
        ("gcs_endpoint", Value::string(s.base())),
        ("cache_dir", Value::string(cache.display().to_string())),
    ];
    if let Some(c) = credential {
        attrs.push(("gcs_credentials", Value::string(c)));
    }
    let cfg = Value::object(attrs);
    let ty = hyops::provider::schema::provider_schema()
        .block
        .implied_type();
    let resp = svc
        .configure(tonic::Request::new(pb::configure::Request {
            terraform_version: "1.11.4".into(),
            config: Some(pb::DynamicValue {
                msgpack: hyops::cty::msgpack::encode(&cfg, &ty).unwrap(),
                json: Vec::new(),
            }),
            client_capabilities: caps(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    svc
}

fn config(iso: &Path, credential: &str, version: &str) -> Value {
    let iso_url = format!("file://{}", iso.display());
    Value::object([
        ("artifact_key", Value::string("vyos-wo")),
        ("artifact_version", Value::string("1.0")),
        ("source_iso_url", Value::string(iso_url)),
        ("source_iso_sha256", Value::string(sha256_file(iso))),
        ("gcs_credentials_wo", Value::string(credential)),
        ("gcs_credentials_wo_version", Value::string(version)),
        (
            "build",
            Value::object([
                ("method", Value::string("command")),
                (
                    "command",
                    Value::string(
                        "qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \
                         \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\"",
                    ),
                ),
            ]),
        ),
        (
            "smoke_verify",
            Value::object([("required", Value::Bool(false))]),
        ),
        (
            "publish",
            Value::object([
                ("backend", Value::string("gcs")),
                ("bucket", Value::string(gcs_stack::BUCKET)),
                ("prefix", Value::string(PREFIX)),
            ]),
        ),
    ])
}

async fn plan(svc: &ProviderService, prior: &Value, config: &Value) -> pb::DynamicValue {
    // Terraform's proposed state: the configuration over the prior state (computed kept)
    let proposed = match (prior, config) {
        (Value::Object(p), Value::Object(c)) => {
            let mut m = p.clone();
            for (k, v) in c {
                m.insert(k.clone(), v.clone());
            }
            m.insert("gcs_credentials_wo".into(), Value::Null);
            Value::Object(m)
        }
        _ => config.clone(),
    };
    let resp = svc
        .plan_resource_change(tonic::Request::new(pb::plan_resource_change::Request {
            type_name: VYOS_IMAGE.into(),
            prior_state: image_dv(prior),
            proposed_new_state: image_dv(&proposed),
            config: image_dv(config),
            client_capabilities: caps(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    assert!(
        resp.requires_replace.is_empty(),
        "{:?}",
        resp.requires_replace
    );
    resp.planned_state.expect("planned state")
}

async fn apply(
    svc: &ProviderService,
    prior: &Value,
    planned: Option<pb::DynamicValue>,
    config: &Value,
) -> pb::apply_resource_change::Response {
    svc.apply_resource_change(tonic::Request::new(pb::apply_resource_change::Request {
        type_name: VYOS_IMAGE.into(),
        prior_state: image_dv(prior),
        planned_state: planned,
        config: image_dv(config),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
}

fn texts(diags: &[pb::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("[{}] {}: {}", d.severity, d.summary, d.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_error(d: &pb::Diagnostic) -> bool {
    d.severity == pb::diagnostic::Severity::Error as i32
}

#[tokio::test]
async fn write_only_credential_serves_create_and_recheck_while_refresh_warns_and_destroy_names_the_settings(
) {
    if !gcs_stack::available() {
        return;
    }
    assert!(
        std::env::var_os("HYOPS_VYOS_GCS_SA_JSON").is_none()
            && std::env::var_os("HYOPS_VYOS_GCS_SA_JSON_FILE").is_none(),
        "this test needs no credential in the environment"
    );
    let s = GcsStack::start();
    let tmp = tempfile::tempdir().unwrap();
    let iso = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/vyos-fixture.iso");
    let cache = tmp.path().join("cache");
    let svc = provider(&s, &cache, None).await;

    // create with only the write-only credential (validated with the capability)
    let cfg = config(&iso, &s.sa_json(), "1");
    let v = svc
        .validate_resource_type_config(tonic::Request::new(
            pb::validate_resource_type_config::Request {
                type_name: VYOS_IMAGE.into(),
                config: image_dv(&cfg),
                client_capabilities: caps(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(v.diagnostics.is_empty(), "{}", texts(&v.diagnostics));
    let planned = plan(&svc, &Value::Null, &cfg).await;
    let created = apply(&svc, &Value::Null, Some(planned), &cfg).await;
    assert!(
        !created.diagnostics.iter().any(is_error),
        "{}",
        texts(&created.diagnostics)
    );
    let state = decode(&created.new_state);
    assert_eq!(state.get("gcs_credentials_wo"), Some(&Value::Null));
    assert!(state.get("reference_id").and_then(Value::as_str).is_some());
    let objects = s.list(PREFIX);
    assert_eq!(objects.len(), 3, "image, manifest, reference: {objects:?}");

    // refresh without a provider credential: state kept, warning names the settings
    let read = svc
        .read_resource(tonic::Request::new(pb::read_resource::Request {
            type_name: VYOS_IMAGE.into(),
            current_state: image_dv(&state),
            client_capabilities: caps(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !read.diagnostics.iter().any(is_error),
        "{}",
        texts(&read.diagnostics)
    );
    assert_eq!(
        decode(&read.new_state),
        state,
        "refresh dropped or changed the state"
    );
    let warning = texts(&read.diagnostics);
    assert!(warning.contains("remote check skipped"), "{warning}");
    assert!(warning.contains("gcs_credentials_file"), "{warning}");
    assert!(warning.contains("HYOPS_VYOS_GCS_SA_JSON"), "{warning}");

    // a destroy plan (plan_destroy capability) already warns…
    let destroy_plan = svc
        .plan_resource_change(tonic::Request::new(pb::plan_resource_change::Request {
            type_name: VYOS_IMAGE.into(),
            prior_state: image_dv(&state),
            proposed_new_state: image_dv(&Value::Null),
            config: image_dv(&Value::Null),
            client_capabilities: caps(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decode(&destroy_plan.planned_state), Value::Null);
    let text = texts(&destroy_plan.diagnostics);
    assert!(!destroy_plan.diagnostics.iter().any(is_error), "{text}");
    assert!(text.contains("Destroy will fail"), "{text}");
    assert!(text.contains("gcs_credentials_file"), "{text}");

    // …and destroy without a provider credential fails naming the settings, deletes nothing
    let destroyed = apply(&svc, &state, image_dv(&Value::Null), &Value::Null).await;
    let text = texts(&destroyed.diagnostics);
    assert!(destroyed.diagnostics.iter().any(is_error), "{text}");
    assert!(text.contains("gcs_credentials_file"), "{text}");
    assert!(text.contains("HYOPS_VYOS_GCS_SA_JSON_FILE"), "{text}");
    assert_eq!(s.list(PREFIX), objects);

    // a new gcs_credentials_wo_version re-checks with the new credential: a key the token
    // endpoint does not know fails the update at gcs_credentials_wo…
    let stranger = gcs_stack::gen_key(tmp.path(), "stranger");
    let mut bad: serde_json::Value = serde_json::from_str(&s.sa_json()).unwrap();
    bad["private_key"] = stranger.pem.into();
    let bad_cfg = config(&iso, &bad.to_string(), "2");
    let planned = plan(&svc, &state, &bad_cfg).await;
    let denied_before = s.stat("token_denied");
    let update = apply(&svc, &state, Some(planned), &bad_cfg).await;
    assert!(
        update.diagnostics.iter().any(is_error),
        "{}",
        texts(&update.diagnostics)
    );
    assert!(
        s.stat("token_denied") > denied_before,
        "the new credential was not used"
    );
    assert_eq!(
        update.diagnostics[0]
            .attribute
            .as_ref()
            .map(|a| hyops::cty::Path::from(a).to_string()),
        Some("gcs_credentials_wo".to_string())
    );
    // …and the working one passes, in place
    let good_cfg = config(&iso, &s.sa_json(), "2");
    let planned = plan(&svc, &state, &good_cfg).await;
    let (ok_before, gets_before) = (s.stat("token_ok"), s.stat("requests_GET"));
    let update = apply(&svc, &state, Some(planned), &good_cfg).await;
    assert!(
        !update.diagnostics.iter().any(is_error),
        "{}",
        texts(&update.diagnostics)
    );
    assert!(s.stat("token_ok") > ok_before, "no token was requested");
    assert!(
        s.stat("requests_GET") > gets_before,
        "the objects were not re-checked"
    );
    let updated = decode(&update.new_state);
    assert_eq!(
        updated.get("gcs_credentials_wo_version"),
        Some(&Value::string("2"))
    );
    assert_eq!(updated.get("reference_id"), state.get("reference_id"));

    // with a provider credential, destroy releases the last reference and deletes everything
    let svc = provider(&s, &cache, Some(s.sa_json())).await;
    let destroyed = apply(&svc, &updated, image_dv(&Value::Null), &Value::Null).await;
    assert!(
        !destroyed.diagnostics.iter().any(is_error),
        "{}",
        texts(&destroyed.diagnostics)
    );
    assert!(s.list(PREFIX).is_empty(), "{:?}", s.list(PREFIX));
}
