//! File-backend and local-only lifecycle details: `retain_on_destroy` (updated in place) keeps the
//! published objects; destroy removes every published format; an unpublished build's refresh
//! checks the local file.

use std::path::Path;

use crate::harness::*;

fn config(repo: &Path, marker: &Path, publish_extra: &str) -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key       = "vyos-local"
  source_iso_url     = "{iso}"
  source_iso_sha256  = "{SHA}"
  additional_formats = ["raw.gz"]

  build {{
    method  = "command"
    command = {command}
  }}

  publish {{
    backend = "file"
    bucket  = "{repo}"
{publish_extra}
  }}
}}
"#,
        iso = fixture_iso_url(),
        command = serde_json::to_string(&counting_builder(marker)).unwrap(),
        repo = repo.display()
    )
}

#[test]
fn destroy_removes_every_format_unless_retain_on_destroy_is_set_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let marker = tmp.path().join("builds");
    let wd = Workdir::new(&config(&repo, &marker, ""));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let published = files_under(&repo);
    assert_eq!(published.len(), 3, "qcow2, raw.gz, manifest: {published:?}");

    // retain_on_destroy updates in place (no rebuild), then destroy keeps the objects
    wd.write_main(&config(&repo, &marker, "    retain_on_destroy = true"));
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2);
    assert!(plan.contains("updated in-place"), "{plan}");
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(builds(&marker), 1);
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(files_under(&repo).len(), 3, "retained objects were deleted");

    // without it, destroy deletes the manifest and every format
    wd.write_main(&config(&repo, &marker, ""));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(builds(&marker), 1, "the build cache served the re-create");
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert!(files_under(&repo).is_empty(), "{:?}", files_under(&repo));
    assert!(wd.state_list().is_empty());
}

#[test]
fn unpublished_build_refresh_checks_the_local_file() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("builds");
    let local = tmp.path().join("out/vyos-local.qcow2");
    let wd = Workdir::new(&format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key        = "vyos-local"
  source_iso_url      = "{iso}"
  source_iso_sha256   = "{SHA}"
  artifact_local_path = "{local}"

  build {{
    method  = "command"
    command = {command}
  }}
}}

output "url" {{
  value = hyops_vyos_image.img.artifact_url
}}
"#,
        iso = fixture_iso_url(),
        local = local.display(),
        command = serde_json::to_string(&counting_builder(&marker)).unwrap(),
    ));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(
        wd.outputs()["url"]["value"],
        format!("file://{}", local.display())
    );
    assert_eq!(wd.plan_code().0, 0);
    std::fs::remove_file(&local).unwrap();
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("will be created"), "{plan}");
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert!(local.exists());
    assert_eq!(builds(&marker), 1, "re-delivered from the build cache");
}

/// Importing into a configuration that also sets inputs a manifest does not record (`build`):
/// the first plan adopts them in place — no replacement, no build — and the next plan is empty.
#[test]
fn import_adopts_unrecorded_inputs_in_place_without_rebuilding() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let marker = tmp.path().join("builds");
    let producer = Workdir::new(&config(&repo, &marker, ""));
    producer.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let manifest = files_under(&repo)
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .expect("manifest published");

    let wd = Workdir::new(&config(&repo, &marker, ""));
    wd.ok(&[
        "import",
        "-no-color",
        "-input=false",
        "hyops_vyos_image.img",
        &format!("file://{}", manifest.display()),
    ]);
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    let out = wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        text(&out)
    );
    assert_eq!(builds(&marker), 1, "import or adoption ran a build");
    assert_eq!(wd.plan_code().0, 0);

    // after that first apply the marker is gone: setting an input that is still null (one the
    // adoption would have taken) replaces as usual
    let changed = config(&repo, &marker, "").replace(
        "  additional_formats = [\"raw.gz\"]",
        "  additional_formats = [\"raw.gz\"]\n  hyops_state_instance = \"later\"",
    );
    assert_ne!(changed, config(&repo, &marker, ""));
    wd.write_main(&changed);
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2);
    assert!(plan.contains("must be replaced"), "{plan}");
}

/// An object changed out of band (other bytes): refresh drops the instance with a warning and the
/// plan recreates it; the publish step then refuses to overwrite the immutable, content-addressed
/// name holding other bytes (no state claimed), and once the object is removed the apply
/// republishes the cached build.
#[test]
fn refresh_drops_the_instance_when_the_published_object_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let marker = tmp.path().join("builds");
    let wd = Workdir::new(&config(&repo, &marker, ""));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let qcow2 = files_under(&repo)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "qcow2"))
        .expect("published qcow2");
    let original = std::fs::read(&qcow2).unwrap();
    let mut tampered = original.clone();
    tampered.extend_from_slice(b"tampered");
    std::fs::write(&qcow2, &tampered).unwrap();

    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("gone or changed"), "{plan}");
    assert!(plan.contains("will be created"), "{plan}");
    let out = wd.apply();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(flat(&out).contains("refusing to overwrite"), "{all}");
    assert!(wd.state_list().is_empty());
    assert_eq!(
        std::fs::read(&qcow2).unwrap(),
        tampered,
        "left for the operator"
    );

    std::fs::remove_file(&qcow2).unwrap();
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(std::fs::read(&qcow2).unwrap(), original, "republished");
    assert_eq!(builds(&marker), 1, "from the build cache");
    assert_eq!(wd.plan_code().0, 0);
}

/// `build.triggers` is a build input like the others: changing a value forces replacement in the
/// plan (at `build.triggers`) and rebuilds; unchanged triggers plan nothing.
#[test]
fn changing_build_triggers_forces_replacement_and_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("builds");
    let main = |roles: &str| {
        format!(
            r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key      = "vyos-triggers"
  source_iso_url    = "{iso}"
  source_iso_sha256 = "{SHA}"

  build {{
    method   = "command"
    command  = {command}
    triggers = {{ roles = "{roles}" }}
  }}
}}
"#,
            iso = fixture_iso_url(),
            command = serde_json::to_string(&counting_builder(&marker)).unwrap(),
        )
    };
    let wd = Workdir::new(&main("v1"));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(builds(&marker), 1);
    assert_eq!(wd.plan_code().0, 0, "unchanged triggers planned a change");

    wd.write_main(&main("v2"));
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("must be replaced"), "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains("triggers") && l.contains("forces replacement")),
        "{plan}"
    );
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(builds(&marker), 2, "a changed trigger must rebuild");
}
