//! `hyops_vyos_image` publishing to GCS under real `terraform apply`: the emulator stack on
//! 127.0.0.1 (JWT-verifying token endpoint, auth-checking proxy with counters,
//! gcp-storage-emulator). The credential is only ever in `HYOPS_VYOS_GCS_SA_JSON`, the endpoint in
//! `HYOPS_GCS_ENDPOINT`; the builder comes from `HYOPS_VYOS_ISO_BUILD_METHOD`/`_COMMAND`, so the
//! configuration holds only what a manifest records (import gives an empty plan for it).
//!
//! One stack serves every test here; the tests take a lock because the proxy's counters are global.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::gcs_stack::{GcsStack, BUCKET};
use crate::harness::*;

pub(crate) fn stack() -> Option<(&'static GcsStack, MutexGuard<'static, ()>)> {
    static STACK: OnceLock<Option<GcsStack>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let s = STACK
        .get_or_init(|| crate::gcs_stack::available().then(GcsStack::start))
        .as_ref()?;
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    Some((s, guard))
}

pub(crate) fn config(key: &str, prefix: &str) -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "gcs" {{
  artifact_key      = "{key}"
  source_iso_url    = "{iso}"
  source_iso_sha256 = "{SHA}"

  publish {{
    backend = "gcs"
    bucket  = "{BUCKET}"
    prefix  = "{prefix}"
  }}
}}

output "image" {{
  value     = hyops_vyos_image.gcs
  sensitive = true
}}
"#,
        iso = fixture_iso_url()
    )
}

/// A workdir for `config`, with the builder and endpoint in the environment (no credential).
pub(crate) fn workdir(s: &GcsStack, key: &str, prefix: &str, marker: &Path) -> Workdir {
    let mut wd = Workdir::new(&config(key, prefix));
    wd.set_env("HYOPS_GCS_ENDPOINT", s.base());
    wd.set_env("HYOPS_VYOS_ISO_BUILD_METHOD", "command");
    wd.set_env("HYOPS_VYOS_ISO_BUILD_COMMAND", counting_builder(marker));
    wd
}

/// Object name of a `gs://BUCKET/NAME` URI or its `https://storage.googleapis.com/BUCKET/NAME`
/// form (names here need no percent-decoding).
fn object_of(uri: &str) -> String {
    uri.strip_prefix(&format!("gs://{BUCKET}/"))
        .or_else(|| uri.strip_prefix(&format!("https://storage.googleapis.com/{BUCKET}/")))
        .unwrap_or_else(|| panic!("not in the test bucket: {uri}"))
        .to_owned()
}

fn counters(s: &GcsStack) -> [u64; 3] {
    [
        s.stat("upload_initiations"),
        s.stat("chunk_puts"),
        s.stat("media_reads"),
    ]
}

