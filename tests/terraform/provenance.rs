//! Issue #12 part 4 under real Terraform: a `source_iso_url` with user info and a signed query
//! string is used for the download, but only its provenance form (no user info, no query)
//! reaches the contract attributes in state, the manifest, a child's environment and the TRACE
//! log. Terraform itself keeps the configured argument as written (the provider cannot change a
//! configured value), and validate/plan warn about it. Import from that manifest adopts the
//! configured URL in place.

use std::path::Path;

use crate::harness::*;

#[path = "../common/http_file.rs"]
mod http_file;

const MARKERS: &[&str] = &[
    "isouser-4a0c",
    "isopass-b7e5",
    "isocred-19f2",
    "isosig-c3d8",
];

fn config(url: &str, repo: &Path, dump: &Path) -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "img" {{
  artifact_key      = "vyos-prov"
  source_iso_url    = "{url}"
  source_iso_sha256 = "{sha}"

  build {{
    method  = "command"
    command = {command}
  }}

  publish {{
    backend = "file"
    bucket  = "{repo}"
  }}
}}
"#,
        sha = sha256_hex(&std::fs::read(fixture_iso()).unwrap()),
        command = serde_json::to_string(&format!(
            "env -0 > '{}'; qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" && qemu-img resize -q \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G",
            dump.display()
        ))
        .unwrap(),
        repo = repo.display()
    )
}

fn assert_clean(what: &str, text: &str) {
    for m in MARKERS {
        assert!(!text.contains(m), "{what} holds {m}");
    }
}

#[test]
fn source_url_credentials_stay_out_of_contract_manifest_children_and_trace_log() {
    let server = http_file::HttpFile::serve(std::fs::read(fixture_iso()).unwrap());
    let port = server.addr.port();
    let url = format!(
        "http://isouser-4a0c:isopass-b7e5@127.0.0.1:{port}/vyos/fixture.iso\
         ?X-Goog-Credential=isocred-19f2&X-Goog-Signature=isosig-c3d8"
    );
    let provenance = format!("http://127.0.0.1:{port}/vyos/fixture.iso");
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let dump = tmp.path().join("env.build");
    let trace = tmp.path().join("trace.log");
    let mut wd = Workdir::new(&config(&url, &repo, &dump));
    wd.set_env("TF_LOG", "TRACE");
    wd.set_env("TF_LOG_PATH", trace.display().to_string());

    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2);
    assert!(
        plan.contains("source_iso_url carries credentials"),
        "{plan}"
    );
    wd.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert!(
        server
            .heads()
            .iter()
            .any(|h| h.contains("X-Goog-Signature=isosig-c3d8")
                && h.to_ascii_lowercase().contains("authorization: basic")),
        "the download did not use the full URL: {:?}",
        server.heads()
    );

    // State: the configured argument as written (Terraform's), every contract attribute clean.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.path().join("terraform.tfstate")).unwrap())
            .unwrap();
    let mut attrs = state["resources"][0]["instances"][0]["attributes"].clone();
    assert_eq!(attrs["source_iso_url"], url.as_str());
    for entry in attrs["artifacts"].as_object().unwrap().values() {
        assert_eq!(entry["source_iso_url"], provenance.as_str());
    }
    let contract: serde_json::Value =
        serde_json::from_str(attrs["contract_json"].as_str().unwrap()).unwrap();
    assert_eq!(contract["source_iso_url"], provenance.as_str());
    attrs["source_iso_url"] = serde_json::Value::Null;
    assert_clean("a contract attribute in state", &attrs.to_string());

    // The manifest, the builder's environment, the TRACE log (Terraform's and the provider's).
    let manifests: Vec<_> = files_under(&repo)
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1);
    let manifest = std::fs::read_to_string(&manifests[0]).unwrap();
    assert!(manifest.contains(&provenance), "{manifest}");
    assert_clean("the manifest", &manifest);
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        env.split('\0')
            .any(|kv| kv == format!("HYOPS_VYOS_SOURCE_ISO_URL={provenance}")),
        "{env}"
    );
    assert_clean("the builder's environment", &env);
    let log = std::fs::read_to_string(&trace).unwrap();
    let provider_lines = log
        .lines()
        .filter(|l| l.contains("provider.terraform-provider-hyops"))
        .count();
    assert!(
        provider_lines > 10,
        "the provider's lines are not in the TRACE log"
    );
    assert!(
        log.contains(&format!("http://***@127.0.0.1:{port}/vyos/fixture.iso?***")),
        "the download is not logged in its redacted form"
    );
    assert_clean("the TRACE log", &log);

    // Import from the manifest: the recorded provenance URL and the configured URL with
    // credentials name the same source, so the first plan adopts in place (no replacement).
    wd.ok(&["state", "rm", "-no-color", "hyops_vyos_image.img"]);
    wd.ok(&[
        "import",
        "-no-color",
        "-input=false",
        "hyops_vyos_image.img",
        &format!("file://{}", manifests[0].display()),
    ]);
    let (code, plan) = wd.plan_code();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
}
