//! Artifact normalization and hashing against the real `qemu-img`, `sha256sum`, `md5sum`, `xz`,
//! `zstd` and `gzip`.

use std::path::{Path, PathBuf};

use hyops::engine::artifact::{self, ArtifactError, ArtifactFile, NormalizeRequest};
use hyops::engine::hash::{hash_file, sha_ni_available};
use hyops::engine::spec::{ArtifactFormat, ExtraFormat, NormalizeMode};
use tokio_util::sync::CancellationToken;

use crate::fixtures::{self, fixtures, sh};
use crate::{bounded, mode};

// ---------------------------------------------------------------- hashing

#[test]
fn hash_file_matches_coreutils() {
    let fx = fixtures();
    let d = hash_file(&fx.iso.path, true, &CancellationToken::new()).unwrap();
    let path = fx.iso.path.display();
    assert_eq!(d.sha256, sh(&format!("sha256sum '{path}' | cut -d' ' -f1")));
    assert_eq!(
        d.md5.as_deref().unwrap(),
        sh(&format!("md5sum '{path}' | cut -d' ' -f1"))
    );
    assert_eq!(d.size, fx.iso.bytes.len() as u64);
    // Informational: which SHA-256 backend this CPU gets.
    eprintln!("sha_ni_available = {}", sha_ni_available());
}

// ---------------------------------------------------------------- artifact normalization

/// A 32 MiB raw disk with recognizable data at a few offsets (the rest sparse).
fn make_raw_disk(dir: &Path) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("disk.raw");
    sh(&format!(
        "qemu-img create -q -f raw '{}' 32M",
        path.display()
    ));
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for (offset, len) in [
        (0u64, 4096usize),
        (1 << 20, 300_000),
        (20 << 20, 1 << 20),
        ((32 << 20) - 512, 512),
    ] {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&fixtures::filler(len)).unwrap();
    }
    path
}

/// `artifact::normalize` with a gate that passed and the input format left to it.
#[allow(clippy::too_many_arguments)]
async fn normalize(
    input: &Path,
    format: ArtifactFormat,
    extras: &[ExtraFormat],
    out_dir: &Path,
    artifact_key: &str,
    want_md5: bool,
    mode: NormalizeMode,
    cancel: &CancellationToken,
) -> Result<Vec<ArtifactFile>, ArtifactError> {
    let req = NormalizeRequest {
        input,
        input_format: None,
        gate_passed: true,
        format,
        extras,
        mode,
        out_dir,
        artifact_key,
        want_md5,
    };
    artifact::normalize(&req, cancel).await.map(|n| n.files)
}

