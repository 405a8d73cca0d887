//! The shipped examples: every example is `terraform fmt` clean, and the module example applies.
//! (`examples/quickstart` boots what it publishes, so it is applied in `tests/boot.rs`.)

use std::path::Path;

use crate::harness::*;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
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
