//! [`ArtifactHome`]: the repository (backend + bucket/container/root) and the layout directory
//! `<prefix><key>/<version>/<sha256[..16]>/` one published artifact lives in, and the
//! confinement check every refresh, import and delete goes through: a storage URI is accepted
//! only when it names an object directly in that directory of that repository.
//!
//! Knows storage URI shapes and the layout; knows nothing of Terraform or of references.

use std::path::{Component, Path, PathBuf};

use super::super::file::FileBuilder;
use super::super::layout::{validate_object_name, validate_prefix, ObjectLayout};
use super::super::store::Store;
use super::super::target::StoreSettings;
use super::super::PublishError;
use crate::engine::spec::Backend;

/// A repository: where a publish target writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repository {
    /// `gs://BUCKET`
    Gcs {
        /// the bucket
        bucket: String,
    },
    /// `s3://BUCKET`
    S3 {
        /// the bucket
        bucket: String,
    },
    /// `az://ACCOUNT/CONTAINER`
    Azure {
        /// the storage account
        account: String,
        /// the container
        container: String,
    },
    /// a directory (`publish.bucket` of the `file` backend)
    File {
        /// the repository root
        root: PathBuf,
    },
}

impl Repository {
    /// The backend.
    pub fn backend(&self) -> Backend {
        match self {
            Repository::Gcs { .. } => Backend::Gcs,
            Repository::S3 { .. } => Backend::S3,
            Repository::Azure { .. } => Backend::Azure,
            Repository::File { .. } => Backend::File,
        }
    }

    /// The bucket, container or root directory (what `publish.bucket` says).
    pub fn bucket(&self) -> String {
        match self {
            Repository::Gcs { bucket } | Repository::S3 { bucket } => bucket.clone(),
            Repository::Azure { container, .. } => container.clone(),
            Repository::File { root } => root.display().to_string(),
        }
    }
}

/// Where one published artifact lives: its repository and its layout directory in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactHome {
    repo: Repository,
    /// `<prefix><key>/<version>/<sha256[..16]>/`
    dir: String,
    /// `<prefix>`
    prefix: String,
}

fn refused(uri: &str, why: &str) -> PublishError {
    PublishError::Refused {
        store: crate::engine::publish::redact_url(uri),
        detail: format!("outside the artifact's repository: {why}"),
    }
}

/// `..` anywhere in the raw text (URL parsers resolve it away before anyone could see it).
fn has_dot_segment(raw: &str) -> bool {
    let path = raw.split(['?', '#']).next().unwrap_or(raw);
    path.split('/')
        .any(|s| s == ".." || s == "." || s.eq_ignore_ascii_case("%2e%2e"))
}

/// Splits a storage URI into its repository (for `file://`, with `root: /` — the caller
/// decides the root) and object name / absolute path.
fn split_uri(uri: &str) -> Result<(Repository, String), PublishError> {
    if has_dot_segment(uri.split_once("://").map(|(_, r)| r).unwrap_or(uri)) {
        return Err(refused(uri, "contains a `.` or `..` segment"));
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| refused(uri, "not a storage URI"))?;
    match scheme {
        "gs" | "s3" => {
            let (bucket, name) = rest
                .split_once('/')
                .ok_or_else(|| refused(uri, "expected SCHEME://BUCKET/OBJECT"))?;
            validate_object_name(name)?;
            let bucket = bucket.to_owned();
            let repo = if scheme == "gs" {
                Repository::Gcs { bucket }
            } else {
                Repository::S3 { bucket }
            };
            Ok((repo, name.to_owned()))
        }
        "az" => {
            let mut parts = rest.splitn(3, '/');
            let (Some(account), Some(container), Some(name)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(refused(uri, "expected az://ACCOUNT/CONTAINER/OBJECT"));
            };
            validate_object_name(name)?;
            Ok((
                Repository::Azure {
                    account: account.to_owned(),
                    container: container.to_owned(),
                },
                name.to_owned(),
            ))
        }
        "file" => {
            let path = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| refused(uri, "not an absolute file URL"))?;
            Ok((
                Repository::File {
                    root: PathBuf::from("/"),
                },
                path.to_string_lossy().into_owned(),
            ))
        }
        _ => Err(refused(uri, "not a gs://, s3://, az:// or file:// URI")),
    }
}