fn shell_sha256(path: &Path) -> String {
    sh(&format!("sha256sum '{}' | cut -d' ' -f1", path.display()))
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_produces_every_format_with_correct_digests() {
    bounded(async {
        let work = tempfile::tempdir().unwrap();
        let raw = make_raw_disk(work.path());
        let raw_sha = shell_sha256(&raw);
        let out = work.path().join("out");
        let extras = [
            ExtraFormat::RawXz,
            ExtraFormat::RawZst,
            ExtraFormat::RawGz,
            ExtraFormat::Qcow2,
        ];
        let files = normalize(
            &raw,
            ArtifactFormat::Qcow2,
            &extras,
            &out,
            "vyos-test",
            true,
            NormalizeMode::Always,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let formats: Vec<&str> = files.iter().map(|f| f.format.as_str()).collect();
        assert_eq!(
            formats,
            vec!["qcow2", "raw.xz", "raw.zst", "raw.gz"],
            "qcow2 extra equals the primary"
        );
        assert_eq!(
            dir_names(&out),
            vec![
                "vyos-test.qcow2",
                "vyos-test.raw.gz",
                "vyos-test.raw.xz",
                "vyos-test.raw.zst"
            ],
            "no temp files remain"
        );
        for f in &files {
            assert_eq!(f.sha256, shell_sha256(&f.path), "{}", f.format);
            assert_eq!(
                f.md5.as_deref().unwrap(),
                sh(&format!("md5sum '{}' | cut -d' ' -f1", f.path.display())),
                "{}",
                f.format
            );
            assert_eq!(f.size, std::fs::metadata(&f.path).unwrap().len());
            assert_eq!(f.virtual_size, 32 << 20, "{}", f.format);
            assert_eq!(f.crc32c, crc32c::crc32c(&std::fs::read(&f.path).unwrap()));
            assert_eq!(mode(&f.path), 0o644);
        }
        let qcow2 = &files[0];
        assert_eq!(qcow2.compression, None);
        let info: serde_json::Value = serde_json::from_str(&sh(&format!(
            "qemu-img info --output=json '{}'",
            qcow2.path.display()
        )))
        .unwrap();
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], 32 << 20);
        sh(&format!(
            "qemu-img compare -q -f raw -F qcow2 '{}' '{}'",
            raw.display(),
            qcow2.path.display()
        ));
        for (f, tool, compression) in [
            (&files[1], "xz", "xz"),
            (&files[2], "zstd", "zstd"),
            (&files[3], "gzip", "gzip"),
        ] {
            assert_eq!(f.compression.as_deref(), Some(compression));
            let round_trip = sh(&format!(
                "{tool} -dc '{}' | sha256sum | cut -d' ' -f1",
                f.path.display()
            ));
            assert_eq!(round_trip, raw_sha, "{tool} decompresses to the raw disk");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_raw_and_img_primaries_keep_the_bytes() {
    bounded(async {
        let work = tempfile::tempdir().unwrap();
        let raw = make_raw_disk(work.path());
        let raw_sha = shell_sha256(&raw);
        // A qcow2 input converted back to raw gives the same disk bytes.
        let input = work.path().join("in.qcow2");
        sh(&format!(
            "qemu-img convert -f raw -O qcow2 '{}' '{}'",
            raw.display(),
            input.display()
        ));
        let out = work.path().join("out");
        let cancel = CancellationToken::new();
        let files = normalize(
            &input,
            ArtifactFormat::Raw,
            &[ExtraFormat::Qcow2, ExtraFormat::RawZst],
            &out,
            "k1",
            false,
            NormalizeMode::Auto,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(files[0].format, "raw");
        assert_eq!(files[0].sha256, raw_sha);
        assert_eq!(files[0].md5, None);
        assert_eq!(files[1].format, "qcow2");
        assert_eq!(files[2].format, "raw.zst");
        let info: serde_json::Value = serde_json::from_str(&sh(&format!(
            "qemu-img info --output=json '{}'",
            files[1].path.display()
        )))
        .unwrap();
        assert_eq!(info["format"], "qcow2");
        let round_trip = sh(&format!(
            "zstd -dc '{}' | sha256sum | cut -d' ' -f1",
            files[2].path.display()
        ));
        assert_eq!(round_trip, raw_sha);

        let img = normalize(
            &raw,
            ArtifactFormat::Img,
            &[],
            &out,
            "k2",
            false,
            NormalizeMode::Auto,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(img.len(), 1);
        assert_eq!(img[0].path, out.join("k2.img"));
        assert_eq!(img[0].sha256, raw_sha);
        assert_eq!(img[0].sha256, shell_sha256(&img[0].path));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_failures_and_cancellation_leave_nothing_behind() {
    bounded(async {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("out");
        let not_an_image = work.path().join("missing.raw");
        let err = normalize(
            &not_an_image,
            ArtifactFormat::Qcow2,
            &[],
            &out,
            "k1",
            false,
            NormalizeMode::Auto,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        match &err {
            ArtifactError::Tool { stderr_tail, .. } => assert!(!stderr_tail.is_empty(), "{err}"),
            other => panic!("expected a qemu-img failure, got {other:?}"),
        }
        assert!(dir_names(&out).is_empty());

        let raw = make_raw_disk(work.path());
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = normalize(
            &raw,
            ArtifactFormat::Qcow2,
            &[ExtraFormat::RawXz],
            &out,
            "k1",
            false,
            NormalizeMode::Auto,
            &cancel,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ArtifactError::Cancelled), "{err:?}");
        assert!(dir_names(&out).is_empty(), "{:?}", dir_names(&out));

        let err = normalize(
            &raw,
            ArtifactFormat::Qcow2,
            &[],
            &out,
            "../escape",
            false,
            NormalizeMode::Auto,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ArtifactError::Invalid(_)), "{err:?}");
    })
    .await
}
