//! Identity of a builder checkout (`vyos_vm_images_dir`): the git revision plus a digest of the
//! uncommitted changes, or the recursive tree digest when the directory is not a git work tree.
//!
//! Git is asked, not re-implemented: one `git status --porcelain=v2 --branch -z
//! --untracked-files=all` run through the supervisor gives the HEAD commit and every path whose
//! working-tree content differs from HEAD (staged or not) plus untracked, non-ignored files. Reading
//! `.git` directly would mean parsing refs, packed-refs and the index format and re-deriving
//! git's notion of "changed" (index stat data, `.gitignore` rules, clean/smudge filters,
//! worktrees' `.git` files) — exactly where a home-grown reader would silently disagree with
//! `git status`, which is what the operator trusts. The changed paths' working-tree contents are
//! then hashed here (a deleted path hashes as `deleted`).
//!
//! Not covered: files ignored by `.gitignore` (build output, virtualenvs), and the content of
//! submodules beyond the commit the superproject records. When git is missing or fails (for
//! example "dubious ownership" of another user's checkout), the tree digest is used instead and
//! the input says so.
//!
//! Knows nothing of Terraform; spawns only through the supervisor.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::tree::{self, ReadError};
use crate::engine::supervisor::{self, CommandSpec};

const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// How a checkout was identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CheckoutIdentity {
    /// digest over everything below
    pub(super) digest: String,
    /// one line for people (`git 1a2b3c… + 2 uncommitted changes`)
    pub(super) summary: String,
    /// changed path → working-tree content sha256 (git), or every file (no git)
    pub(super) files: BTreeMap<String, String>,
    /// the commit, when git identified the checkout
    pub(super) revision: Option<String>,
}

/// Identify `dir`.
pub(super) async fn identify(
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<CheckoutIdentity, ReadError> {
    if dir.join(".git").exists() {
        match git_status(dir, cancel).await {
            Ok((revision, changed)) => {
                let mut files = BTreeMap::new();
                for rel in changed {
                    let p = dir.join(&rel);
                    let digest = match std::fs::symlink_metadata(&p) {
                        Err(_) => "deleted".to_owned(),
                        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&p)
                            .map(|t| format!("link:{}", t.display()))
                            .unwrap_or_else(|_| "unreadable-link".to_owned()),
                        Ok(m) if m.is_dir() => tree::tree_digest(&p)?.digest,
                        Ok(_) => tree::file_sha256(&p)?,
                    };
                    files.insert(rel, digest);
                }
                let dirty = tree::digest_of_listing(&files);
                let digest = tree::sha256_hex(format!("git\0{revision}\0{dirty}").as_bytes());
                let summary = if files.is_empty() {
                    format!("git {revision}, clean")
                } else {
                    format!("git {revision} + {} uncommitted change(s)", files.len())
                };
                return Ok(CheckoutIdentity {
                    digest,
                    summary,
                    files,
                    revision: Some(revision),
                });
            }
            Err(why) => {
                tracing::warn!(dir = %dir.display(), "git could not identify the checkout ({why}); hashing the tree instead");
                let t = tree::tree_digest(dir)?;
                return Ok(CheckoutIdentity {
                    summary: format!("tree of {} files (git failed: {why})", t.files.len()),
                    digest: t.digest,
                    files: t.files,
                    revision: None,
                });
            }
        }
    }
    let t = tree::tree_digest(dir)?;
    Ok(CheckoutIdentity {
        summary: format!("tree of {} files (not a git checkout)", t.files.len()),
        digest: t.digest,
        files: t.files,
        revision: None,
    })
}

/// HEAD commit (or `(initial)`) and the changed or untracked paths.
async fn git_status(
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<(String, Vec<String>), String> {
    let log = tempfile::NamedTempFile::new().map_err(|e| format!("temp log: {e}"))?;
    let spec = CommandSpec::program("git", log.path())
        .arg("-c")
        .arg(format!("safe.directory={}", dir.display()))
        .arg("-C")
        .arg(dir.as_os_str())
        .args([
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
        ])
        .env("GIT_OPTIONAL_LOCKS", "0")
        .capture_stdout()
        .timeout(GIT_TIMEOUT)
        .grace(Duration::from_secs(1));
    let out = supervisor::run(&spec, cancel)
        .await
        .map_err(|e| e.to_string())?;
    let text = out.stdout.unwrap_or_default();
    parse_porcelain_v2(&text).ok_or_else(|| "unexpected git status output".to_owned())
}

/// Parse `git status --porcelain=v2 --branch -z`.
fn parse_porcelain_v2(text: &str) -> Option<(String, Vec<String>)> {
    let mut revision = None;
    let mut changed = Vec::new();
    let mut records = text.split('\0').filter(|r| !r.is_empty());
    while let Some(rec) = records.next() {
        if let Some(oid) = rec.strip_prefix("# branch.oid ") {
            revision = Some(oid.to_owned());
            continue;
        }
        if rec.starts_with('#') {
            continue;
        }
        let path = match rec.as_bytes().first()? {
            b'1' => rec.splitn(9, ' ').nth(8)?,
            b'2' => {
                let p = rec.splitn(10, ' ').nth(9)?;
                // the original path follows as its own record
                records.next();
                p
            }
            b'u' => rec.splitn(11, ' ').nth(10)?,
            b'?' => rec.get(2..)?,
            _ => continue,
        };
        changed.push(path.to_owned());
    }
    changed.sort();
    changed.dedup();
    Some((revision?, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_v2_records_are_parsed() {
        let text = "# branch.oid 0123abcd\0# branch.head main\0\
                    1 .M N... 100644 100644 100644 aaa bbb roles/x y.yml\0\
                    2 R. N... 100644 100644 100644 aaa bbb R100 new.yml\0old.yml\0\
                    ? untracked file\0";
        let (rev, changed) = parse_porcelain_v2(text).unwrap();
        assert_eq!(rev, "0123abcd");
        assert_eq!(changed, vec!["new.yml", "roles/x y.yml", "untracked file"]);
    }
}
