//! The checks themselves, over any [`Probes`]. All failures are collected, so one run reports
//! everything an operator has to fix.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::build::Accelerator;
use crate::engine::spec::{BootAccelerator, BuildMethod};

use super::Probes;

/// Oldest packer with the HCL2 features the packaged templates use.
const MIN_PACKER: (u32, u32) = (1, 6);

/// What preflight is asked to check.
#[derive(Debug, Clone)]
pub struct PreflightRequest {
    /// the build method
    pub method: BuildMethod,
    /// `build.allow_tcg` (or `HYOPS_VYOS_ALLOW_TCG=1`)
    pub allow_tcg: bool,
    /// the cache staging folder the build writes into (free space is measured here)
    pub work_dir: PathBuf,
    /// size of the ISO that will be read (0 when unknown)
    pub iso_bytes: u64,
    /// the ISO cache directory (measured too; `None`: the ISO counts at `work_dir`)
    pub iso_cache_dir: Option<PathBuf>,
    /// the ISO is already in the ISO cache (needs no room there)
    pub iso_cached: bool,
    /// `build.disk_size_gb`
    pub disk_size_gb: u32,
    /// `smoke_verify.boot.accelerator` when boot verification is enabled (`None`: disabled)
    pub boot_accelerator: Option<BootAccelerator>,
}

/// One failed check: its name, what was found, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// check name (`kvm`, `proxmox-host`, `tool:packer`, …)
    pub check: String,
    /// what was found
    pub found: String,
    /// what to do
    pub fix: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] found: {}; fix: {}",
            self.check, self.found, self.fix
        )
    }
}

/// Preflight refused the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preflight failed for build method {method}:\n{}", .failures.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n"))]
pub struct PreflightError {
    /// the method checked
    pub method: String,
    /// every failed check
    pub failures: Vec<CheckFailure>,
}

/// What preflight found (used by the builders and recorded with the build).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreflightReport {
    /// accelerator for VM-based builders
    pub accelerator: Accelerator,
    /// run privileged builders under `sudo -n`
    pub use_sudo: bool,
    /// tool name → first line of its version output
    pub tools: BTreeMap<String, String>,
    /// non-fatal findings (e.g. TCG allowed)
    pub warnings: Vec<String>,
}

pub(super) fn fail(check: &str, found: impl Into<String>, fix: impl Into<String>) -> CheckFailure {
    CheckFailure {
        check: check.to_owned(),
        found: found.into(),
        fix: fix.into(),
    }
}

/// First `major.minor` in a version line.
fn major_minor(line: &str) -> Option<(u32, u32)> {
    let re = regex::Regex::new(r"(\d+)\.(\d+)").ok()?;
    let c = re.captures(line)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// Run the checks that apply to `req.method`.
pub async fn run_preflight<P: Probes>(
    probes: &P,
    req: &PreflightRequest,
) -> Result<PreflightReport, PreflightError> {
    let mut failures = Vec::new();
    let mut report = PreflightReport::default();
    let vm_based = req.method != BuildMethod::Command;

    if vm_based {
        let os = probes.os();
        if os != "linux" {
            failures.push(fail(
                "os",
                format!("operating system {os}"),
                "build on a Linux host (or use build.method = \"command\")",
            ));
        }
        let mut pve = Vec::new();
        if probes.path_exists(std::path::Path::new("/etc/pve")) {
            pve.push("/etc/pve".to_owned());
        }
        for tool in ["pveversion", "pvesh", "qm"] {
            if let Some(p) = probes.find_program(tool) {
                pve.push(p.display().to_string());
            }
        }
        if !pve.is_empty() {
            failures.push(fail(
                "proxmox-host",
                format!("this is a Proxmox VE host ({})", pve.join(", ")),
                "build on a separate Linux builder VM or host, not on the hypervisor",
            ));
        }
    }

    match req.method {
        BuildMethod::Packer => match probes.kvm_api_version() {
            Ok(12) => report.accelerator = Accelerator::Kvm,
            found => {
                let found = match found {
                    Ok(v) => format!("/dev/kvm answers KVM_GET_API_VERSION = {v}, expected 12"),
                    Err(e) => e,
                };
                if req.allow_tcg {
                    report.accelerator = Accelerator::Tcg;
                    report.warnings.push(format!(
                            "KVM unusable ({found}); building with TCG software emulation (slow) because allow_tcg is set"
                        ));
                } else {
                    failures.push(fail(
                            "kvm",
                            found,
                            "enable KVM (load kvm_intel/kvm_amd, nested virtualization, access to /dev/kvm), \
                             or set build.allow_tcg = true / HYOPS_VYOS_ALLOW_TCG=1 to accept slow TCG emulation",
                        ));
                }
            }
        },
        BuildMethod::VyosVmImages => {
            if probes.euid() != 0 {
                if probes.passwordless_sudo().await {
                    report.use_sudo = true;
                } else {
                    failures.push(fail(
                        "root",
                        format!("running as uid {} and `sudo -n true` fails", probes.euid()),
                        "run as root or grant this user passwordless sudo (vyos-vm-images uses loop devices, kpartx and chroot)",
                    ));
                }
            }
        }
        BuildMethod::Command => {}
    }

    let mut tools: Vec<(&str, &str)> = vec![(
        "qemu-img",
        "install qemu-utils (Debian/Ubuntu) or qemu-img (Fedora/RHEL)",
    )];
    match req.method {
        BuildMethod::VyosVmImages => tools.push((
            "ansible-playbook",
            "install ansible (apt-get install ansible) with the ansible.posix and community.general collections",
        )),
        BuildMethod::Packer => {
            tools.push(("packer", "install packer ≥ 1.6 (Debian: apt-get install packer)"));
            tools.push((
                "qemu-system-x86_64",
                "install qemu-system-x86 (Debian/Ubuntu) or qemu-kvm",
            ));
        }
        BuildMethod::Command => {}
    }
    if let Some(requested) = req.boot_accelerator {
        if req.method != BuildMethod::Packer {
            tools.push((
                "qemu-system-x86_64",
                "install qemu-system-x86 (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-utils) \
                 or set smoke_verify.boot.enabled = false",
            ));
        }
        if let Err(e) =
            crate::engine::verify::boot::choose_accelerator(probes, requested, req.allow_tcg)
        {
            failures.push(fail(
                "boot-accelerator",
                e.0,
                "boot verification needs an accelerator it may use (see smoke_verify.boot.accelerator)",
            ));
        }
    }
    for (tool, fix) in tools {
        match probes.tool_version(tool).await {
            None => failures.push(fail(
                &format!("tool:{tool}"),
                format!("`{tool}` not found on PATH or not runnable"),
                fix,
            )),
            Some(version) => {
                if tool == "packer" {
                    match major_minor(&version) {
                        Some(v) if v >= MIN_PACKER => {}
                        other => failures.push(fail(
                            "tool:packer",
                            format!(
                                "packer version {:?} ({})",
                                version,
                                other.map_or("unparsable".to_owned(), |(a, b)| format!("{a}.{b}"))
                            ),
                            "install packer ≥ 1.6 (HCL2 templates with the built-in qemu builder)",
                        )),
                    }
                }
                report.tools.insert(tool.to_owned(), version);
            }
        }
    }

    super::space::check_space(probes, req, vm_based, &mut failures);

    if failures.is_empty() {
        Ok(report)
    } else {
        Err(PreflightError {
            method: req.method.as_str().to_owned(),
            failures,
        })
    }
}
