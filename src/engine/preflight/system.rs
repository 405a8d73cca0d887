//! [`SystemProbes`]: the real host. `/dev/kvm` is probed with `KVM_GET_API_VERSION` (not by
//! grepping CPU flags); free space with `statvfs`; versions and sudo through the supervisor.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Probes;
use crate::engine::supervisor::{self, CommandSpec};

/// `KVM_GET_API_VERSION` = `_IO(0xAE, 0x00)`.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Probes of the machine this process runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemProbes;

async fn probe_output(argv: &[&str]) -> Option<String> {
    let log = tempfile::Builder::new()
        .prefix("hyops-probe-")
        .tempfile()
        .ok()?;
    let (program, args) = argv.split_first()?;
    let spec = CommandSpec::program(*program, log.path())
        .args(args.iter().copied())
        .env("LC_ALL", "C")
        .timeout(PROBE_TIMEOUT)
        .grace(Duration::from_secs(1));
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .ok()?;
    let text = std::fs::read_to_string(log.path()).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

impl Probes for SystemProbes {
    fn os(&self) -> String {
        std::env::consts::OS.to_owned()
    }

    fn path_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    }

    fn kvm_api_version(&self) -> Result<i32, String> {
        let path = CString::new("/dev/kvm").map_err(|e| e.to_string())?;
        // SAFETY: open(2) with a valid NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "cannot open /dev/kvm: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: KVM_GET_API_VERSION takes no argument; fd is the descriptor opened above.
        let version = unsafe { libc::ioctl(fd, KVM_GET_API_VERSION as _, 0) };
        let err = std::io::Error::last_os_error();
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        if version < 0 {
            return Err(format!("KVM_GET_API_VERSION on /dev/kvm failed: {err}"));
        }
        Ok(version)
    }

    fn euid(&self) -> u32 {
        // SAFETY: geteuid(2) cannot fail.
        unsafe { libc::geteuid() }
    }

    async fn passwordless_sudo(&self) -> bool {
        self.find_program("sudo").is_some() && probe_exit_ok(&["sudo", "-n", "true"]).await
    }

    async fn tool_version(&self, tool: &str) -> Option<String> {
        self.find_program(tool)?;
        let arg = if tool == "packer" {
            "version"
        } else {
            "--version"
        };
        probe_output(&[tool, arg]).await
    }

    fn filesystem_id(&self, dir: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let mut probe = dir.to_path_buf();
        loop {
            if let Ok(m) = std::fs::metadata(&probe) {
                return Some(m.dev());
            }
            if !probe.pop() {
                return None;
            }
        }
    }

    fn free_bytes(&self, dir: &Path) -> Result<u64, String> {
        let mut probe = dir.to_path_buf();
        while !probe.exists() {
            if !probe.pop() {
                return Err(format!("no existing ancestor of {}", dir.display()));
            }
        }
        let c = CString::new(probe.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: statvfs(3) with a valid path and a zeroed out-struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(format!(
                "statvfs {}: {}",
                probe.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
}

async fn probe_exit_ok(argv: &[&str]) -> bool {
    let Ok(log) = tempfile::NamedTempFile::new() else {
        return false;
    };
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    let spec = CommandSpec::program(*program, log.path())
        .args(args.iter().copied())
        .timeout(PROBE_TIMEOUT)
        .grace(Duration::from_secs(1));
    supervisor::run(&spec, &CancellationToken::new())
        .await
        .is_ok()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
