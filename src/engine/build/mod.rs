//! Build methods: turn a verified ISO into one local disk image. One small trait, [`Builder`],
//! and three implementations: [`VyosVmImages`] (Ansible playbook), [`Packer`] (two-stage qemu
//! templates packaged in the binary) and [`CommandBuilder`] (an operator's script).
//!
//! Builders spawn only through [`crate::engine::supervisor`]; they know nothing about caching,
//! publishing or Terraform. Each gets the DESIGN §2 environment contract plus `build.environment`
//! in [`BuildContext::env`] and must leave its image at [`BuildContext::output_path`].

mod command;
mod contract_env;
mod packer;
mod settings;
mod vyos_vm_images;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::engine::progress::Progress;
use crate::engine::spec::BuildMethod;
use crate::engine::supervisor::SupervisorError;

pub use command::CommandBuilder;
pub use contract_env::{contract_env, ContractInputs};
pub use packer::{
    materialize_packaged_templates, required_template_variables, PackagedTemplates, Packer,
    ENV_CC_VYOS_PATH, PACKAGED_VARS_FILE, STAGE1_TEMPLATE, STAGE2_TEMPLATE,
};
pub use settings::{BuildSettings, SettingsError, DEFAULT_DISK_SIZE_GB};
pub use vyos_vm_images::VyosVmImages;

/// The hardware accelerator a VM-based builder should use (decided by preflight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accelerator {
    /// `/dev/kvm`
    #[default]
    Kvm,
    /// software emulation (only with `allow_tcg`)
    Tcg,
}

impl Accelerator {
    /// qemu / packer spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// Everything a builder needs for one run.
pub struct BuildContext<'a> {
    /// resolved `build` block
    pub settings: &'a BuildSettings,
    /// the verified local ISO
    pub iso_path: &'a Path,
    /// the ISO's sha256 (hex)
    pub iso_sha256: &'a str,
    /// where the image must end up (`HYOPS_VYOS_ARTIFACT_LOCAL_PATH`)
    pub output_path: &'a Path,
    /// a private scratch directory for this build (exists, 0700)
    pub work_dir: &'a Path,
    /// the build log (appended to)
    pub log_path: &'a Path,
    /// contract variables plus `build.environment`
    pub env: &'a BTreeMap<String, String>,
    /// accelerator for VM-based builders
    pub accelerator: Accelerator,
    /// prefix privileged commands with `sudo -n` (not root, passwordless sudo available)
    pub use_sudo: bool,
    /// cancels the build (create's timeout or the caller)
    pub cancel: &'a CancellationToken,
    /// progress sink
    pub progress: &'a dyn Progress,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// a child process failed, was cancelled or timed out (log tail inside)
    #[error(transparent)]
    Process(#[from] SupervisorError),
    /// the builder exited 0 but left no image where it had to
    #[error("{builder} finished but produced no image at {path}")]
    MissingOutput {
        /// which builder
        builder: &'static str,
        /// where the image was expected
        path: PathBuf,
    },
    /// a template or setting was refused before anything ran
    #[error("{0}")]
    Refused(String),
    /// a filesystem step failed
    #[error("{context}: {source}")]
    Io {
        /// what was being done
        context: String,
        /// the OS error
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BuildError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the build stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BuildError::Process(e) if e.is_cancelled())
    }
}

/// One build method.
pub trait Builder: Send + Sync {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;
    /// Build the image; on success it is at `ctx.output_path`, which is returned.
    fn build<'a>(&'a self, ctx: &'a BuildContext<'a>)
        -> BoxFuture<'a, Result<PathBuf, BuildError>>;
}

/// The builder for a method.
pub fn builder_for(method: BuildMethod) -> Box<dyn Builder> {
    match method {
        BuildMethod::VyosVmImages => Box::new(VyosVmImages),
        BuildMethod::Packer => Box::new(Packer),
        BuildMethod::Command => Box::new(CommandBuilder),
    }
}

/// Move `from` to `to` (rename, or copy+remove across filesystems).
pub(crate) async fn move_file(from: &Path, to: &Path) -> Result<(), BuildError> {
    if tokio::fs::rename(from, to).await.is_ok() {
        return Ok(());
    }
    tokio::fs::copy(from, to).await.map_err(|e| {
        BuildError::io(format!("copying {} to {}", from.display(), to.display()), e)
    })?;
    tokio::fs::remove_file(from)
        .await
        .map_err(|e| BuildError::io(format!("removing {}", from.display()), e))
}

/// Refuse when `path` is not a non-empty regular file.
pub(crate) async fn expect_output(builder: &'static str, path: &Path) -> Result<(), BuildError> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(()),
        _ => Err(BuildError::MissingOutput {
            builder,
            path: path.to_owned(),
        }),
    }
}
