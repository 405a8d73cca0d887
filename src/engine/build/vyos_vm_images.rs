//! `method = "vyos-vm-images"`: `ansible-playbook qemu.yml` from a checkout of
//! vyos/vyos-vm-images (`build.vyos_vm_images_dir` / `HYOPS_VYOS_VM_IMAGES_DIR`).
//!
//! The playbook's documented extra vars are passed (`iso_local`, `disk_size`, `cloud_init`,
//! `cloud_init_ds`, `guest_agent`, `grub_console`); its scratch and output paths (`vyos_raw_img`,
//! default `/tmp/vyos_raw_image.img`, and `vyos_qemu_img`, default `/tmp/vyos_qemu_image.qcow2`)
//! are overridden with extra vars (highest Ansible precedence) so the image lands in this build's
//! work directory, from where it is moved to the artifact path. The playbook needs root: when not
//! root, it runs under `sudo -n` (preflight checked that works).
//!
//! Under sudo the child environment is the supervisor's allow-listed one (see
//! [`crate::engine::supervisor`]) and root gets exactly those variables: their **names** (never
//! values) are listed in `--preserve-env=NAME,…`, minus the identity and search-path variables
//! (`HOME`, `USER`, `LOGNAME`, `SHELL`, `MAIL`, `PATH`), which sudo sets for root — a root
//! playbook must not write into the invoking user's home or run binaries from the user's `PATH`.
//! For the same reason `ansible-playbook` is resolved to an absolute path on the child's `PATH`
//! first (sudo's `secure_path` would not find a user-installed one). The spec is marked
//! [`CommandSpec::sudo_group`], so cancel and timeout still end the root-owned tree.

use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{expect_output, move_file, BuildContext, BuildError, Builder};
use crate::engine::progress::Stage;
use crate::engine::supervisor::{self, CommandSpec, EnvName};

/// The `vyos-vm-images` build method.
#[derive(Debug, Default, Clone, Copy)]
pub struct VyosVmImages;

/// The playbook run from the checkout.
pub(crate) const PLAYBOOK: &str = "qemu.yml";

impl Builder for VyosVmImages {
    fn name(&self) -> &'static str {
        "vyos-vm-images"
    }

    fn build<'a>(
        &'a self,
        ctx: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<PathBuf, BuildError>> {
        Box::pin(async move {
            let s = ctx.settings;
            let dir = s.vyos_vm_images_dir.clone().ok_or_else(|| {
                BuildError::Refused(
                    "build.vyos_vm_images_dir (or HYOPS_VYOS_VM_IMAGES_DIR) must point at a vyos-vm-images checkout"
                        .to_owned(),
                )
            })?;
            let raw_img = ctx.work_dir.join("vyos_raw_image.img");
            let qemu_img = ctx.work_dir.join("vyos_qemu_image.qcow2");
            let cloud_init_ds = if s.cloud_init {
                s.cloud_init_datasources.join(",")
            } else {
                String::new()
            };
            let extra = [
                format!("iso_local={}", ctx.iso_path.display()),
                format!("disk_size={}", s.disk_size_gb),
                format!("cloud_init={}", s.cloud_init),
                format!("cloud_init_ds={cloud_init_ds}"),
                format!("guest_agent={}", s.guest_agent),
                format!("grub_console={}", s.console_str()),
                format!("vyos_raw_img={}", raw_img.display()),
                format!("vyos_qemu_img={}", qemu_img.display()),
            ];
            let program = if ctx.use_sudo {
                "sudo"
            } else {
                "ansible-playbook"
            };
            let mut spec = CommandSpec::program(program, ctx.log_path)
                .cwd(&dir)
                .envs(ctx.env.clone())
                .env("ANSIBLE_NOCOLOR", "1");
            if ctx.use_sudo {
                let env = spec.effective_env();
                let playbook =
                    find_on_path("ansible-playbook", env.get("PATH").map(String::as_str))
                        .ok_or_else(|| {
                            BuildError::Refused(
                                "ansible-playbook was not found on PATH (needed by vyos-vm-images)"
                                    .to_owned(),
                            )
                        })?;
                spec = spec
                    .args(sudo_args(env.keys().map(String::as_str)))
                    .arg(playbook)
                    .sudo_group();
            }
            spec = spec.arg(PLAYBOOK);
            for e in &extra {
                spec = spec.arg("-e").arg(e);
            }
            ctx.progress.message(
                Stage::Build,
                &format!("ansible-playbook {PLAYBOOK} in {}", dir.display()),
            );
            supervisor::run(&spec, ctx.cancel).await?;
            expect_output("vyos-vm-images", &qemu_img).await?;
            move_file(&qemu_img, ctx.output_path).await?;
            let _ = tokio::fs::remove_file(&raw_img).await;
            Ok(ctx.output_path.to_owned())
        })
    }
}

/// Variables sudo sets for the target user; never preserved from the invoking user.
const SUDO_OWN_VARS: &[&str] = &["HOME", "USER", "LOGNAME", "SHELL", "MAIL", "PATH"];

/// `sudo`'s arguments before the command: non-interactive, and the names (only) of the child
/// environment to keep for root.
pub(crate) fn sudo_args<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let keep: Vec<&str> = names
        .filter(|n| !SUDO_OWN_VARS.contains(n))
        .filter(|n| EnvName::new(*n).is_ok())
        .collect();
    let mut args = vec!["-n".to_owned()];
    if !keep.is_empty() {
        args.push(format!("--preserve-env={}", keep.join(",")));
    }
    args.push("--".to_owned());
    args
}

/// The first executable `name` on `path` (a `PATH` value).
fn find_on_path(name: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::sudo_args;

    #[test]
    fn sudo_preserves_names_only_and_not_identity() {
        let args = sudo_args(
            [
                "HOME",
                "HYOPS_VYOS_ARTIFACT_KEY",
                "LANG",
                "PATH",
                "USER",
                "bad,name",
            ]
            .into_iter(),
        );
        assert_eq!(
            args,
            vec!["-n", "--preserve-env=HYOPS_VYOS_ARTIFACT_KEY,LANG", "--"]
        );
    }
}
