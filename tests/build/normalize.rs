//! `build.normalize` end to end with the command builder and real qemu-img: `auto` keeps a builder
//! output that already is the requested format and converts one that is not; `always` and
//! `compress` re-encode deterministically.

use super::*;
use hyops::engine::spec::{ArtifactFormat, NormalizeMode};

/// A builder that writes a qcow2 of the ISO (uncompressed, grown to 1 GiB) and keeps a copy of
/// exactly what it wrote at `copy`.
fn qcow2_builder(copy: &Path) -> String {
    format!(
        "qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" \
         && qemu-img resize -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G \
         && cp \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" {}",
        copy.display()
    )
}

fn qemu_img(args: &[&str]) -> std::process::Output {
    std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs")
}

fn info_json(path: &Path) -> serde_json::Value {
    let out = qemu_img(&["info", "--output=json", &path.display().to_string()]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_hands_a_qcow2_builder_output_through_byte_identical() {
    init();
    let f = create_fixture();
    let copy = f.path("builder-wrote.qcow2");
    let spec = f.spec(&qcow2_builder(&copy));
    assert_eq!(spec.build.normalize, None, "auto is the default");
    let out = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    let c = &out.contract;
    assert_eq!(c.artifact_sha256, sha256_file(&copy));
    let local = PathBuf::from(&c.artifact_local_path);
    assert_eq!(
        std::fs::read(&local).unwrap(),
        std::fs::read(&copy).unwrap()
    );
    assert_eq!(
        c.artifact_size_bytes,
        std::fs::metadata(&copy).unwrap().len()
    );
    let n = c.normalization.as_ref().expect("normalization recorded");
    assert_eq!(
        (n.mode.as_str(), n.action.as_str(), n.source_format.as_str()),
        ("auto", "kept", "qcow2")
    );
    assert_eq!(n.compression_type, "");
    // The cache hit reports the same record.
    let again = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.contract.normalization, c.normalization);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_converts_a_raw_builder_output_when_qcow2_is_asked() {
    init();
    let f = create_fixture();
    let copy = f.path("builder-wrote.raw");
    // Raw bytes under the .qcow2 name the build contract gives the builder.
    let command = format!(
        "qemu-img create -q -f raw \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G \
         && dd if=\"$HYOPS_VYOS_SOURCE_ISO_PATH\" of=\"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" \
            bs=64k seek=3 conv=notrunc status=none \
         && cp \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" {}",
        copy.display()
    );
    let spec = f.spec(&command);
    assert_eq!(spec.artifact_format, ArtifactFormat::Qcow2);
    let out = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap();
    let c = &out.contract;
    let local = PathBuf::from(&c.artifact_local_path);
    assert_eq!(info_json(&local)["format"], "qcow2");
    assert_ne!(c.artifact_sha256, sha256_file(&copy));
    assert_eq!(sha256_file(&local), c.artifact_sha256);
    let n = c.normalization.as_ref().expect("normalization recorded");
    assert_eq!(
        (n.mode.as_str(), n.action.as_str(), n.source_format.as_str()),
        ("auto", "converted", "raw")
    );
    // Same guest-visible content.
    let cmp = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        &copy.display().to_string(),
        &local.display().to_string(),
    ]);
    assert!(cmp.status.success(), "{cmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_flattens_a_qcow2_with_a_backing_file() {
    init();
    let f = create_fixture();
    let base = f.path("base.qcow2");
    let command = format!(
        "qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" {b} \
         && qemu-img resize -q -f qcow2 {b} 1G \
         && qemu-img create -q -f qcow2 -F qcow2 -b {b} \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\"",
        b = base.display()
    );
    let out = create(
        &f.spec(&command),
        &f.env(),
        CancellationToken::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    let local = PathBuf::from(&out.contract.artifact_local_path);
    let info = info_json(&local);
    assert!(info.get("backing-filename").is_none(), "{info}");
    assert_eq!(
        out.contract
            .normalization
            .as_ref()
            .map(|n| n.action.as_str()),
        Some("converted")
    );
    let cmp = qemu_img(&[
        "compare",
        &base.display().to_string(),
        &local.display().to_string(),
    ]);
    assert!(cmp.status.success(), "{cmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_and_compress_give_the_same_bytes_on_two_runs() {
    init();
    let f = create_fixture();
    let copy = f.path("builder-wrote.qcow2");
    let zstd = qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "compression_type=zstd",
        &f.path("probe.qcow2").display().to_string(),
        "1M",
    ])
    .status
    .success();
    for (mode, action, compression) in [
        (NormalizeMode::Always, "reencoded", "zlib"),
        (
            NormalizeMode::Compress,
            "compressed",
            if zstd { "zstd" } else { "zlib" },
        ),
    ] {
        let mut spec = f.spec(&qcow2_builder(&copy));
        spec.build.normalize = Some(mode);
        spec.rebuild_if_exists = true;
        let mut shas = Vec::new();
        for _ in 0..2 {
            let out = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
                .await
                .unwrap();
            let c = out.contract;
            let local = PathBuf::from(&c.artifact_local_path);
            assert_eq!(sha256_file(&local), c.artifact_sha256);
            let n = c.normalization.expect("normalization recorded");
            assert_eq!(
                (n.action.as_str(), n.compression_type.as_str()),
                (action, compression),
                "{mode:?}"
            );
            let info = info_json(&local);
            assert_eq!(
                info["format-specific"]["data"]["compression-type"], compression,
                "{info}"
            );
            // Re-encoded (compressed), not the builder's bytes; same guest content.
            assert_ne!(c.artifact_sha256, sha256_file(&copy), "{mode:?}");
            let cmp = qemu_img(&[
                "compare",
                &copy.display().to_string(),
                &local.display().to_string(),
            ]);
            assert!(cmp.status.success(), "{cmp:?}");
            shas.push(c.artifact_sha256);
        }
        assert_eq!(shas[0], shas[1], "{mode:?} is not deterministic");
    }
}

#[tokio::test]
async fn compress_with_a_raw_primary_is_refused_at_build_normalize() {
    init();
    let f = create_fixture();
    let mut spec = f.spec("true");
    spec.artifact_format = ArtifactFormat::Raw;
    spec.build.normalize = Some(NormalizeMode::Compress);
    let err = create(&spec, &f.env(), CancellationToken::new(), &NoProgress)
        .await
        .unwrap_err();
    match err {
        EngineError::Invalid(problems) => {
            assert!(
                problems.iter().any(|p| p.path == "build.normalize"),
                "{problems:?}"
            );
        }
        other => panic!("expected a validation error, got {other}"),
    }
}
