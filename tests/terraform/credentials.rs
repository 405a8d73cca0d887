//! GCS credentials under real Terraform: Application Default Credentials from the environment
//! (any version), and — version-specific, Terraform ≥ 1.11 only — `gcs_credentials_wo` fed from an
//! ephemeral variable. Either way no credential byte reaches the state, a saved plan or the log.

use crate::gcs::{config, stack, workdir};
use crate::gcs_stack::{GcsStack, BUCKET};
use crate::harness::*;

/// Every file of the working directory (state, saved plan, logs) plus the unpacked saved plan
/// and `show -json` of it must be free of each needle.
fn assert_nowhere(wd: &Workdir, needles: &[String]) {
    wd.ok(&["plan", "-out=tfplan", "-no-color", "-input=false"]);
    let shown = String::from_utf8_lossy(&wd.ok(&["show", "-json", "tfplan"]).stdout).into_owned();
    let unzip = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor n in z.namelist(): sys.stdout.buffer.write(z.read(n))",
        ])
        .arg(wd.path().join("tfplan"))
        .output()
        .expect("python3 unzip of the saved plan");
    assert!(unzip.status.success(), "saved plan is not a zip");
    let unpacked = String::from_utf8_lossy(&unzip.stdout).into_owned();
    let files = files_under(wd.path());
    assert!(files.iter().any(|f| f.ends_with("terraform.tfstate")));
    for n in needles {
        assert!(
            !shown.contains(n.as_str()),
            "credential in `show -json tfplan`"
        );
        assert!(
            !unpacked.contains(n.as_str()),
            "credential in the saved plan"
        );
        for f in &files {
            let b = std::fs::read(f).unwrap();
            assert!(
                !String::from_utf8_lossy(&b).contains(n.as_str()),
                "credential in {}",
                f.display()
            );
        }
    }
}

#[test]
fn gcs_apply_with_application_default_credentials_keeps_them_out_of_state_and_logs() {
    let Some((s, _guard)) = stack() else { return };
    let (cid, secret, refresh) = ("tf.apps", "tf-client-secret-Q7", "1//tf-refresh-R3");
    s.fakes(serde_json::json!({"user": {
        "client_id": cid, "client_secret": secret, "refresh_token": refresh}}));
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let mut wd = workdir(s, "vyos-adc", "tf/adc/", &marker);
    let adc = marker_dir.path().join("adc.json");
    std::fs::write(
        &adc,
        serde_json::json!({"type": "authorized_user", "client_id": cid,
            "client_secret": secret, "refresh_token": refresh,
            "token_uri": format!("{}/token", s.base())})
        .to_string(),
    )
    .unwrap();
    wd.set_env("GOOGLE_APPLICATION_CREDENTIALS", adc.display().to_string());
    let trace = wd.path().join("trace.log");
    wd.set_env("TF_LOG", "TRACE");
    wd.set_env("TF_LOG_PATH", trace.display().to_string());
    let before = s.stat("authorized_user");
    let out = wd.apply();
    assert!(out.status.success(), "apply:\n{}", text(&out));
    assert!(
        s.stat("authorized_user") > before,
        "published with the user's token"
    );
    assert_eq!(wd.plan_code().0, 0, "refresh reads with ADC too");
    let mut needles = vec![secret.to_owned(), refresh.to_owned()];
    needles.extend(s.issued_tokens());
    assert_nowhere(&wd, &needles);
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
}

