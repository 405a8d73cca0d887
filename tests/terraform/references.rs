//! Shared artifacts (issue 9) on the `file` backend and on the GCS emulator stack: every instance
//! records a reference next to the artifact; destroy deletes the objects only as the last user;
//! a `create_before_destroy` replacement keeps what it adopted; import refuses a manifest that
//! points outside its repository.

use std::path::{Path, PathBuf};

use crate::harness::*;

/// The lock file the `file` backend keeps at the repository root (not an artifact object).
const LOCK: &str = ".hyops-references.lock";

fn config(repo: &Path, marker: &Path, smoke_required: bool, extra: &str) -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key       = "vyos-shared"
  source_iso_url     = "{iso}"
  source_iso_sha256  = "{SHA}"
  additional_formats = ["raw.gz"]

  build {{
    method  = "command"
    command = {command}
  }}

  smoke_verify {{
    required = {smoke_required}
  }}

  publish {{
    backend = "file"
    bucket  = "{repo}"
  }}
{extra}
}}
"#,
        iso = fixture_iso_url(),
        command = serde_json::to_string(&counting_builder(marker)).unwrap(),
        repo = repo.display()
    )
}

/// Objects in the repository (the lock file excluded), relative, sorted.
fn objects(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(repo)
        .into_iter()
        .filter(|p| !p.ends_with(LOCK))
        .map(|p| p.strip_prefix(repo).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

fn refs(repo: &Path) -> Vec<String> {
    objects(repo)
        .into_iter()
        .filter(|o| o.contains("/refs/"))
        .collect()
}

fn artifacts(repo: &Path) -> Vec<String> {
    objects(repo)
        .into_iter()
        .filter(|o| !o.contains("/refs/"))
        .collect()
}

fn reference_id(wd: &Workdir) -> String {
    let out = wd.ok(&["show", "-json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["values"]["root_module"]["resources"][0]["values"]["reference_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn apply_ok(wd: &Workdir) {
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
}

fn destroy_ok(wd: &Workdir) {
    wd.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
}

fn manifest_of(repo: &Path) -> PathBuf {
    files_under(repo)
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .expect("manifest published")
}

#[test]
fn create_before_destroy_replacement_keeps_the_artifact_and_the_next_plan_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let cbd = "  lifecycle {\n    create_before_destroy = true\n  }";
    let wd = Workdir::new(&config(&repo, &marker, true, cbd));
    apply_ok(&wd);
    let before = artifacts(&repo);
    assert_eq!(before.len(), 3, "qcow2, raw.gz, manifest: {before:?}");
    let first = reference_id(&wd);
    assert_eq!(refs(&repo).len(), 1);
    assert!(refs(&repo)[0].ends_with(&format!("refs/{first}.json")));

    wd.write_main(&config(&repo, &marker, false, cbd));
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2);
    assert!(
        plan.contains("create replacement and then destroy"),
        "{plan}"
    );
    apply_ok(&wd);
    assert_eq!(
        artifacts(&repo),
        before,
        "the replacement's destroy deleted the artifact"
    );
    let second = reference_id(&wd);
    assert_ne!(first, second);
    assert_eq!(
        refs(&repo),
        vec![refs(&repo)[0].clone()],
        "only the replacement's reference is left"
    );
    assert!(refs(&repo)[0].ends_with(&format!("refs/{second}.json")));
    assert_eq!(wd.plan_code().0, 0);
}

#[test]
fn two_configurations_share_an_artifact_until_the_last_one_is_destroyed() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let first = Workdir::new(&config(&repo, &marker, true, ""));
    let second = Workdir::new(&config(&repo, &marker, true, ""));
    apply_ok(&first);
    apply_ok(&second);
    let published = artifacts(&repo);
    assert_eq!(published.len(), 3, "{published:?}");
    assert_eq!(refs(&repo).len(), 2);

    destroy_ok(&first);
    assert_eq!(
        artifacts(&repo),
        published,
        "the first destroy deleted shared objects"
    );
    assert_eq!(refs(&repo).len(), 1);
    assert_eq!(second.plan_code().0, 0);

    destroy_ok(&second);
    assert!(objects(&repo).is_empty(), "{:?}", objects(&repo));
    assert!(
        entries_under(&repo).iter().all(|p| p.ends_with(LOCK)),
        "empty directories left: {:?}",
        entries_under(&repo)
    );
}

#[test]
fn import_then_destroy_leaves_the_other_users_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let producer = Workdir::new(&config(&repo, &marker, true, ""));
    apply_ok(&producer);
    let published = artifacts(&repo);
    let importer = Workdir::new(&config(&repo, &marker, true, ""));
    importer.ok(&[
        "import",
        "-no-color",
        "-input=false",
        "hyops_vyos_image.img",
        &format!("file://{}", manifest_of(&repo).display()),
    ]);
    assert_eq!(refs(&repo).len(), 2, "import records its own reference");
    destroy_ok(&importer);
    assert_eq!(artifacts(&repo), published);
    assert_eq!(refs(&repo).len(), 1);
    assert_eq!(producer.plan_code().0, 0);
}

#[test]
fn import_of_a_manifest_pointing_outside_its_repository_is_refused_and_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let producer = Workdir::new(&config(&repo, &marker, true, ""));
    apply_ok(&producer);
    // a victim outside the repository, and a forged manifest (another repository) naming it
    let victim = tmp.path().join("elsewhere/vyos-shared.qcow2");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, b"someone else's file").unwrap();
    let original = manifest_of(&repo);
    let layout = original.parent().unwrap().strip_prefix(&repo).unwrap();
    let forged_repo = tmp.path().join("forged");
    let forged = forged_repo.join(layout).join("manifest.json");
    std::fs::create_dir_all(forged.parent().unwrap()).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&original).unwrap()).unwrap();
    m["files"][0]["storage_uri"] = format!("file://{}", victim.display()).into();
    std::fs::write(&forged, serde_json::to_vec(&m).unwrap()).unwrap();
    // and one whose second file climbs out with `..`
    let dotted = forged_repo
        .join("dotted")
        .join(layout)
        .join("manifest.json");
    std::fs::create_dir_all(dotted.parent().unwrap()).unwrap();
    let mut m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&original).unwrap()).unwrap();
    let uri = m2["files"][1]["storage_uri"].as_str().unwrap().to_owned();
    m2["files"][1]["storage_uri"] = uri
        .replace("/vyos-shared.raw.gz", "/../../../../x.raw.gz")
        .into();
    std::fs::write(&dotted, serde_json::to_vec(&m2).unwrap()).unwrap();

    let before = objects(&repo);
    for manifest in [&forged, &dotted] {
        let wd = Workdir::new(&config(&forged_repo, &marker, true, ""));
        let out = wd.run(&[
            "import",
            "-no-color",
            "-input=false",
            "hyops_vyos_image.img",
            &format!("file://{}", manifest.display()),
        ]);
        assert!(!out.status.success(), "{}", text(&out));
        let flat = flat(&out);
        assert!(flat.contains("Import refused"), "{flat}");
        assert!(flat.contains("outside the artifact's repository"), "{flat}");
        assert!(wd.state_list().is_empty());
    }
    assert!(victim.exists());
    assert_eq!(objects(&repo), before);
    assert!(
        !files_under(&forged_repo)
            .iter()
            .any(|p| p.to_string_lossy().contains("/refs/")),
        "a reference was claimed for a refused import"
    );
}

