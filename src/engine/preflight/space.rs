//! The free-space check: measured on the filesystems the build really writes to — the cache's
//! staging folder (builder disks, normalized copies, packer/ansible scratch; failed work
//! directories are renamed from there) and the ISO cache (the download, when not cached yet) —
//! with the needs of locations that share one filesystem added up. `build.workdir` is only the
//! command builder's working directory (its image still goes to staging) and is not measured.

use std::path::PathBuf;

use super::checks::{fail, CheckFailure, PreflightRequest};
use super::Probes;

pub(super) const GIB: u64 = 1 << 30;
/// Free space kept on top of the estimate (logs, packer cache, normalized copies).
pub(super) const MARGIN_BYTES: u64 = 2 * GIB;

struct Need {
    dir: PathBuf,
    what: Vec<&'static str>,
    bytes: u64,
    fs: Option<u64>,
}

/// Append a `disk-space` failure per filesystem without enough room.
pub(super) fn check_space<P: Probes>(
    probes: &P,
    req: &PreflightRequest,
    vm_based: bool,
    failures: &mut Vec<CheckFailure>,
) {
    let disk = u64::from(req.disk_size_gb) * GIB;
    let factor = if vm_based { 2 } else { 1 };
    let mut wanted = vec![(
        req.work_dir.clone(),
        "build staging",
        factor * disk + MARGIN_BYTES,
    )];
    match &req.iso_cache_dir {
        Some(dir) => wanted.push((
            dir.clone(),
            "ISO cache",
            if req.iso_cached { 0 } else { req.iso_bytes },
        )),
        // No separate ISO cache given: count the ISO where the build writes (conservative).
        None => wanted[0].2 += req.iso_bytes,
    }
    let mut needs: Vec<Need> = Vec::new();
    for (dir, what, bytes) in wanted {
        let fs = probes.filesystem_id(&dir);
        match needs.iter_mut().find(|n| fs.is_some() && n.fs == fs) {
            Some(n) => {
                n.bytes += bytes;
                n.what.push(what);
            }
            None => needs.push(Need {
                dir,
                what: vec![what],
                bytes,
                fs,
            }),
        }
    }
    for n in needs {
        match probes.free_bytes(&n.dir) {
            Ok(free) if free >= n.bytes => {}
            Ok(free) => failures.push(fail(
                "disk-space",
                format!(
                    "{:.1} GiB free at {} ({}), need {:.1} GiB (ISO + {factor}× disk_size_gb + {} GiB margin)",
                    free as f64 / GIB as f64,
                    n.dir.display(),
                    n.what.join(" + "),
                    n.bytes as f64 / GIB as f64,
                    MARGIN_BYTES / GIB
                ),
                "free space there, point the provider's cache_dir at a larger filesystem, or lower disk_size_gb",
            )),
            Err(e) => failures.push(fail(
                "disk-space",
                e,
                "make the cache directory's filesystem readable",
            )),
        }
    }
}
