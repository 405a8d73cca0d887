//! Preflight: read-only checks that the host can run the chosen build method, each failure naming
//! the check, what was found and the fix. Facts come from a [`Probes`] implementation
//! ([`SystemProbes`] for the real host; tests inject their own), so every check's message is
//! testable without changing the machine.
//!
//! Checks per method:
//! - `vyos-vm-images`: Linux; not a Proxmox VE host; root or passwordless sudo; `ansible-playbook`;
//!   `qemu-img`; free disk.
//! - `packer`: Linux; not a Proxmox VE host; KVM usable (TCG only with `allow_tcg` /
//!   `HYOPS_VYOS_ALLOW_TCG=1`); `packer` ≥ 1.6; `qemu-system-x86_64`; `qemu-img`; free disk.
//! - `command`: `qemu-img` (smoke verify and normalize need it); free disk. No KVM.
//! - any method with `smoke_verify.boot` enabled: `qemu-system-x86_64`, and an accelerator the
//!   boot check may use (`auto`: KVM, or TCG under `allow_tcg`; `kvm`: KVM; `tcg`: always).
//!
//! Free disk is measured where the build writes: the cache staging folder and the ISO cache
//! (see `space`), not `build.workdir`.
//!
//! Spawns only short probes (`--version`, `sudo -n true`) through the supervisor; never anything
//! long-lived. `build.skip_preflight` skips all of it (the caller decides).

mod checks;
mod space;
mod system;

pub use checks::{run_preflight, CheckFailure, PreflightError, PreflightReport, PreflightRequest};
pub use system::SystemProbes;

use std::future::Future;
use std::path::{Path, PathBuf};

/// Host facts preflight needs. Implementations must not change the host.
pub trait Probes: Send + Sync {
    /// `std::env::consts::OS` of the host (`linux`, `macos`, …).
    fn os(&self) -> String;
    /// Whether a path exists.
    fn path_exists(&self, path: &Path) -> bool;
    /// Resolve a program on `PATH`.
    fn find_program(&self, name: &str) -> Option<PathBuf>;
    /// Open `/dev/kvm` and return `KVM_GET_API_VERSION`, or why that failed.
    fn kvm_api_version(&self) -> Result<i32, String>;
    /// Effective user id.
    fn euid(&self) -> u32;
    /// Whether `sudo -n true` succeeds.
    fn passwordless_sudo(&self) -> impl Future<Output = bool> + Send;
    /// First line of the tool's version output, `None` when it cannot be run.
    fn tool_version(&self, tool: &str) -> impl Future<Output = Option<String>> + Send;
    /// Free bytes available to this user on the filesystem holding `dir`.
    fn free_bytes(&self, dir: &Path) -> Result<u64, String>;
    /// An identity of the filesystem holding `dir` (its nearest existing ancestor), so needs of
    /// paths on one filesystem add up; `None` when unknown (each path is checked alone).
    fn filesystem_id(&self, _dir: &Path) -> Option<u64> {
        None
    }
}
