//! `hyops_vyos_artifact` reads what `hyops_vyos_image` published — from the manifest and from the
//! HyOps state file written via `hyops_state_instance` — and a second configuration consumes it
//! through output references. File backend, bundled ISO.

use crate::harness::*;

#[test]
fn data_source_reads_the_published_artifact_from_manifest_and_hyops_state() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("runtime");
    let repo = tmp.path().join("repo");
    let marker = tmp.path().join("builds");
    let producer = Workdir::new(&format!(
        r#"
provider "hyops" {{
  runtime_root = "{runtime}"
}}

resource "hyops_vyos_image" "edge" {{
  artifact_key         = "vyos-edge"
  source_iso_url       = "{iso}"
  source_iso_sha256    = "{SHA}"
  hyops_state_instance = "edge_build"

  build {{
    method  = "command"
    command = {command}
  }}

  publish {{
    backend = "file"
    bucket  = "{repo}"
    prefix  = "images/"
  }}
}}

output "image" {{
  value     = hyops_vyos_image.edge
  sensitive = true
}}
"#,
        runtime = runtime.display(),
        repo = repo.display(),
        iso = fixture_iso_url(),
        command = serde_json::to_string(&counting_builder(&marker)).unwrap(),
    ));
    producer.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let img = producer.outputs()["image"]["value"].clone();
    let manifest_url = img["manifest_url"].as_str().unwrap().to_owned();
    assert!(manifest_url.starts_with("file://"), "{manifest_url}");
    let state_file =
        runtime.join("state/modules/core__shared__vyos-image-build/instances/edge_build.json");
    assert!(state_file.exists(), "HyOps state not written");

    let consumer = Workdir::new(&format!(
        r#"
provider "hyops" {{
  runtime_root = "{runtime}"
}}

data "hyops_vyos_artifact" "by_manifest" {{
  manifest_url = "{manifest_url}"
}}

data "hyops_vyos_artifact" "by_state" {{
  artifact_state_ref = "core/shared/vyos-image-build#edge_build"
  artifact_key       = "vyos-edge"
}}

locals {{
  # what a downstream resource (e.g. a Proxmox download_file) would take
  download = {{
    url                = data.hyops_vyos_artifact.by_state.artifact_url
    checksum           = data.hyops_vyos_artifact.by_state.artifact_sha256
    checksum_algorithm = "sha256"
  }}
}}

output "manifest" {{
  value = data.hyops_vyos_artifact.by_manifest
}}

output "state" {{
  value = data.hyops_vyos_artifact.by_state
}}

output "download" {{
  value = local.download
}}
"#,
        runtime = runtime.display(),
    ));
    consumer.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = consumer.outputs();
    for source in ["manifest", "state"] {
        let v = &out[source]["value"];
        for attr in [
            "artifact_url",
            "artifact_storage_uri",
            "artifact_sha256",
            "artifact_size_bytes",
            "manifest_url",
            "build_id",
            "vyos_version",
            "source_iso_sha256",
        ] {
            assert_eq!(v[attr], img[attr], "{source}.{attr}: {v:#}");
        }
        assert_eq!(v["published"], true);
    }
    assert_eq!(out["download"]["value"]["url"], img["artifact_url"]);
    assert_eq!(out["download"]["value"]["checksum"], img["artifact_sha256"]);
    assert_eq!(builds(&marker), 1, "reading ran no build");

    // verify = true (the default) refuses an artifact whose object is gone
    let object = url::Url::parse(img["artifact_storage_uri"].as_str().unwrap())
        .unwrap()
        .to_file_path()
        .unwrap();
    std::fs::remove_file(&object).unwrap();
    let refreshed = consumer.run(&["plan", "-no-color", "-input=false"]);
    assert!(!refreshed.status.success(), "{}", text(&refreshed));
    assert!(
        text(&refreshed).contains("missing or changed"),
        "{}",
        text(&refreshed)
    );
}

/// A state written by the HyOps module itself (top-level outputs, no `artifacts` map, a local
/// artifact): read with `verify` checking the local file; a state whose status is not `ok` is refused.
#[test]
fn data_source_reads_top_level_hyops_outputs_and_refuses_a_failed_state() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("runtime");
    let artifact = tmp.path().join("vyos-default.qcow2");
    std::fs::write(&artifact, vec![7u8; 4096]).unwrap();
    let sha = sha256_hex(&[7u8; 4096]);
    let dir = runtime.join("state/modules/core__shared__vyos-image-build/instances");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |status: &str| {
        std::fs::write(
            dir.join("vyos_default_build.json"),
            serde_json::json!({
                "status": status,
                "outputs": {
                    "artifact_key": "vyos-default",
                    "artifact_format": "qcow2",
                    "artifact_version": "1.5",
                    "artifact_url": format!("file://{}", artifact.display()),
                    "artifact_storage_uri": format!("file://{}", artifact.display()),
                    "artifact_local_path": artifact.display().to_string(),
                    "artifact_sha256": sha,
                    "artifact_size_bytes": 4096,
                    "source_iso_url": "https://example.com/vyos.iso",
                    "source_iso_sha256": SHA,
                    "build_id": "hyops-build-1",
                    "published": false
                }
            })
            .to_string(),
        )
        .unwrap();
    };
    write("ok");
    let wd = Workdir::new(&format!(
        r#"
provider "hyops" {{
  runtime_root = "{runtime}"
}}

data "hyops_vyos_artifact" "edge" {{
  artifact_state_ref = "core/shared/vyos-image-build#vyos_default_build"
  artifact_key       = "vyos-default"
}}

output "artifact" {{
  value = data.hyops_vyos_artifact.edge
}}
"#,
        runtime = runtime.display()
    ));
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let v = &wd.outputs()["artifact"]["value"];
    assert_eq!(v["artifact_sha256"], sha.as_str());
    assert_eq!(v["artifact_size_bytes"], 4096);
    assert_eq!(v["build_id"], "hyops-build-1");
    assert_eq!(v["published"], false);

    // verify: the local file changed size
    std::fs::write(&artifact, b"short").unwrap();
    let out = wd.run(&["plan", "-no-color", "-input=false"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("missing or changed"), "{}", text(&out));

    write("failed");
    let out = wd.run(&["plan", "-no-color", "-input=false"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("\"failed\""), "{all}");
    assert!(all.contains("artifact_state_ref"), "{all}");
}
