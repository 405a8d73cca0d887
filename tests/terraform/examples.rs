//! The shipped examples: `examples/quickstart` applies as written (and a second apply is a no-op),
//! and every example is `terraform fmt` clean.

use std::path::Path;

use crate::harness::*;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

#[test]
fn quickstart_example_applies_and_a_second_apply_is_a_no_op() {
    let wd = Workdir::bare(&mirror().cli_config);
    for f in ["main.tf", "vyos-fixture.iso"] {
        std::fs::copy(examples().join("quickstart").join(f), wd.path().join(f)).unwrap();
    }
    wd.init();
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = wd.outputs();
    let contract = &out["contract"]["value"];
    assert_eq!(contract["published"], true, "{contract:#}");
    assert_eq!(contract["artifact_key"], "vyos-quickstart");
    assert!(contract["artifacts"]["vyos-quickstart+raw.zst"].is_object());
    let object = url::Url::parse(contract["artifact_storage_uri"].as_str().unwrap())
        .unwrap()
        .to_file_path()
        .unwrap();
    assert!(
        object.starts_with(wd.path().join("object-repo")),
        "{}",
        object.display()
    );
    let bytes = std::fs::read(&object).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        contract["artifact_sha256"].as_str().unwrap()
    );

    let again = wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("Resources: 0 added, 0 changed, 0 destroyed"),
        "{stdout}"
    );
}

#[test]
fn every_example_is_terraform_fmt_clean() {
    let out = std::process::Command::new(terraform_bin())
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(examples())
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform fmt");
    assert!(out.status.success(), "not fmt clean:\n{}", text(&out));
}

/// `examples/modules/vyos-image-build` used as a module: its outputs mirror the HyOps state
/// contract, and the HyOps state file it writes says the same.
#[test]
fn module_example_outputs_mirror_the_hyops_state_it_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("runtime");
    let marker = tmp.path().join("builds");
    let module = examples().join("modules/vyos-image-build");
    let wd = Workdir::new(&format!(
        r#"
provider "hyops" {{
  runtime_root = "{runtime}"
}}

module "vyos" {{
  source               = "{module}"
  artifact_key         = "vyos-module"
  source_iso_url       = "{iso}"
  source_iso_sha256    = "{SHA}"
  hyops_state_instance = "module_build"
  build_method         = "command"
  build_command        = {command}
  disk_size_gb         = 2
  publish              = true
  repo_backend         = "file"
  repo_bucket          = "{repo}"
  repo_prefix          = "images/"
}}

output "vyos" {{
  value = module.vyos
}}
"#,
        runtime = runtime.display(),
        module = module.display(),
        iso = fixture_iso_url(),
        command = serde_json::to_string(&counting_builder(&marker)).unwrap(),
        repo = tmp.path().join("repo").display(),
    ));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = &wd.outputs()["vyos"]["value"];
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            runtime
                .join("state/modules/core__shared__vyos-image-build/instances/module_build.json"),
        )
        .expect("HyOps state written"),
    )
    .unwrap();
    assert_eq!(state["status"], "ok");
    let mirrored = out.as_object().expect("module outputs");
    assert!(mirrored.len() >= 8, "{out:#}");
    for (name, value) in mirrored {
        assert_eq!(
            &state["outputs"][name], value,
            "module output {name} differs from the HyOps state"
        );
    }
    assert_eq!(wd.plan_code().0, 0);
    assert_eq!(builds(&marker), 1);
}
