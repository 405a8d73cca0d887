//! Shared pieces: the gate, the fixture ISOs, builder commands, operator CLI runs, and a scan for
//! left-over QEMU processes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// True when the boot suite is enabled (`HYOPS_TEST_BOOT=1`); prints why not otherwise.
pub(crate) fn enabled() -> bool {
    let on = std::env::var("HYOPS_TEST_BOOT").as_deref() == Ok("1");
    if !on {
        eprintln!(
            "skipped: set HYOPS_TEST_BOOT=1 to run the QEMU boot tests (scripts/test.sh does)"
        );
    }
    on
}

/// The fixture directory (built on first use; the script is idempotent).
pub(crate) fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    DIR.get_or_init(|| {
        let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join(".tools/boot-fixture");
        let out = Command::new("bash")
            .arg(root.join("test-fixtures/boot/build-fixture.sh"))
            .arg(&dir)
            .output()
            .expect("run build-fixture.sh");
        assert!(
            out.status.success(),
            "building the boot fixture failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A fixture ISO: `vyos-boot`, `vyos-boot-noagent`, `vyos-boot-panic`, `vyos-boot-hang`.
pub(crate) fn iso(name: &str) -> (PathBuf, String) {
    let path = fixture_dir().join(format!("{name}.iso"));
    let sha = std::fs::read_to_string(fixture_dir().join(format!("{name}.iso.sha256")))
        .expect("fixture sha256")
        .trim()
        .to_owned();
    (path, sha)
}

/// Builder: the ISO as a 2 GiB qcow2 disk (a grub-mkrescue ISO boots as a hard disk).
pub(crate) const ISO_TO_DISK: &str = "qemu-img convert -f raw -O qcow2 \"$HYOPS_VYOS_SOURCE_ISO_PATH\" \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" && qemu-img resize -q \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G";
/// Builder: an empty qcow2 disk of the same size (passes the qemu-img gate).
pub(crate) const EMPTY_DISK: &str =
    "qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G";

/// A CLI spec: `command` builder, serial console, boot check under TCG with `boot` merged in,
/// published to `repo` (file backend), cache under `cache`.
pub(crate) fn spec(
    key: &str,
    iso_name: &str,
    builder: &str,
    boot: serde_json::Value,
    required: bool,
    repo: &Path,
    cache: &Path,
) -> serde_json::Value {
    let (path, sha) = iso(iso_name);
    let mut b = serde_json::json!({ "enabled": true, "accelerator": "tcg", "timeout": "3m" });
    if let (Some(o), Some(extra)) = (b.as_object_mut(), boot.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "artifact_key": key,
        "source_iso_url": format!("file://{}", path.display()),
        "source_iso_sha256": sha,
        "build": { "method": "command", "console": "serial", "disk_size_gb": 2, "command": builder },
        "smoke_verify": { "required": required, "boot": b },
        "publish": { "backend": "file", "bucket": repo.display().to_string() },
        "provider": { "cache_dir": cache.display().to_string() }
    })
}

/// `terraform-provider-hyops image apply --config SPEC` (the operator CLI, a real child process).
pub(crate) fn cli_apply(dir: &Path, spec: &serde_json::Value) -> Output {
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_terraform-provider-hyops"))
        .args(["image", "apply", "--config"])
        .arg(&path)
        .env_remove("HYOPS_VYOS_ALLOW_TCG")
        .output()
        .expect("run the operator CLI")
}

/// Pids of live `qemu-system-x86_64` processes whose command line mentions `needle`.
pub(crate) fn qemu_pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("qemu-system-x86_64") && cmd.contains(needle) {
            // zombies count as gone
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if !stat.contains(") Z ") {
                out.push(pid);
            }
        }
    }
    out
}

/// Every file under `dir` (none when it does not exist).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    crate::harness::files_under(dir)
}