#[test]
fn retain_on_destroy_keeps_the_objects_and_removes_only_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let wd = Workdir::new(&config(&repo, &marker, true, "").replace(
        "    backend = \"file\"",
        "    backend = \"file\"\n    retain_on_destroy = true",
    ));
    apply_ok(&wd);
    let published = artifacts(&repo);
    assert_eq!(refs(&repo).len(), 1);
    destroy_ok(&wd);
    assert_eq!(artifacts(&repo), published);
    assert!(refs(&repo).is_empty(), "{:?}", refs(&repo));
}

/// The same two-configuration story against GCS (emulator stack): references are objects under
/// the artifact's `refs/`, counted by a prefix listing, deleted with `ifGenerationMatch`.
#[test]
fn gcs_two_configurations_share_an_artifact_until_the_last_one_is_destroyed() {
    let Some((s, _guard)) = crate::gcs::stack() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("builds");
    let prefix = "refs-test/";
    let mk = || {
        let mut wd = crate::gcs::workdir(s, "vyos-refs", prefix, &marker);
        wd.set_env("HYOPS_VYOS_GCS_SA_JSON", s.sa_json());
        wd
    };
    let (first, second) = (mk(), mk());
    apply_ok(&first);
    apply_ok(&second);
    let all = s.list(prefix);
    let refs: Vec<&String> = all.iter().filter(|n| n.contains("/refs/")).collect();
    assert_eq!(refs.len(), 2, "{all:?}");
    let published: Vec<String> = all
        .iter()
        .filter(|n| !n.contains("/refs/"))
        .cloned()
        .collect();
    assert_eq!(published.len(), 2, "qcow2 and manifest: {all:?}");

    destroy_ok(&first);
    let now = s.list(prefix);
    for o in &published {
        assert!(now.contains(o), "{o} deleted by the first destroy: {now:?}");
    }
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(second.plan_code().0, 0);

    destroy_ok(&second);
    assert!(s.list(prefix).is_empty(), "{:?}", s.list(prefix));
}

/// A state written by an older provider (schema version 0, no `reference_id`, plus attributes
/// this schema no longer has) plans cleanly under Terraform 1.0.3, is rewritten at version 1
/// without them, and — its artifact holding no reference, as before references existed — is
/// deleted by its destroy as the only known user.
#[test]
fn a_stored_v0_state_with_unknown_attributes_upgrades_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, marker) = (tmp.path().join("repo"), tmp.path().join("builds"));
    let wd = Workdir::new(&config(&repo, &marker, true, ""));
    apply_ok(&wd);
    let state_path = wd.path().join("terraform.tfstate");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let instance = &mut state["resources"][0]["instances"][0];
    assert_eq!(instance["schema_version"], 1);
    instance["schema_version"] = 0.into();
    let attrs = instance["attributes"].as_object_mut().unwrap();
    attrs.remove("reference_id");
    attrs.insert("attribute_of_an_older_provider".into(), "x".into());
    attrs["publish"]
        .as_object_mut()
        .unwrap()
        .insert("retired_knob".into(), true.into());
    state["serial"] = (state["serial"].as_u64().unwrap() + 1).into();
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    // an artifact from before references existed holds none
    for r in refs(&repo) {
        std::fs::remove_file(repo.join(r)).unwrap();
    }

    let (code, plan) = wd.plan_code();
    assert_eq!(code, 0, "{plan}");
    apply_ok(&wd);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let instance = &state["resources"][0]["instances"][0];
    assert_eq!(instance["schema_version"], 1, "{instance:#}");
    assert!(instance["attributes"]
        .get("attribute_of_an_older_provider")
        .is_none());
    assert!(instance["attributes"]["publish"]
        .get("retired_knob")
        .is_none());
    assert_eq!(
        instance["attributes"]["reference_id"],
        serde_json::Value::Null
    );
    assert_eq!(builds(&marker), 1);

    destroy_ok(&wd);
    assert!(objects(&repo).is_empty(), "{:?}", objects(&repo));
}