#[test]
fn gcs_image_apply_noop_plan_recreate_import_and_destroy() {
    let Some((s, _guard)) = stack() else { return };
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let prefix = "tf/lifecycle/";
    let mut wd = workdir(s, "vyos-gcs", prefix, &marker);
    wd.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
    let trace = wd.path().join("trace.log");
    wd.set_env("TF_LOG", "TRACE");
    wd.set_env("TF_LOG_PATH", trace.display().to_string());

    // apply: every contract attribute is there, the object hashes to artifact_sha256
    let tokens_before = s.stat("token_ok");
    let out = wd.apply();
    assert!(out.status.success(), "apply:\n{}", text(&out));
    assert_eq!(builds(&marker), 1);
    assert!(s.stat("token_ok") > tokens_before, "the JWT was exchanged");
    let img = wd.outputs()["image"]["value"].clone();
    for attr in [
        "id",
        "artifact_url",
        "artifact_storage_uri",
        "artifact_sha256",
        "vyos_version",
        "build_id",
        "built_at",
        "published_at",
        "remote_checksum",
        "remote_generation",
        "manifest_url",
        "contract_json",
        "artifact_version",
        "artifact_local_path",
    ] {
        assert!(
            img[attr].as_str().is_some_and(|v| !v.is_empty()),
            "{attr} empty: {img:#}"
        );
    }
    assert_eq!(img["published"], true);
    assert!(img["artifact_size_bytes"].as_u64().unwrap() > 0);
    assert!(img["artifact_virtual_size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        img["artifacts"]["vyos-gcs"]["artifact_sha256"],
        img["artifact_sha256"]
    );
    let storage_uri = img["artifact_storage_uri"].as_str().unwrap().to_owned();
    let manifest_url = img["manifest_url"].as_str().unwrap().to_owned();
    let object = object_of(&storage_uri);
    assert!(object.starts_with(prefix), "{object}");
    let bytes = s.read(&object).expect("published object");
    assert_eq!(
        bytes.len() as u64,
        img["artifact_size_bytes"].as_u64().unwrap()
    );
    assert_eq!(sha256_hex(&bytes), img["artifact_sha256"].as_str().unwrap());
    assert!(
        s.read(&object_of(&manifest_url)).is_some(),
        "manifest published"
    );

    // a no-op plan: exit 0, no build, no upload, no download — only metadata reads
    let before = counters(s);
    let gets_before = s.stat("requests_GET");
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        counters(s),
        before,
        "plan uploaded or downloaded object data"
    );
    assert!(
        s.stat("requests_GET") > gets_before,
        "refresh heads the objects"
    );
    assert_eq!(builds(&marker), 1, "plan ran the builder");

    // the key's text is nowhere: state, saved plan (raw and shown), TRACE log, work dir
    wd.ok(&["plan", "-out=tfplan", "-no-color", "-input=false"]);
    let shown = wd.ok(&["show", "-json", "tfplan"]);
    let key = s.key_marker();
    assert!(
        !String::from_utf8_lossy(&shown.stdout).contains(&key),
        "key in `terraform show -json`"
    );
    let trace_text = std::fs::read_to_string(&trace).expect("TRACE log");
    assert!(
        trace_text.contains("stage=build") && trace_text.contains("stage=publish"),
        "engine progress reaches the provider log (and the check means something)"
    );
    let files = files_under(wd.path());
    for must in ["terraform.tfstate", "tfplan", "trace.log"] {
        assert!(
            files.iter().any(|f| f.ends_with(must)),
            "{must} not written"
        );
    }
    for f in files {
        let b = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&b).contains(&key),
            "the key's text is in {}",
            f.display()
        );
    }
    wd.env.retain(|(k, _)| !k.starts_with("TF_LOG"));

    // the object deleted out of band: plan shows recreation, apply restores it without a build
    s.delete(&object);
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("will be created"), "{plan}");
    assert!(plan.contains("gone or changed"), "refresh warns:\n{plan}");
    let out = wd.apply();
    assert!(out.status.success(), "re-apply:\n{}", text(&out));
    assert_eq!(builds(&marker), 1, "restored from the build cache");
    let restored = s.read(&object).expect("object restored");
    assert_eq!(
        sha256_hex(&restored),
        img["artifact_sha256"].as_str().unwrap()
    );
    assert_eq!(wd.plan_code().0, 0);

    // import from the manifest into a fresh state: the plan is empty
    let mut wd2 = workdir(s, "vyos-gcs", prefix, &marker);
    wd2.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
    let manifest_gs = format!("gs://{BUCKET}/{}", object_of(&manifest_url));
    wd2.ok(&[
        "import",
        "-no-color",
        "-input=false",
        "hyops_vyos_image.gcs",
        &manifest_gs,
    ]);
    wd2.ok(&["plan", "-out=import.plan", "-no-color", "-input=false"]);
    let shown = wd2.ok(&["show", "-json", "import.plan"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let change = &shown["resource_changes"][0]["change"];
    assert_eq!(
        change["actions"],
        serde_json::json!(["no-op"]),
        "plan after import: replace_paths {} before {:#} after {:#}",
        change["replace_paths"],
        change["before"],
        change["after"]
    );
    // (outputs are not part of an import; one apply records them without touching the resource)
    let out = wd2.apply();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 added, 0 changed, 0 destroyed"),
        "{}",
        text(&out)
    );
    assert_eq!(wd2.plan_code().0, 0);
    assert_eq!(builds(&marker), 1);
    let shown = wd2.ok(&["state", "show", "-no-color", "hyops_vyos_image.gcs"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(img["artifact_sha256"].as_str().unwrap()),
        "{shown}"
    );

    // another configuration reads it through the data source: from the gs:// manifest, and from
    // a HyOps state holding the contract as outputs (its manifest_url is the https form, read
    // back through the store with the credential)
    let runtime = tempfile::tempdir().unwrap();
    let instances = runtime
        .path()
        .join("state/modules/core__shared__vyos-image-build/instances");
    std::fs::create_dir_all(&instances).unwrap();
    let outputs: serde_json::Value =
        serde_json::from_str(img["contract_json"].as_str().unwrap()).unwrap();
    std::fs::write(
        instances.join("gcs_build.json"),
        serde_json::json!({"status": "ok", "outputs": outputs}).to_string(),
    )
    .unwrap();
    let mut consumer = Workdir::new(&format!(
        r#"
provider "hyops" {{
  runtime_root = "{runtime}"
}}

data "hyops_vyos_artifact" "edge" {{
  manifest_url = "{manifest_gs}"
  artifact_key = "vyos-gcs"
}}

data "hyops_vyos_artifact" "from_state" {{
  artifact_state_ref = "core/shared/vyos-image-build#gcs_build"
  artifact_key       = "vyos-gcs"
}}

output "state_size" {{
  value = data.hyops_vyos_artifact.from_state.artifact_size_bytes
}}

output "url" {{
  value = data.hyops_vyos_artifact.edge.artifact_url
}}

output "sha256" {{
  value = data.hyops_vyos_artifact.edge.artifact_sha256
}}
"#,
        runtime = runtime.path().display()
    ));
    consumer.set_env("HYOPS_GCS_ENDPOINT", s.base());
    consumer.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
    let uploads = counters(s)[..2].to_vec();
    consumer.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let read = consumer.outputs();
    assert_eq!(read["url"]["value"], img["artifact_url"]);
    assert_eq!(read["sha256"]["value"], img["artifact_sha256"]);
    assert_eq!(read["state_size"]["value"], img["artifact_size_bytes"]);
    assert_eq!(
        counters(s)[..2].to_vec(),
        uploads,
        "reading uploaded something"
    );

    // the refresh that dropped the first instance released its reference; the recreate and the
    // import each hold one
    let refs = |s: &GcsStack| {
        s.list(prefix)
            .into_iter()
            .filter(|n| n.contains("/refs/"))
            .count()
    };
    assert_eq!(refs(s), 2, "{:?}", s.list(prefix));
    // destroying one keeps the artifact for the importer; the last destroy removes everything
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert!(wd.state_list().is_empty());
    assert!(
        s.read(&object).is_some(),
        "the importer's artifact was deleted"
    );
    assert_eq!(refs(s), 1);
    wd2.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(s.list(prefix), Vec::<String>::new(), "destroy left objects");
}

#[test]
fn gcs_missing_credential_fails_cleanly_and_rerun_publishes_without_rebuilding() {
    let Some((s, _guard)) = stack() else { return };
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let prefix = "tf/nocred/";
    let mut wd = workdir(s, "vyos-nocred", prefix, &marker);

    let out = wd.apply();
    let all = text(&out);
    assert!(
        !out.status.success(),
        "apply without a credential succeeded:\n{all}"
    );
    for var in ["HYOPS_VYOS_GCS_SA_JSON", "HYOPS_VYOS_GCS_SA_JSON_FILE"] {
        assert!(all.contains(var), "error does not name {var}:\n{all}");
    }
    assert!(s.list(prefix).is_empty(), "something reached the bucket");
    assert!(wd.state_list().is_empty(), "an instance is in state");
    assert!(builds(&marker) <= 1);
    let built_before = builds(&marker);

    wd.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
    let out = wd.apply();
    assert!(out.status.success(), "rerun:\n{}", text(&out));
    assert_eq!(builds(&marker), 1, "built exactly once over both runs");
    assert!(built_before == 0 || built_before == 1);
    let listed = s.list(prefix);
    assert!(
        listed.iter().any(|n| n.ends_with("manifest.json")) && listed.len() >= 2,
        "{listed:?}"
    );
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert!(s.list(prefix).is_empty());
}
