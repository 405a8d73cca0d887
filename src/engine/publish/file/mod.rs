//! A local directory as an object repository. Writes are atomic (temp file in the target
//! directory, fsync, no-clobber rename, directory fsync) and never leave the root: names are
//! validated and the resolved parent directory must stay under the canonical root (symlinks out
//! are refused). `head` hashes the file (SHA-256) to report its checksum, which costs a full read.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::layout::{encode_segments, validate_object_name};
use super::store::{
    created_outcome, existing_outcome, PutOutcome, RemoteObject, Store, UploadSource,
};
use super::PublishError;
use crate::engine::spec::Backend;

/// Builds a [`FileStore`].
#[derive(Debug, Clone, Default)]
pub struct FileBuilder {
    root: Option<PathBuf>,
    public_base_url: Option<String>,
}

impl FileBuilder {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The repository directory (`publish.bucket`); absolute, created if missing.
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// `public_base_url`: URLs become this plus the name instead of `file://`.
    pub fn with_public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self
    }

    /// Validates the root (absolute, no `..`, no control characters), creates and canonicalizes it.
    pub fn build(self) -> Result<FileStore, PublishError> {
        let root = self
            .root
            .ok_or_else(|| PublishError::Config("file: no directory (publish.bucket)".into()))?;
        let text = root.to_string_lossy();
        if !root.is_absolute()
            || root
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            || text.chars().any(char::is_control)
        {
            return Err(PublishError::InvalidName {
                name: text.escape_debug().to_string(),
                reason:
                    "file repository must be an absolute path without `..` or control characters",
            });
        }
        fs::create_dir_all(&root).map_err(|e| PublishError::local(&root, e))?;
        let root = fs::canonicalize(&root).map_err(|e| PublishError::local(&root, e))?;
        let public_base_url = self
            .public_base_url
            .filter(|b| !b.trim().is_empty())
            .map(|b| b.trim().trim_end_matches('/').to_owned());
        Ok(FileStore {
            label: file_url(&root),
            root,
            public_base_url,
        })
    }
}

/// A directory used as an object repository.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    label: String,
    public_base_url: Option<String>,
}

fn file_url(p: &Path) -> String {
    url::Url::from_file_path(p)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| format!("file://{}", p.display()))
}

impl FileStore {
    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `name`, validated; the existing part of its parent must resolve inside root.
    fn path(&self, name: &str) -> Result<PathBuf, PublishError> {
        validate_object_name(name)?;
        let path = self.root.join(name);
        let mut probe = path.parent().map(Path::to_path_buf);
        while let Some(p) = probe {
            if p.exists() {
                let real = fs::canonicalize(&p).map_err(|e| PublishError::local(&p, e))?;
                if !real.starts_with(&self.root) {
                    return Err(PublishError::InvalidName {
                        name: name.escape_debug().to_string(),
                        reason: "resolves outside the file repository (symlink?)",
                    });
                }
                break;
            }
            probe = p.parent().map(Path::to_path_buf);
        }
        if fs::symlink_metadata(&path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err(PublishError::InvalidName {
                name: name.escape_debug().to_string(),
                reason: "is a symlink in the file repository",
            });
        }
        Ok(path)
    }

