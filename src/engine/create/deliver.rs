//! Placing the cached files at `artifact_local_path` (hard link or copy, atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::cache::BuildRecord;
use crate::engine::error::EngineError;
use crate::engine::spec::ImageSpec;

/// Where each cached file is delivered: the entry itself, or next to `artifact_local_path`.
pub(super) struct Delivered {
    /// record file name → local path
    pub(super) paths: BTreeMap<String, PathBuf>,
}

pub(super) async fn deliver(
    spec: &ImageSpec,
    record: &BuildRecord,
    entry: &Path,
) -> Result<Delivered, EngineError> {
    let mut paths = BTreeMap::new();
    let Some(target) = &spec.artifact_local_path else {
        for f in &record.files {
            paths.insert(f.name.clone(), entry.join(&f.name));
        }
        return Ok(Delivered { paths });
    };
    let target = if target.is_absolute() {
        target.clone()
    } else {
        std::env::current_dir()
            .map_err(|e| EngineError::io("current directory", e))?
            .join(target)
    };
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    let primary_ext = format!(".{}", spec.artifact_format.as_str());
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file_name
        .strip_suffix(&primary_ext)
        .unwrap_or(&file_name)
        .to_owned();
    for (i, f) in record.files.iter().enumerate() {
        let dest = if i == 0 {
            target.clone()
        } else {
            dir.join(format!("{stem}.{}", f.format))
        };
        place(&entry.join(&f.name), &dest, f.size)?;
        paths.insert(f.name.clone(), dest);
    }
    Ok(Delivered { paths })
}

/// Put `src` at `dest` atomically (hard link when possible, else copy), unless it is already there.
fn place(src: &Path, dest: &Path, size: u64) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(a), Ok(b)) = (std::fs::metadata(src), std::fs::metadata(dest)) {
        if a.ino() == b.ino() && a.dev() == b.dev() {
            return Ok(());
        }
    }
    let dir = dest.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.hyops-tmp-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EngineError::io(format!("copying {} to {}", src.display(), tmp.display()), e)
        })?;
    }
    let copied = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    if copied != size {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io(
            format!("delivering {}", dest.display()),
            std::io::Error::other(format!("size {copied} != recorded {size}")),
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(format!("renaming into {}", dest.display()), e)
    })
}
