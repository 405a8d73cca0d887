//! The QEMU command line of the boot check and the accelerator choice.
//!
//! `qemu-system-x86_64 -nodefaults -display none -snapshot`: the artifact is opened read-only in
//! effect (writes go to a temporary overlay QEMU deletes), no network device, no display, no
//! monitor. The firmware's and the guest's serial console (ttyS0) go to a file; with
//! `graphics=off` SeaBIOS mirrors its screen there too, so "No bootable device" reaches the
//! console log. The guest agent's channel is a virtio-serial port named
//! `org.qemu.guest_agent.0` (what Proxmox attaches) backed by a unix socket. The seed is a
//! read-only vvfat volume labelled `cidata` on a second virtio disk.
//!
//! QEMU parses `-drive`/`-chardev` values as comma-separated options: every path is escaped by
//! doubling commas.

use std::ffi::OsString;
use std::path::Path;

use crate::engine::build::Accelerator;
use crate::engine::preflight::Probes;
use crate::engine::spec::BootAccelerator;

/// The emulator binary.
pub const QEMU_SYSTEM: &str = "qemu-system-x86_64";

/// Paths and sizes for one boot.
#[derive(Debug, Clone)]
pub struct QemuArgs<'a> {
    /// the artifact
    pub image: &'a Path,
    /// `qcow2` or `raw`
    pub format: &'a str,
    /// the NoCloud seed directory (`None`: no seed attached)
    pub seed_dir: Option<&'a Path>,
    /// the serial console log
    pub console_log: &'a Path,
    /// the guest agent's unix socket (`None`: no agent channel)
    pub qga_socket: Option<&'a Path>,
    /// guest memory
    pub memory_mb: u32,
    /// the accelerator
    pub accelerator: Accelerator,
}

fn escaped(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// The argv after the program name.
pub fn qemu_argv(a: &QemuArgs<'_>) -> Vec<OsString> {
    let accel = match a.accelerator {
        Accelerator::Kvm => "kvm",
        Accelerator::Tcg => "tcg",
    };
    let mut argv: Vec<String> = vec![
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-snapshot".into(),
        "-machine".into(),
        format!("q35,accel={accel},graphics=off"),
        "-m".into(),
        a.memory_mb.to_string(),
        "-nic".into(),
        "none".into(),
        "-drive".into(),
        format!(
            "file={},format={},if=virtio,media=disk",
            escaped(a.image),
            a.format
        ),
        "-chardev".into(),
        format!("file,id=console0,path={}", escaped(a.console_log)),
        "-serial".into(),
        "chardev:console0".into(),
    ];
    if a.accelerator == Accelerator::Kvm {
        argv.extend(["-cpu".into(), "host".into()]);
    }
    if let Some(seed) = a.seed_dir {
        argv.extend([
            "-drive".into(),
            format!(
                "driver=vvfat,dir={},label=cidata,if=virtio,readonly=on",
                escaped(seed)
            ),
        ]);
    }
    if let Some(sock) = a.qga_socket {
        argv.extend([
            "-device".into(),
            "virtio-serial-pci".into(),
            "-chardev".into(),
            format!("socket,id=qga0,path={},server=on,wait=off", escaped(sock)),
            "-device".into(),
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".into(),
        ]);
    }
    argv.into_iter().map(OsString::from).collect()
}

/// Why no accelerator can be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AcceleratorError(pub String);

/// The accelerator for `requested`: `kvm` needs a usable `/dev/kvm`; `auto` takes KVM when usable,
/// else TCG only with `allow_tcg`; `tcg` is always possible. Returns the choice and, for a TCG
/// fallback, a warning.
pub fn choose_accelerator<P: Probes>(
    probes: &P,
    requested: BootAccelerator,
    allow_tcg: bool,
) -> Result<(Accelerator, Option<String>), AcceleratorError> {
    let kvm = match probes.kvm_api_version() {
        Ok(12) => Ok(()),
        Ok(v) => Err(format!(
            "/dev/kvm answers KVM_GET_API_VERSION = {v}, expected 12"
        )),
        Err(e) => Err(e),
    };
    match (requested, kvm) {
        (BootAccelerator::Tcg, _) => Ok((Accelerator::Tcg, None)),
        (_, Ok(())) => Ok((Accelerator::Kvm, None)),
        (BootAccelerator::Kvm, Err(e)) => Err(AcceleratorError(format!(
            "smoke_verify.boot.accelerator = \"kvm\" but KVM is unusable ({e}); fix KVM or set \
             accelerator = \"tcg\""
        ))),
        (BootAccelerator::Auto, Err(e)) if allow_tcg => Ok((
            Accelerator::Tcg,
            Some(format!(
                "KVM unusable ({e}); boot verification runs under TCG software emulation (slow) \
                 because allow_tcg is set"
            )),
        )),
        (BootAccelerator::Auto, Err(e)) => Err(AcceleratorError(format!(
            "boot verification needs KVM and it is unusable ({e}); enable KVM, or set \
             build.allow_tcg = true (HYOPS_VYOS_ALLOW_TCG=1) or smoke_verify.boot.accelerator = \
             \"tcg\" to accept slow TCG emulation"
        ))),
    }
}
