//! Fixture ISOs built once per test run with the real `xorriso`, plus TLS material and tool helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

pub const VERSION_JSON: &str = r#"{
  "version": "1.5-rolling-202411250007",
  "flavor": "generic",
  "architecture": "amd64",
  "build_uuid": "4f1c2b7e-0d7a-4c55-9d0e-0a1b2c3d4e5f",
  "build_git": "0123456789abcdef0123456789abcdef01234567",
  "build_branch": "current",
  "release_train": "current",
  "lts_build": false,
  "built_on": "Mon 25 Nov 2024 00:07 UTC"
}"#;

pub struct Iso {
    pub path: PathBuf,
    pub bytes: Arc<Vec<u8>>,
    pub sha256: String,
}

pub struct Fixtures {
    /// VyOS-like: Rock Ridge + Joliet, version.json + 3 MiB filler
    pub iso: Iso,
    /// filler only, no version.json
    pub no_version: Iso,
    /// variants for the version reader: (label, path, expect version found)
    pub variants: Vec<(&'static str, PathBuf, bool)>,
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

pub fn fixtures() -> &'static Fixtures {
    FIXTURES.get_or_init(build)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn build() -> Fixtures {
    let ok = Command::new("xorriso")
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "xorriso is required to build the fixture ISOs: apt-get install -y xorriso"
    );
    // Rebuilt every run in one fixed place (no accumulation across runs).
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("iso-fixtures");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    let with = root.join("tree-with");
    std::fs::create_dir_all(with.join("live")).unwrap();
    std::fs::write(with.join("version.json"), VERSION_JSON).unwrap();
    std::fs::write(
        with.join("live").join("filesystem.squashfs"),
        filler(3 << 20),
    )
    .unwrap();
    let without = root.join("tree-without");
    std::fs::create_dir_all(without.join("live")).unwrap();
    std::fs::write(
        without.join("live").join("filesystem.squashfs"),
        filler(1 << 20),
    )
    .unwrap();
    let small = root.join("tree-small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("version.json"), VERSION_JSON).unwrap();
    std::fs::write(small.join("README.TXT"), b"fixture\n").unwrap();

    let iso = xorriso(&with, &root.join("vyos.iso"), &["-R", "-J"]);
    let no_version = xorriso(&without, &root.join("no-version.iso"), &["-R", "-J"]);
    let variants = vec![
        // plain ISO 9660 names long enough for VERSION.JSON, no extensions
        (
            "plain_long_names",
            xorriso(&small, &root.join("plain.iso"), &["-l"]).path,
            true,
        ),
        // 8.3 ISO names (VERSION.JSO): only the Joliet tree has the real name
        (
            "joliet_only",
            xorriso(&small, &root.join("joliet.iso"), &["-J"]).path,
            true,
        ),
        // 8.3 ISO names: only the Rock Ridge NM entry has the real name
        (
            "rock_ridge_only",
            xorriso(&small, &root.join("rr.iso"), &["-R"]).path,
            true,
        ),
        // 8.3 names and no extension: nothing says version.json
        (
            "level1_no_extensions",
            xorriso(&small, &root.join("l1.iso"), &[]).path,
            false,
        ),
    ];
    Fixtures {
        iso,
        no_version,
        variants,
    }
}

fn xorriso(tree: &Path, out: &Path, flags: &[&str]) -> Iso {
    // xorriso writes Rock Ridge even in mkisofs mode unless told otherwise.
    let rock_ridge = if flags.contains(&"-R") { "on" } else { "off" };
    let output = Command::new("xorriso")
        .args(["-rockridge", rock_ridge])
        .args(["-as", "mkisofs", "-quiet", "-V", "VYOS_TEST"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(tree)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "xorriso failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(out).unwrap();
    Iso {
        path: out.to_path_buf(),
        sha256: sha256_hex(&bytes),
        bytes: Arc::new(bytes),
    }
}

/// Deterministic incompressible-looking bytes.
pub fn filler(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A CA and a leaf for 127.0.0.1/localhost: (server config, CA PEM for the client).
pub fn tls_material() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hyops iso test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (Arc::new(config), ca.pem().into_bytes())
}

/// Runs `sh -c SCRIPT` and returns its trimmed stdout; panics on failure.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
