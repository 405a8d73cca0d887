//! The NoCloud seed attached to the boot check: a directory holding `meta-data` (a fresh
//! instance-id) and `user-data` (a `write_files` marker and a `final_message` naming the
//! instance-id, so cloud-init's run can be proven over the guest agent or on the serial console).
//!
//! QEMU serves the directory to the guest as a read-only FAT volume labelled `cidata` (the `vvfat`
//! block driver with its `label` option; see [`super::qemu`]). Why that and not an ISO or FAT image
//! written here: it needs no root, no mount, no extra tool (xorriso, mkfs.vfat) and no filesystem
//! code in this crate; QEMU itself is already required; and cloud-init's NoCloud datasource finds a
//! vfat volume labelled `cidata` (any case) exactly as it finds `cloud-localds` output. The seed is
//! two small files, so vvfat's known weaknesses (large or written-to trees) do not apply; it is
//! attached read-only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the user-data's `write_files` marker lands in the guest.
pub const MARKER_PATH: &str = "/run/hyops-boot-verify";
/// Prefix of the `final_message` line on the console.
pub const FINAL_MESSAGE_PREFIX: &str = "hyops-boot-verify";

/// A written seed directory.
#[derive(Debug, Clone)]
pub struct Seed {
    /// directory served as the `cidata` volume
    pub dir: PathBuf,
    /// the fresh instance-id in `meta-data`
    pub instance_id: String,
}

fn fresh_instance_id() -> String {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Fall back to time and pid: only freshness matters, not secrecy.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = ((nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)).to_be_bytes();
    }
    format!("iid-hyops-verify-{}", hex::encode(bytes))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// `user-data` for `instance_id`.
pub fn user_data(instance_id: &str) -> String {
    format!(
        "#cloud-config\n\
         write_files:\n  \
           - path: {MARKER_PATH}\n    \
             content: {instance_id}\n\
         final_message: \"{FINAL_MESSAGE_PREFIX} {instance_id} cloud-init $VERSION finished\"\n"
    )
}

/// Write a fresh seed into a new directory `parent/seed-<instance-id>` (0700; files 0600).
pub fn write_seed(parent: &Path) -> std::io::Result<Seed> {
    let instance_id = fresh_instance_id();
    let dir = parent.join(format!("seed-{instance_id}"));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    write_private(
        &dir.join("meta-data"),
        &format!("instance-id: {instance_id}\nlocal-hostname: vyos\n"),
    )?;
    write_private(&dir.join("user-data"), &user_data(&instance_id))?;
    Ok(Seed { dir, instance_id })
}
