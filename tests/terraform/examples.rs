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
