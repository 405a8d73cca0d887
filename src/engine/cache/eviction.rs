//! Giving disk space back: size-limited least-recently-used eviction of build entries and ISOs,
//! age limits for failed work directories, stale staging directories and logs, and the inventory
//! `cache ls` displays.
//!
//! Rules (one prune at a time per cache directory, under `<cache>/.evict.lock`):
//! 1. failed work directories (`failed/<build-id>`) and leftover staging directories of killed
//!    processes (`builds/.staging-*`, only when no create of that fingerprint runs) older than the
//!    failed-work age are removed;
//! 2. logs (`logs/*`) older than that age are removed, and beyond the newest [`LOG_KEEP`] the
//!    oldest go (rotation by count: one file per build or publish command);
//! 3. with `older_than`, build entries and ISOs not used within it are removed;
//! 4. with a size limit, build entries and ISOs are removed least recently used first until their
//!    total allocated size is within the limit.
//!
//! An entry **in use** is never removed: a build entry whose fingerprint lock is held (a create of
//! it is running: building, delivering or publishing from it) or an ISO whose in-use lock is held
//! shared (a build reads it) or whose download lock is held. The check takes the lock without
//! waiting and keeps it while deleting, so a create that starts meanwhile waits and then rebuilds.
//! A dry run takes the same decisions (locks included) and deletes nothing.
//!
//! Knows nothing of Terraform or the CLI; sizes are allocated bytes (sparse images count what
//! they occupy).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::lock::{self, HeldLock, TryLock};
use super::{read_record, BuildCache, BuildRecord, CacheError, LAST_USED};
use crate::engine::iso;

/// Logs kept at most (newest first).
pub const LOG_KEEP: usize = 200;
/// Default age after which failed work directories and logs are removed.
pub const DEFAULT_FAILED_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a prune may remove.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunePolicy {
    /// total size limit for build entries plus ISOs (bytes)
    pub max_size_bytes: Option<u64>,
    /// remove build entries and ISOs not used within this long, and failed dirs/logs older
    pub older_than: Option<Duration>,
    /// failed work directories, stale staging directories and logs older than this go
    pub failed_max_age: Duration,
    /// decide, report, remove nothing
    pub dry_run: bool,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        PrunePolicy {
            max_size_bytes: None,
            older_than: None,
            failed_max_age: DEFAULT_FAILED_MAX_AGE,
            dry_run: false,
        }
    }
}

/// Kinds of things in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// `builds/<fp>/`
    Build,
    /// `iso/<sha256>.iso` (+ partial download)
    Iso,
    /// `failed/<build-id>/`
    Failed,
    /// `builds/.staging-*` left by a killed process
    Staging,
    /// `logs/<file>`
    Log,
}

/// One thing in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// what it is
    pub kind: ItemKind,
    /// fingerprint, sha256, build id or file name
    pub name: String,
    /// where it is
    pub path: PathBuf,
    /// allocated bytes
    pub size: u64,
    /// last use (builds, ISOs) or modification (others), RFC 3339
    pub last_used: String,
    /// a running create or build holds it
    pub in_use: bool,
    #[serde(skip)]
    used_at: SystemTime,
}

/// A build entry as `cache ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildEntry {
    /// the entry
    #[serde(flatten)]
    pub item: Item,
    /// its record (absent when unreadable)
    pub record: Option<BuildRecord>,
    /// reusable by a create with the same fingerprint (record current, files unchanged)
    pub reusable: bool,
}

/// Everything in a cache directory.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// the cache directory
    pub cache_dir: PathBuf,
    /// build entries, most recently used first
    pub builds: Vec<BuildEntry>,
    /// ISOs, most recently used first
    pub isos: Vec<Item>,
    /// failed work directories
    pub failed: Vec<Item>,
    /// logs
    pub logs: Vec<Item>,
    /// allocated bytes of build entries plus ISOs (what `cache_max_size_gb` limits)
    pub limited_size: u64,
}

/// What a prune did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// nothing was removed
    pub dry_run: bool,
    /// removed (or would be)
    pub removed: Vec<Item>,
    /// eligible but in use, so kept
    pub kept_in_use: Vec<Item>,
    /// build entries plus ISOs before
    pub limited_size_before: u64,
    /// build entries plus ISOs after
    pub limited_size_after: u64,
    /// the limit applied
    pub max_size_bytes: Option<u64>,
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

use super::tree::allocated;

