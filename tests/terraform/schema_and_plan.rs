//! Schema, validation, plan and release packaging through real Terraform (no build runs).

use std::path::Path;
use std::process::Command;

use crate::harness::*;

fn good_resource() -> String {
    format!(
        r#"
provider "hyops" {{}}

resource "hyops_vyos_image" "edge" {{
  artifact_key      = "vyos-edge"
  source_iso_url    = "https://example.invalid/vyos.iso"
  source_iso_sha256 = "{SHA}"
  additional_formats = ["raw.xz"]

  build {{
    method  = "command"
    command = "qemu-img create -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G"
  }}

  publish {{
    backend = "file"
    bucket  = "/tmp/hyops-objects"
    prefix  = "images/"
  }}

  timeouts {{
    create = "1h30m"
  }}
}}

output "url" {{
  value = hyops_vyos_image.edge.artifact_url
}}
"#
    )
}

#[test]
fn providers_schema_json_shows_resource_and_data_source() {
    let wd = Workdir::new(&good_resource());
    let out = wd.run(&["providers", "schema", "-json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema json");
    let p = &v["provider_schemas"][SOURCE];
    let res = &p["resource_schemas"]["hyops_vyos_image"]["block"];
    for attr in [
        "artifact_key",
        "artifact_format",
        "additional_formats",
        "artifact_version",
        "source_iso_url",
        "source_iso_mirror_url",
        "source_iso_sha256",
        "artifact_local_path",
        "rebuild_if_exists",
        "hyops_state_instance",
        "notes",
        "artifact_url",
        "artifact_storage_uri",
        "artifact_sha256",
        "artifact_size_bytes",
        "artifact_virtual_size_bytes",
        "vyos_version",
        "build_id",
        "built_at",
        "published",
        "published_at",
        "remote_checksum",
        "remote_generation",
        "manifest_url",
        "artifacts",
        "contract_json",
    ] {
        let a = &res["attributes"][attr];
        assert!(a.is_object(), "resource attribute {attr} missing");
        assert!(
            a["description"].as_str().is_some_and(|d| !d.is_empty()),
            "resource attribute {attr} has no description"
        );
    }
    for block in ["build", "smoke_verify", "publish", "timeouts"] {
        assert!(
            res["block_types"][block].is_object(),
            "resource block {block} missing"
        );
    }
    assert_eq!(
        res["block_types"]["build"]["block"]["attributes"]["method"]["type"],
        "string"
    );
    assert!(
        p["data_source_schemas"]["hyops_vyos_artifact"]["block"]["attributes"]["manifest_url"]
            .is_object()
    );
    assert_eq!(
        p["provider"]["block"]["attributes"]["gcs_credentials"]["sensitive"],
        true
    );
    assert_docs_cover(&p["provider"]["block"], "docs/index.md");
    assert_docs_cover(res, "docs/resources/vyos_image.md");
    assert_docs_cover(
        &p["data_source_schemas"]["hyops_vyos_artifact"]["block"],
        "docs/data-sources/vyos_artifact.md",
    );
}

/// Every attribute and nested block of a schema block is mentioned (as `name`) in its docs page.
fn assert_docs_cover(block: &serde_json::Value, doc: &str) {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    let mut missing = Vec::new();
    let mut stack = vec![block];
    while let Some(b) = stack.pop() {
        for key in ["attributes", "block_types"] {
            if let Some(m) = b[key].as_object() {
                for (name, v) in m {
                    if !page.contains(&format!("`{name}`")) {
                        missing.push(name.clone());
                    }
                    if key == "block_types" {
                        stack.push(&v["block"]);
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{doc} does not document: {missing:?}");
}

#[test]
fn validate_accepts_a_good_configuration() {
    let wd = Workdir::new(&good_resource());
    let out = wd.run(&["validate", "-no-color"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Each bad configuration fails `terraform validate` with a message that names the attribute.
#[test]
fn validate_rejects_bad_configurations_naming_the_attribute() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"artifact_key      = "vyos-edge""#,
            r#"artifact_key      = "Bad Key!""#,
            "artifact_key",
        ),
        (
            &format!(r#"source_iso_sha256 = "{SHA}""#),
            r#"source_iso_sha256 = "abc123""#,
            "source_iso_sha256",
        ),
        (
            r#"source_iso_url    = "https://example.invalid/vyos.iso""#,
            r#"source_iso_url    = "ftp://example.invalid/vyos.iso""#,
            "source_iso_url",
        ),
        (r#"method  = "command""#, r#"method  = "ansible""#, "method"),
        (r#"backend = "file""#, r#"backend = "dropbox""#, "backend"),
        (
            r#"create = "1h30m""#,
            r#"create = "ninety minutes""#,
            "create",
        ),
        (
            r#"additional_formats = ["raw.xz"]"#,
            r#"additional_formats = ["raw.bz2"]"#,
            "additional_formats",
        ),
        (
            r#"prefix  = "images/""#,
            r#"prefix  = "../escape/""#,
            "prefix",
        ),
    ];
    let base = good_resource();
    let wd = Workdir::new(&base);
    for (from, to, attr) in cases {
        assert!(base.contains(from), "test case does not apply: {from}");
        std::fs::write(
            wd.dir.path().join("main.tf"),
            format!(
                "terraform {{\n  required_providers {{\n    hyops = {{\n      source  = \"{SOURCE}\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n{}",
                base.replace(from, to)
            ),
        )
        .expect("write main.tf");
        let out = wd.run(&["validate", "-no-color"]);
        let all = text(&out);
        assert!(!out.status.success(), "expected failure for {to}:\n{all}");
        // Terraform prints the offending source line for a diagnostic with an attribute path.
        assert!(
            all.contains(to.trim()),
            "diagnostic for {attr} does not point at the attribute:\n{all}"
        );
        assert!(
            all.contains(attr),
            "diagnostic does not name {attr}:\n{all}"
        );
    }
}

/// Version-specific. A client without write-only support (Terraform < 1.11, e.g. the pinned
/// 1.0.3) gets a configured `gcs_credentials_wo` refused at that attribute with a pointer to what
/// works instead; a client with it (Terraform ≥ 1.11) validates the same configuration. Either
/// way the value is never echoed by the provider.
#[test]
fn write_only_credential_is_refused_only_by_a_client_without_write_only_support() {
    let secret = "WRITE-ONLY-SECRET-6f1c";
    let config = good_resource().replace(
        r#"  artifact_key      = "vyos-edge""#,
        &format!("  artifact_key      = \"vyos-edge\"\n  gcs_credentials_wo = \"{secret}\""),
    );
    assert!(config.contains("gcs_credentials_wo"));
    let wd = Workdir::new(&config);
    let out = wd.run(&["validate", "-no-color"]);
    let all = text(&out);
    // The source line is quoted by Terraform itself; our own message must not repeat the value.
    let ours = all.replace(&format!("gcs_credentials_wo = \"{secret}\""), "");
    assert!(
        !ours.contains(secret),
        "diagnostic echoes the credential:\n{all}"
    );
    if client().supports_write_only() {
        assert!(out.status.success(), "{}: {all}", client().label());
        return;
    }
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("gcs_credentials_wo"), "{all}");
    assert!(all.contains("HYOPS_VYOS_GCS_SA_JSON"), "{all}");
}

#[test]
fn plan_shows_computed_attributes_as_known_after_apply() {
    let wd = Workdir::new(&good_resource());
    let out = wd.run(&["plan", "-no-color", "-input=false"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for attr in [
        "artifact_sha256",
        "artifact_url",
        "manifest_url",
        "build_id",
        "published",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("+ {attr} ")))
            .unwrap_or_else(|| panic!("{attr} not in plan:\n{stdout}"));
        assert!(
            line.contains("(known after apply)"),
            "{attr} should be known after apply: {line}"
        );
    }
    assert!(stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."));
}

/// `scripts/release.sh` packages the binary as registry zips with checksums and a packed mirror from
/// which Terraform installs the provider.
#[test]
fn release_packaging_produces_an_installable_packed_mirror() {
    let out = tempfile::tempdir().expect("tempdir");
    let dist = out.path().join("dist");
    let status = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_terraform-provider-hyops"))
        .arg("--out")
        .arg(&dist)
        .status()
        .expect("run release.sh");
    assert!(status.success());
    let platform = format!("{}_{}", std::env::consts::OS, go_arch());
    let zip = format!("terraform-provider-hyops_{VERSION}_{platform}.zip");
    let sums = std::fs::read_to_string(
        dist.join(format!("terraform-provider-hyops_{VERSION}_SHA256SUMS")),
    )
    .expect("SHA256SUMS");
    assert!(sums.contains(&zip), "{sums}");
    assert!(sums.contains(&format!("terraform-provider-hyops_{VERSION}_manifest.json")));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dist.join(format!("terraform-provider-hyops_{VERSION}_manifest.json")))
            .expect("manifest"),
    )
    .expect("manifest json");
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["5.0"])
    );

    let cfg = out.path().join("terraformrc");
    std::fs::write(
        &cfg,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"{SOURCE}\"]\n  }}\n}}\n",
            dist.join("mirror")
        ),
    )
    .expect("cli config");
    // init (inside with_cli_config) installs from the packed zip; validate then runs the provider.
    let wd = Workdir::with_cli_config(&good_resource(), &cfg);
    let lock = std::fs::read_to_string(wd.dir.path().join(".terraform.lock.hcl")).expect("lock");
    assert!(lock.contains(SOURCE), "{lock}");
    let v = wd.run(&["validate", "-no-color"]);
    assert!(v.status.success(), "{}", text(&v));
}