/// A path with no `.`/`..` components, absolute.
fn plain_absolute(p: &Path) -> bool {
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

impl ArtifactHome {
    /// The home of the artifact whose primary object is at `primary_uri`, identified by its
    /// key, version and SHA-256 (the layout names it). For `file://`, `file_root` is the
    /// repository directory when known (the `publish.bucket` of the instance); otherwise the
    /// directory above the layout is taken (a prefix cannot be told apart from the root there).
    pub fn locate(
        primary_uri: &str,
        key: &str,
        version: &str,
        sha256: &str,
        file_root: Option<&Path>,
    ) -> Result<ArtifactHome, PublishError> {
        let (repo, object) = split_uri(primary_uri)?;
        let tail = ObjectLayout::new("", key, version, sha256)?;
        let tail_dir = tail.dir().to_owned();
        let file_name = object.rsplit('/').next().unwrap_or_default();
        let expected_name_start = format!("{key}.");
        if !file_name.starts_with(&expected_name_start) {
            return Err(refused(
                primary_uri,
                "the object is not named after the artifact key",
            ));
        }
        let dir_end = object.len() - file_name.len();
        let obj_dir = &object[..dir_end];
        let Some(lead) = obj_dir.strip_suffix(tail_dir.as_str()) else {
            return Err(refused(
                primary_uri,
                "the object is not in the <prefix><key>/<version>/<sha256[..16]>/ layout",
            ));
        };
        match repo {
            Repository::File { .. } => {
                // lead = "<root>/<prefix>" as an absolute path
                let lead_path = PathBuf::from(lead);
                let root = match file_root {
                    // the store canonicalizes its root, and so do the URIs it hands out
                    Some(r) => std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()),
                    None => lead_path.clone(),
                };
                if !plain_absolute(&root) || !plain_absolute(&lead_path) {
                    return Err(refused(primary_uri, "not a plain absolute path"));
                }
                let Ok(prefix_path) = lead_path.strip_prefix(&root) else {
                    return Err(refused(
                        primary_uri,
                        &format!("not under the repository root {}", root.display()),
                    ));
                };
                let mut prefix = prefix_path.to_string_lossy().into_owned();
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                validate_prefix(&prefix)?;
                Ok(ArtifactHome {
                    dir: format!("{prefix}{tail_dir}"),
                    prefix,
                    repo: Repository::File { root },
                })
            }
            repo => {
                validate_prefix(lead)?;
                Ok(ArtifactHome {
                    dir: obj_dir.to_owned(),
                    prefix: lead.to_owned(),
                    repo,
                })
            }
        }
    }

    /// The repository.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The layout directory (ends in `/`), relative to the repository.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The `publish.prefix` the artifact was published under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object name of `uri` when it is directly in this artifact's directory of this
    /// repository; refused otherwise (another bucket, another directory, `..`, a deeper level).
    pub fn object_of(&self, uri: &str) -> Result<String, PublishError> {
        let (repo, object) = split_uri(uri)?;
        let name = match (&self.repo, repo) {
            (Repository::File { root }, Repository::File { .. }) => {
                let path = PathBuf::from(&object);
                let Ok(rel) = path.strip_prefix(root) else {
                    return Err(refused(
                        uri,
                        &format!("not under the repository root {}", root.display()),
                    ));
                };
                rel.to_string_lossy().into_owned()
            }
            (mine, theirs) if *mine == theirs => object,
            (mine, _) => {
                return Err(refused(
                    uri,
                    &format!("not in {} {}", mine.backend().as_str(), mine.bucket()),
                ))
            }
        };
        validate_object_name(&name)?;
        match name.strip_prefix(self.dir.as_str()) {
            Some(file) if !file.is_empty() && !file.contains('/') => Ok(name),
            _ => Err(refused(
                uri,
                &format!("not directly in the artifact's directory {}", self.dir),
            )),
        }
    }

    /// Checks the repository against the instance's configured `publish` block (when its
    /// values are known): backend, bucket and prefix must agree.
    pub fn check_configured(
        &self,
        backend: Option<Backend>,
        bucket: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<(), PublishError> {
        let what = |detail: String| PublishError::Refused {
            store: format!("{} {}", self.repo.backend().as_str(), self.repo.bucket()),
            detail: format!("the recorded artifact is outside the configured repository: {detail}"),
        };
        if let Some(b) = backend {
            if b != self.repo.backend() {
                return Err(what(format!("publish.backend is {}", b.as_str())));
            }
        }
        if let Some(b) = bucket.map(str::trim).filter(|b| !b.is_empty()) {
            let same = match &self.repo {
                Repository::File { root } => {
                    let b = std::fs::canonicalize(b).unwrap_or_else(|_| PathBuf::from(b));
                    b == *root
                }
                other => other.bucket() == b,
            };
            if !same {
                return Err(what(format!("publish.bucket is {b}")));
            }
        }
        if let Some(p) = prefix {
            if p != self.prefix {
                return Err(what(format!("publish.prefix is {p:?}")));
            }
        }
        Ok(())
    }

    /// The store of this repository (rooted at the repository, so the `file` backend's
    /// symlink checks apply to the whole root).
    pub fn store(&self, settings: &StoreSettings) -> Result<Box<dyn Store>, PublishError> {
        match &self.repo {
            Repository::Gcs { bucket } => {
                settings.gcs_store(bucket, settings.credentials.resolve_gcs()?, None)
            }
            Repository::S3 { bucket } => settings.s3_store(bucket, None),
            Repository::Azure { account, container } => {
                settings.azure_store(Some(account), container, None)
            }
            Repository::File { root } => Ok(Box::new(FileBuilder::new().with_root(root).build()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn gcs_home_confines_to_the_layout_directory() {
        let d = "abababababababab";
        let home = ArtifactHome::locate(
            &format!("gs://b/img/k/1.5/{d}/k.qcow2"),
            "k",
            "1.5",
            &sha(),
            None,
        )
        .unwrap();
        assert_eq!(home.dir(), format!("img/k/1.5/{d}/"));
        assert_eq!(home.prefix(), "img/");
        home.object_of(&format!("gs://b/img/k/1.5/{d}/manifest.json"))
            .unwrap();
        for bad in [
            format!("gs://other/img/k/1.5/{d}/manifest.json"),
            format!("s3://b/img/k/1.5/{d}/manifest.json"),
            format!("gs://b/img/k/1.5/{d}/refs/x.json"),
            format!("gs://b/img/k/1.5/{d}/../{d}/k.qcow2"),
            "gs://b/elsewhere/k.qcow2".to_string(),
        ] {
            assert!(home.object_of(&bad).is_err(), "{bad} accepted");
        }
        assert!(home
            .check_configured(Some(Backend::Gcs), Some("b"), Some("img/"))
            .is_ok());
        assert!(home
            .check_configured(Some(Backend::Gcs), Some("c"), None)
            .is_err());
        assert!(home.check_configured(None, None, Some("")).is_err());
    }

    #[test]
    fn file_home_uses_the_configured_root() {
        let d = "abababababababab";
        let uri = format!("file:///srv/repo/pre/k/1.5/{d}/k.qcow2");
        let home =
            ArtifactHome::locate(&uri, "k", "1.5", &sha(), Some(Path::new("/srv/repo"))).unwrap();
        assert_eq!(home.prefix(), "pre/");
        assert_eq!(home.dir(), format!("pre/k/1.5/{d}/"));
        home.object_of(&format!("file:///srv/repo/pre/k/1.5/{d}/manifest.json"))
            .unwrap();
        assert!(home.object_of("file:///etc/passwd").is_err());
        assert!(home
            .object_of(&format!("file:///srv/repo/pre/k/1.5/{d}/../../../../etc/x"))
            .is_err());
        // without a configured root the directory above the layout is the root
        let home = ArtifactHome::locate(&uri, "k", "1.5", &sha(), None).unwrap();
        assert_eq!(home.prefix(), "");
        assert!(ArtifactHome::locate(&uri, "k", "1.5", &sha(), Some(Path::new("/other"))).is_err());
        assert!(ArtifactHome::locate(
            &format!("file:///srv/x/{d}/k.qcow2"),
            "k",
            "1.5",
            &sha(),
            None
        )
        .is_err());
    }
}
