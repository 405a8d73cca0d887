//! Boot verification under real Terraform 1.0.3: the quickstart example boots what it publishes
//! (its contract and manifest record the verification), and broken images are refused with the
//! console tail in the diagnostic while nothing is published or recorded in state.

use std::path::Path;

use crate::harness::*;
use crate::support::*;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

#[test]
fn quickstart_example_boots_what_it_publishes_and_a_second_apply_is_a_no_op() {
    if !enabled() {
        return;
    }
    let (iso_path, sha) = iso("vyos-boot");
    let wd = Workdir::bare(&mirror().cli_config);
    std::fs::copy(
        examples().join("quickstart/main.tf"),
        wd.path().join("main.tf"),
    )
    .unwrap();
    // This machine's KVM hangs guests: the test pins TCG instead of relying on auto's fallback.
    std::fs::write(
        wd.path().join("terraform.tfvars"),
        format!(
            "fixture_iso = {:?}\nfixture_iso_sha256 = {sha:?}\nboot_accelerator = \"tcg\"\n",
            iso_path.display().to_string()
        ),
    )
    .unwrap();
    wd.init();
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = wd.outputs();
    let contract = &out["contract"]["value"];
    assert_eq!(contract["published"], true, "{contract:#}");
    assert_eq!(contract["vyos_version"], "1.5-hyops-fixture");
    let v = &contract["verification"];
    assert_eq!(v, &out["verification"]["value"]);
    assert_eq!(v["passed"], true, "{v:#}");
    assert_eq!(v["gate"], "qemu-img", "{v:#}");
    let boot = &v["boot"];
    assert_eq!(boot["passed"], true, "{v:#}");
    assert_eq!(boot["accelerator"], "tcg", "{v:#}");
    assert!(
        boot["guest_agent_version"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{v:#}"
    );
    assert!(
        boot["cloud_init_instance_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("iid-hyops-verify-")),
        "{v:#}"
    );
    assert_eq!(boot["cloud_init_source"], "guest_agent", "{v:#}");
    assert_eq!(boot["cloud_init_user_data"], true, "{v:#}");
    for k in [
        "seconds_to_login",
        "seconds_to_agent",
        "seconds_to_cloud_init",
        "seconds_total",
    ] {
        assert!(boot[k].as_f64().is_some_and(|s| s > 0.0), "{k}: {v:#}");
    }
    let manifest = url::Url::parse(contract["manifest_url"].as_str().unwrap())
        .unwrap()
        .to_file_path()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(numbers_as_f64(&m["verification"]), numbers_as_f64(v));
    let object = url::Url::parse(contract["artifact_storage_uri"].as_str().unwrap())
        .unwrap()
        .to_file_path()
        .unwrap();
    assert_eq!(
        sha256_hex(&std::fs::read(&object).unwrap()),
        contract["artifact_sha256"].as_str().unwrap()
    );

    let again = wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("Resources: 0 added, 0 changed, 0 destroyed"),
        "{stdout}"
    );
}

/// Terraform's `jsondecode` re-encodes numbers (`34.0` comes back as `34`): compare numerically.
fn numbers_as_f64(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) => serde_json::json!(n.as_f64()),
        serde_json::Value::Array(a) => a.iter().map(numbers_as_f64).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, x)| (k.clone(), numbers_as_f64(x)))
            .collect(),
        other => other.clone(),
    }
}

fn resource(name: &str, iso_name: &str, builder: &str, timeout: &str) -> String {
    let (path, sha) = iso(iso_name);
    format!(
        r#"
resource "hyops_vyos_image" "{name}" {{
  artifact_key      = "vyos-{name}"
  source_iso_url    = "file://{iso}"
  source_iso_sha256 = "{sha}"

  build {{
    method  = "command"
    console = "serial"
    command = {command}
  }}

  smoke_verify {{
    boot {{
      enabled     = true
      accelerator = "tcg"
      timeout     = "{timeout}"
    }}
  }}

  publish {{
    backend = "file"
    bucket  = abspath("${{path.root}}/repo")
  }}
}}
"#,
        iso = path.display(),
        command = serde_json::to_string(builder).unwrap(),
    )
}

#[test]
fn terraform_apply_refuses_broken_images_with_the_console_tail_and_publishes_nothing() {
    if !enabled() {
        return;
    }
    let mut main = "provider \"hyops\" {\n  max_parallel_builds = 2\n}\n".to_owned();
    main += &resource("empty", "vyos-boot", EMPTY_DISK, "3m");
    main += &resource("noagent", "vyos-boot-noagent", ISO_TO_DISK, "60s");
    main += &resource("panic", "vyos-boot-panic", ISO_TO_DISK, "3m");
    main += &resource("hang", "vyos-boot-hang", ISO_TO_DISK, "60s");
    let wd = Workdir::new(&main);
    let out = wd.apply();
    let all = flat(&out);
    assert!(!out.status.success(), "{all}");
    for needle in [
        "No bootable device",
        "guest agent never answered",
        "VyOS fixture (noagent)",
        "fail_on pattern `Kernel panic`",
        "Kernel panic - not syncing",
        "boot not verified within 60s",
        "VyOS fixture (hang)",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in: {all}");
    }
    assert!(
        all.matches("last console lines").count() >= 4,
        "every refusal carries the console tail: {all}"
    );
    assert!(wd.state_list().is_empty(), "{:?}", wd.state_list());
    assert!(files(&wd.path().join("repo")).is_empty());
}