fn mtime(path: &Path) -> SystemTime {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn item(kind: ItemKind, name: String, path: PathBuf, used_at: SystemTime, in_use: bool) -> Item {
    Item {
        kind,
        size: allocated(&path),
        name,
        path,
        last_used: rfc3339(used_at),
        in_use,
        used_at,
    }
}

fn is_fingerprint(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A thing that may be removed, with the locks that prove it is not in use.
struct Candidate {
    item: Item,
    locks: Vec<PathBuf>,
}

/// Attempts before a busy lock counts as "in use".
const BUSY_ATTEMPTS: u32 = 5;
/// Pause between attempts.
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// Take every lock without waiting; `None` when one is held elsewhere. Missing lock files are
/// created unless `dry` (then they count as free).
///
/// A busy lock is retried briefly: a child process forked by another thread of this process
/// while it held the lock carries a copy of the descriptor (and so the `flock`) until it execs,
/// which on a loaded machine can take a moment. A lock still busy after the retries is in use.
fn try_locks(paths: &[PathBuf], dry: bool) -> Result<Option<Vec<HeldLock>>, CacheError> {
    for attempt in 1..=BUSY_ATTEMPTS {
        match try_locks_once(paths, dry)? {
            Some(held) => return Ok(Some(held)),
            None if attempt < BUSY_ATTEMPTS => std::thread::sleep(BUSY_PAUSE),
            None => {}
        }
    }
    Ok(None)
}

fn try_locks_once(paths: &[PathBuf], dry: bool) -> Result<Option<Vec<HeldLock>>, CacheError> {
    let mut held = Vec::with_capacity(paths.len());
    for p in paths {
        match lock::try_exclusive(p, !dry)? {
            TryLock::Held(l) => held.push(l),
            TryLock::Absent => {}
            TryLock::Busy => return Ok(None),
        }
    }
    Ok(Some(held))
}

fn build_candidates(cache_dir: &Path) -> Vec<Candidate> {
    let cache = BuildCache::new(cache_dir);
    let Ok(read) = std::fs::read_dir(cache.root()) else {
        return Vec::new();
    };
    read.flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            is_fingerprint(&name).then_some(name)
        })
        .map(|fp| {
            let dir = cache.entry_dir(&fp);
            let marker = dir.join(LAST_USED);
            let used = if marker.exists() {
                mtime(&marker)
            } else {
                mtime(&dir)
            };
            Candidate {
                locks: vec![cache.lock_path(&fp)],
                item: item(ItemKind::Build, fp, dir, used, false),
            }
        })
        .collect()
}

fn iso_candidates(cache_dir: &Path) -> Vec<Candidate> {
    iso::cached_isos(cache_dir)
        .into_iter()
        .map(|i| {
            let mut it = item(
                ItemKind::Iso,
                i.sha256.clone(),
                i.path.clone(),
                i.last_used,
                false,
            );
            it.size = i.size;
            Candidate {
                locks: vec![i.in_use_lock.clone(), i.download_lock.clone()],
                item: it,
            }
        })
        .collect()
}

fn dir_items(dir: &Path, kind: ItemKind) -> Vec<Item> {
    dir_items_named(dir, kind, |_| true)
}

/// Items of `dir` whose file name passes `keep` (sizes are only computed for those).
fn dir_items_named(dir: &Path, kind: ItemKind, keep: impl Fn(&str) -> bool) -> Vec<Item> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut items: Vec<Item> = read
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            item(kind, name, path.clone(), mtime(&path), false)
        })
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.used_at));
    items
}

/// Whether the locks are free right now (taken and released at once).
fn currently_in_use(locks: &[PathBuf]) -> bool {
    !matches!(try_locks(locks, true), Ok(Some(_)))
}

/// Everything in `cache_dir`, for `cache ls`.
pub fn inventory(cache_dir: &Path) -> Inventory {
    let cache = BuildCache::new(cache_dir);
    let mut builds: Vec<BuildEntry> = build_candidates(cache_dir)
        .into_iter()
        .map(|c| {
            let mut item = c.item;
            item.in_use = currently_in_use(&c.locks);
            let record = read_record(&item.path);
            let reusable = cache.lookup(&item.name).is_some();
            BuildEntry {
                item,
                record,
                reusable,
            }
        })
        .collect();
    builds.sort_by_key(|b| std::cmp::Reverse(b.item.used_at));
    let mut isos: Vec<Item> = iso_candidates(cache_dir)
        .into_iter()
        .map(|c| {
            let mut item = c.item;
            item.in_use = currently_in_use(&c.locks);
            item
        })
        .collect();
    isos.sort_by_key(|i| std::cmp::Reverse(i.used_at));
    let limited_size =
        builds.iter().map(|b| b.item.size).sum::<u64>() + isos.iter().map(|i| i.size).sum::<u64>();
    Inventory {
        cache_dir: cache_dir.to_owned(),
        builds,
        isos,
        failed: dir_items(&cache_dir.join("failed"), ItemKind::Failed),
        logs: dir_items(&cache_dir.join("logs"), ItemKind::Log),
        limited_size,
    }
}

