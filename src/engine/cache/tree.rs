//! Content digests of files and directory trees for the fingerprint.
//!
//! A tree digest covers every regular file below the root, recursively, as (relative path,
//! content sha256) pairs in byte order of the path, plus symlinks as (path, link target). VCS
//! folders (`.git`, `.hg`, `.svn`, `.bzr`, `_darcs`, `CVS`) are skipped at any depth. Symlinks are
//! not followed (a link to a directory outside the tree would make the digest depend on unrelated
//! files, and a link loop would never end): the link's target string is hashed instead. File
//! modes, owners and timestamps are not part of the digest. Files are streamed through the hasher,
//! so a large file costs time, not memory.
//!
//! Knows nothing of builds or Terraform.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Folder names skipped at any depth.
pub const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", "CVS"];

/// Most per-file digests kept in a record for one input (larger trees keep only the total).
pub(super) const MAX_LISTED_FILES: usize = 2000;

/// A problem reading an input.
#[derive(Debug)]
pub(super) struct ReadError {
    pub(super) path: PathBuf,
    pub(super) source: std::io::Error,
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError {
        path: path.to_owned(),
        source,
    }
}

/// sha256 (hex) of bytes.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 (hex) of a file's content, streamed.
pub(super) fn file_sha256(path: &Path) -> Result<String, ReadError> {
    let mut file = std::fs::File::open(path).map_err(read_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(read_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The digest of a file or a directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TreeDigest {
    /// sha256 over the sorted (path, kind, content digest) list
    pub(super) digest: String,
    /// relative path → content sha256 (`link:<target>` for symlinks)
    pub(super) files: BTreeMap<String, String>,
}

/// Digest of `path`: a single file (listed under its file name) or a directory tree.
pub(super) fn tree_digest(path: &Path) -> Result<TreeDigest, ReadError> {
    let meta = std::fs::metadata(path).map_err(read_err(path))?;
    let mut files = BTreeMap::new();
    if meta.is_dir() {
        walk(path, Path::new(""), &mut files)?;
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(name, file_sha256(path)?);
    }
    Ok(TreeDigest {
        digest: digest_of_listing(&files),
        files,
    })
}

/// Add every file below `dir` (relative to the root as `rel`), in name order.
fn walk(dir: &Path, rel: &Path, files: &mut BTreeMap<String, String>) -> Result<(), ReadError> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(read_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let p = entry.path();
        let name = entry.file_name();
        let rel = rel.join(&name);
        let ft = entry.file_type().map_err(read_err(&p))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&p).map_err(read_err(&p))?;
            files.insert(
                rel.to_string_lossy().into_owned(),
                format!("link:{}", target.display()),
            );
        } else if ft.is_dir() {
            if !VCS_DIRS.iter().any(|v| name == std::ffi::OsStr::new(v)) {
                walk(&p, &rel, files)?;
            }
        } else if ft.is_file() {
            files.insert(rel.to_string_lossy().into_owned(), file_sha256(&p)?);
        }
    }
    Ok(())
}

/// Allocated bytes of a file or a tree (symlinks not followed; unreadable parts count 0).
pub(super) fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = m.blocks().saturating_mul(512);
    if !m.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .map(|r| r.flatten().map(|e| allocated(&e.path())).sum::<u64>())
        .unwrap_or(0);
    own + children
}

/// sha256 over `path\0digest\n` lines in path order.
pub(super) fn digest_of_listing(files: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (p, d) in files {
        hasher.update(p.as_bytes());
        hasher.update([0]);
        hasher.update(d.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_digest_sees_nested_files_and_skips_vcs_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("scripts/deep")).unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join("main.pkr.hcl"), "a").unwrap();
        std::fs::write(root.join("scripts/deep/setup.sh"), "echo 1").unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref: x").unwrap();
        let before = tree_digest(root).unwrap();
        assert!(before.files.contains_key("scripts/deep/setup.sh"));
        assert!(!before.files.keys().any(|k| k.starts_with(".git")));

        std::fs::write(root.join(".git/HEAD"), "ref: y").unwrap();
        assert_eq!(tree_digest(root).unwrap(), before, "VCS folder counted");

        std::fs::write(root.join("scripts/deep/setup.sh"), "echo 2").unwrap();
        assert_ne!(tree_digest(root).unwrap().digest, before.digest);
    }
}