/// Version-specific: Terraform ≥ 1.11 (write-only attributes, ephemeral variables). In other lanes
/// it says it did not run; scripts/test.sh reports whether any lane ran it.
#[test]
fn write_only_credential_from_an_ephemeral_variable_is_null_in_state_and_saved_plan() {
    if !client().supports_write_only() {
        eprintln!(
            "not run in this lane: {} has no write-only attributes (needs Terraform >= 1.11)",
            client().label()
        );
        return;
    }
    let Some((s, _guard)) = stack() else { return };
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let main = config("vyos-wo", "tf/wo/")
        .replace(
            "provider \"hyops\" {}",
            "variable \"sa_json\" {\n  type      = string\n  sensitive = true\n  ephemeral = true\n}\n\nprovider \"hyops\" {}",
        )
        .replace(
            "  artifact_key      = \"vyos-wo\"",
            "  artifact_key      = \"vyos-wo\"\n  gcs_credentials_wo         = var.sa_json\n  gcs_credentials_wo_version = \"1\"",
        );
    // Refresh cannot use a write-only value: it checks the public URLs (the stack serves them).
    let main = main.replace(
        "    prefix  = \"tf/wo/\"",
        &format!(
            "    prefix  = \"tf/wo/\"\n    public_base_url = \"{}/{BUCKET}\"",
            s.base()
        ),
    );
    assert!(main.contains("var.sa_json") && main.contains("public_base_url"));
    let mut wd = workdir(s, "vyos-wo", "tf/wo/", &marker);
    wd.write_main(&main);
    wd.set_env("TF_VAR_sa_json", s.sa_json());
    let tokens = s.stat("token_ok");
    // plan saved to a file, then applied from it (the ephemeral value is given again at apply)
    wd.ok(&["plan", "-out=wo.plan", "-no-color", "-input=false"]);
    let shown: serde_json::Value =
        serde_json::from_slice(&wd.ok(&["show", "-json", "wo.plan"]).stdout).expect("plan JSON");
    let change = &shown["resource_changes"][0]["change"];
    assert!(
        change["after"].get("gcs_credentials_wo").is_some(),
        "{change:#}"
    );
    assert!(
        change["after"]["gcs_credentials_wo"].is_null(),
        "{change:#}"
    );
    let out = wd.run(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "wo.plan",
    ]);
    assert!(out.status.success(), "apply:\n{}", text(&out));
    assert!(
        s.stat("token_ok") > tokens,
        "published with the write-only key"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.path().join("terraform.tfstate")).expect("state"))
            .expect("state JSON");
    let attrs = &state["resources"][0]["instances"][0]["attributes"];
    assert!(attrs["gcs_credentials_wo"].is_null(), "{attrs:#}");
    assert_eq!(attrs["gcs_credentials_wo_version"], "1");
    assert!(attrs["artifact_url"]
        .as_str()
        .is_some_and(|u| u.contains(BUCKET)));
    let key = GcsStack::key_marker(s);
    assert_nowhere(&wd, &[key]);
    // Destroy deletes objects: it needs a credential that outlives the apply.
    wd.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
}

#[test]
fn gcs_apply_without_any_credential_lists_every_source_in_order_before_building() {
    let Some((s, _guard)) = stack() else { return };
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let mut wd = workdir(s, "vyos-none", "tf/none/", &marker);
    // The metadata server is tried last, through the standard override: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    wd.set_env("NO_GCE_CHECK", "");
    wd.set_env("GCE_METADATA_HOST", format!("127.0.0.1:{closed}"));
    let out = wd.apply();
    let all = flat(&out);
    assert!(!out.status.success(), "{all}");
    let order = [
        "tried, in order:",
        "1. resource argument gcs_credentials_wo: not set",
        "2. provider gcs_credentials: not set",
        "3. provider gcs_credentials_file: not set",
        "4. env HYOPS_VYOS_GCS_SA_JSON: not set",
        "5. env HYOPS_VYOS_GCS_SA_JSON_FILE: not set",
        "6. env GOOGLE_APPLICATION_CREDENTIALS: not set",
        "7. gcloud ADC file",
        "8. metadata server at http://127.0.0.1",
    ];
    let mut at = 0;
    for step in order {
        at += all[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order:\n{all}"));
    }
    assert_eq!(
        builds(&marker),
        0,
        "built before the credential was checked"
    );
    assert!(wd.state_list().is_empty());
}

#[test]
fn gcs_apply_on_a_metadata_server_reached_through_gce_metadata_host() {
    let Some((s, _guard)) = stack() else { return };
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("builds");
    let mut wd = workdir(s, "vyos-md", "tf/md/", &marker);
    wd.set_env("NO_GCE_CHECK", "");
    wd.set_env("GCE_METADATA_HOST", format!("127.0.0.1:{}", s.port));
    let before = (s.stat("metadata_token_ok"), s.stat("authorized_metadata"));
    let out = wd.apply();
    assert!(out.status.success(), "apply:\n{}", text(&out));
    assert!(
        s.stat("metadata_token_ok") > before.0,
        "no token from the metadata server"
    );
    assert!(
        s.stat("authorized_metadata") > before.1,
        "storage not reached with it"
    );
    assert_nowhere(&wd, &s.issued_tokens());
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
}