fn remove_path(path: &Path) {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = r {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove from the build cache");
        }
    }
}

fn remove_candidate(cache_dir: &Path, c: &Candidate) {
    match c.item.kind {
        ItemKind::Iso => iso::remove_cached(cache_dir, &c.item.name),
        _ => remove_path(&c.item.path),
    }
}

/// Prune `cache_dir` by `policy`, waiting for another prune to finish (blocking; for the CLI).
/// A dry run reads only and takes no cache-wide lock.
pub fn prune(cache_dir: &Path, policy: &PrunePolicy) -> Result<PruneReport, CacheError> {
    if policy.dry_run || !cache_dir.is_dir() {
        // Read-only (an absent cache has nothing to remove and is not created here).
        return prune_locked(cache_dir, policy);
    }
    let _guard = lock::exclusive_blocking(&cache_dir.join(".evict.lock"))?;
    prune_locked(cache_dir, policy)
}

/// Prune unless another prune is running (then `None`): what a create runs after success.
pub fn try_prune(
    cache_dir: &Path,
    policy: &PrunePolicy,
) -> Result<Option<PruneReport>, CacheError> {
    match lock::try_exclusive(&cache_dir.join(".evict.lock"), true)? {
        TryLock::Held(_guard) => prune_locked(cache_dir, policy).map(Some),
        _ => Ok(None),
    }
}

fn prune_locked(cache_dir: &Path, policy: &PrunePolicy) -> Result<PruneReport, CacheError> {
    let now = SystemTime::now();
    let older = |t: SystemTime, age: Duration| now.duration_since(t).is_ok_and(|d| d > age);
    let work_age = policy
        .older_than
        .map_or(policy.failed_max_age, |d| d.min(policy.failed_max_age));
    let mut removed = Vec::new();
    let mut kept_in_use = Vec::new();

    // 1. failed work directories and stale staging directories
    for f in dir_items(&cache_dir.join("failed"), ItemKind::Failed) {
        if older(f.used_at, work_age) {
            if !policy.dry_run {
                remove_path(&f.path);
            }
            removed.push(f);
        }
    }
    let builds_root = cache_dir.join("builds");
    for s in dir_items_named(&builds_root, ItemKind::Staging, |n| {
        n.starts_with(".staging-")
    }) {
        let Some(prefix) = s
            .name
            .strip_prefix(".staging-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if !older(s.used_at, work_age) {
            continue;
        }
        let locks: Vec<PathBuf> = std::fs::read_dir(&builds_root)
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .map(|n| n.to_string_lossy())
                            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".lock"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        match try_locks(&locks, policy.dry_run)? {
            Some(_held) => {
                if !policy.dry_run {
                    remove_path(&s.path);
                }
                removed.push(s);
            }
            None => kept_in_use.push(Item { in_use: true, ..s }),
        }
    }

    // 2. logs: by age, then by count
    let logs = dir_items(&cache_dir.join("logs"), ItemKind::Log);
    for (i, l) in logs.into_iter().enumerate() {
        if i >= LOG_KEEP || older(l.used_at, work_age) {
            if !policy.dry_run {
                remove_path(&l.path);
            }
            removed.push(l);
        }
    }

    // 3 + 4. build entries and ISOs
    let mut candidates = build_candidates(cache_dir);
    candidates.extend(iso_candidates(cache_dir));
    candidates.sort_by_key(|c| c.item.used_at);
    let before: u64 = candidates.iter().map(|c| c.item.size).sum();
    let mut total = before;
    for c in &candidates {
        let too_old = policy.older_than.is_some_and(|d| older(c.item.used_at, d));
        let over = policy.max_size_bytes.is_some_and(|max| total > max);
        if !too_old && !over {
            continue;
        }
        match try_locks(&c.locks, policy.dry_run)? {
            Some(_held) => {
                if !policy.dry_run {
                    remove_candidate(cache_dir, c);
                }
                total = total.saturating_sub(c.item.size);
                removed.push(c.item.clone());
            }
            None => kept_in_use.push(Item {
                in_use: true,
                ..c.item.clone()
            }),
        }
    }
    if !removed.is_empty() {
        tracing::info!(
            removed = removed.len(),
            kept_in_use = kept_in_use.len(),
            dry_run = policy.dry_run,
            "build cache pruned"
        );
    }
    Ok(PruneReport {
        dry_run: policy.dry_run,
        removed,
        kept_in_use,
        limited_size_before: before,
        limited_size_after: total,
        max_size_bytes: policy.max_size_bytes,
    })
}
