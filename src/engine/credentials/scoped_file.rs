//! [`ScopedSecretFile`]: a secret written to a 0600 file inside a fresh 0700 directory, for a child
//! process that needs a credential by path (`HYOPS_VYOS_GCS_SA_JSON_FILE`). The file is overwritten
//! and removed, and its directory removed, when the value is dropped: on success, error, panic
//! unwinding or a cancelled future alike. A SIGKILL of the whole provider cannot be covered.
//!
//! The file is created and, at cleanup, reopened with `O_NOFOLLOW` and checked to be the same
//! regular file: a child that swapped it for a symlink cannot make the cleanup overwrite the
//! link's target.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A 0600 secret file in a 0700 temp directory, removed on drop.
pub struct ScopedSecretFile {
    dir: Option<TempDir>,
    path: PathBuf,
    len: usize,
    /// (device, inode) of the file written
    id: (u64, u64),
}

impl std::fmt::Debug for ScopedSecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedSecretFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ScopedSecretFile {
    /// Writes `contents` to `<new 0700 dir under the system temp dir>/<file_name>` with mode 0600.
    pub fn create(file_name: &str, contents: &[u8]) -> io::Result<Self> {
        Self::create_in(&std::env::temp_dir(), file_name, contents)
    }

    /// Same as [`ScopedSecretFile::create`], with the directory created under `parent`.
    pub fn create_in(parent: &Path, file_name: &str, contents: &[u8]) -> io::Result<Self> {
        if file_name.is_empty() || file_name.contains('/') || file_name.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "secret file name must be a plain file name",
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("hyops-secret-")
            .tempdir_in(parent)?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let path = dir.path().join(file_name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        // The umask cannot widen 0600, but make the mode explicit anyway.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        let meta = file.metadata()?;
        Ok(ScopedSecretFile {
            dir: Some(dir),
            path,
            len: contents.len(),
            id: (meta.dev(), meta.ino()),
        })
    }

    /// Where the secret is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Overwrites and removes the file and its directory now (also done on drop).
    pub fn remove(mut self) -> io::Result<()> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> io::Result<()> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path);
        if let Ok(mut f) = opened {
            let same = f
                .metadata()
                .map(|m| m.is_file() && (m.dev(), m.ino()) == self.id)
                .unwrap_or(false);
            if same {
                let _ = f.write_all(&vec![0u8; self.len]);
                let _ = f.sync_all();
            }
        }
        dir.close()
    }
}

impl Drop for ScopedSecretFile {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove secret file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_does_not_follow_a_symlink_swapped_in_for_the_file() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let f = ScopedSecretFile::create("sa.json", b"secret!").unwrap();
        let path = f.path().to_owned();
        let dir = path.parent().unwrap().to_owned();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        drop(f);
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(!dir.exists());
    }

    #[test]
    fn file_is_0600_in_0700_dir_and_removed_on_drop() {
        let f = ScopedSecretFile::create("sa.json", b"{}").unwrap();
        let path = f.path().to_path_buf();
        let dir = path.parent().unwrap().to_path_buf();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(f);
        assert!(!path.exists());
        assert!(!dir.exists());
    }
}