    fn remote(name: &str, path: &Path) -> Result<Option<RemoteObject>, PublishError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PublishError::local(path, e)),
        };
        if !meta.is_file() {
            return Err(PublishError::local(
                path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let mut f = fs::File::open(path).map_err(|e| PublishError::local(path, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(|e| PublishError::local(path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        use std::os::unix::fs::MetadataExt;
        Ok(Some(RemoteObject {
            name: name.to_owned(),
            size: meta.len(),
            crc32c: None,
            md5: None,
            sha256: Some(hex::encode(h.finalize())),
            etag: None,
            generation: Some(format!("{}.{}", meta.mtime(), meta.mtime_nsec())),
            ..Default::default()
        }))
    }

    fn write_atomic(
        &self,
        path: &Path,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<bool, PublishError> {
        let parent = path
            .parent()
            .ok_or_else(|| PublishError::Config("file: object has no parent".into()))?;
        fs::create_dir_all(parent).map_err(|e| PublishError::local(parent, e))?;
        // Re-check after creating directories: nothing may resolve outside the root.
        let real = fs::canonicalize(parent).map_err(|e| PublishError::local(parent, e))?;
        if !real.starts_with(&self.root) {
            return Err(PublishError::InvalidName {
                name: path.to_string_lossy().escape_debug().to_string(),
                reason: "resolves outside the file repository (symlink?)",
            });
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".hyops-upload-")
            .tempfile_in(&real)
            .map_err(|e| PublishError::local(&real, e))?;
        let mut input = fs::File::open(src.path).map_err(|e| PublishError::local(src.path, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1024 * 1024];
        let mut n_total = 0u64;
        loop {
            if cancel.is_cancelled() {
                return Err(PublishError::Cancelled);
            }
            let n = input
                .read(&mut buf)
                .map_err(|e| PublishError::local(src.path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            n_total += n as u64;
            tmp.write_all(&buf[..n])
                .map_err(|e| PublishError::local(tmp.path(), e))?;
        }
        let digest = hex::encode(h.finalize());
        if n_total != src.size || !digest.eq_ignore_ascii_case(src.sha256) {
            return Err(PublishError::local(
                src.path,
                std::io::Error::other("content changed since hashing (size or sha256 differ)"),
            ));
        }
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| PublishError::local(tmp.path(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| PublishError::local(tmp.path(), e))?;
        let target = real.join(path.file_name().unwrap_or_default());
        match tmp.persist_noclobber(&target) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(PublishError::local(&target, e.error)),
        }
        if let Ok(d) = fs::File::open(&real) {
            let _ = d.sync_all();
        }
        Ok(true)
    }
}

#[async_trait]
impl Store for FileStore {
    fn backend(&self) -> Backend {
        Backend::File
    }

    async fn put_file_if_absent(
        &self,
        name: &str,
        src: &UploadSource<'_>,
        cancel: &CancellationToken,
    ) -> Result<PutOutcome, PublishError> {
        let path = self.path(name)?;
        let this = self.clone();
        let (n, p) = (name.to_owned(), path.clone());
        let existing = blocking(move || Self::remote(&n, &p)).await?;
        if let Some(existing) = existing {
            return existing_outcome(&this.label, name, existing, src);
        }
        let owned = OwnedSource::from(src);
        let cancel2 = cancel.clone();
        let p = path.clone();
        let created = blocking(move || this.write_atomic(&p, &owned.as_source(), &cancel2)).await?;
        let (n, p) = (name.to_owned(), path.clone());
        let remote = blocking(move || Self::remote(&n, &p))
            .await?
            .ok_or_else(|| PublishError::NotFound {
                store: self.label.clone(),
                object: name.to_owned(),
            })?;
        if !created {
            return existing_outcome(&self.label, name, remote, src);
        }
        created_outcome(&self.label, name, remote, src)
    }

    async fn head(&self, name: &str) -> Result<RemoteObject, PublishError> {
        let path = self.path(name)?;
        let n = name.to_owned();
        blocking(move || Self::remote(&n, &path))
            .await?
            .ok_or_else(|| PublishError::NotFound {
                store: self.label.clone(),
                object: name.to_owned(),
            })
    }

    async fn delete(&self, name: &str) -> Result<bool, PublishError> {
        let path = self.path(name)?;
        let root = self.root.clone();
        blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(PublishError::local(&path, e)),
            }
            // Remove now-empty directories up to (not including) the root.
            let mut dir = path.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == root || !d.starts_with(&root) || fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
            Ok(true)
        })
        .await
    }

    async fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, PublishError> {
        let path = self.path(name)?;
        let label = self.label.clone();
        let n = name.to_owned();
        blocking(move || {
            let f = fs::File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => PublishError::NotFound {
                    store: label.clone(),
                    object: n.clone(),
                },
                _ => PublishError::local(&path, e),
            })?;
            let mut out = Vec::new();
            f.take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| PublishError::local(&path, e))?;
            if out.len() as u64 > limit {
                return Err(PublishError::Refused {
                    store: label,
                    detail: format!("{n} is larger than {limit} bytes"),
                });
            }
            Ok(out)
        })
        .await
    }

    fn public_url(&self, name: &str) -> String {
        match &self.public_base_url {
            Some(b) => format!("{b}/{}", encode_segments(name)),
            None => self.storage_uri(name),
        }
    }

    fn storage_uri(&self, name: &str) -> String {
        file_url(&self.root.join(name))
    }
}

struct OwnedSource {
    path: PathBuf,
    size: u64,
    sha256: String,
    crc32c: u32,
    md5: Option<[u8; 16]>,
    content_type: String,
}

impl OwnedSource {
    fn from(s: &UploadSource<'_>) -> Self {
        OwnedSource {
            path: s.path.to_path_buf(),
            size: s.size,
            sha256: s.sha256.to_owned(),
            crc32c: s.crc32c,
            md5: s.md5,
            content_type: s.content_type.to_owned(),
        }
    }

    fn as_source(&self) -> UploadSource<'_> {
        UploadSource {
            path: &self.path,
            size: self.size,
            sha256: &self.sha256,
            crc32c: self.crc32c,
            md5: self.md5,
            content_type: &self.content_type,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PublishError> + Send + 'static,
) -> Result<T, PublishError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PublishError::Config(format!("file backend task failed: {e}")))?
}
