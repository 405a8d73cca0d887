//! `method = "vyos-vm-images"`: `ansible-playbook qemu.yml` from a checkout of
//! vyos/vyos-vm-images (`build.vyos_vm_images_dir` / `HYOPS_VYOS_VM_IMAGES_DIR`).
//!
//! The playbook's documented extra vars are passed (`iso_local`, `disk_size`, `cloud_init`,
//! `cloud_init_ds`, `guest_agent`, `grub_console`); its scratch and output paths (`vyos_raw_img`,
//! default `/tmp/vyos_raw_image.img`, and `vyos_qemu_img`, default `/tmp/vyos_qemu_image.qcow2`)
//! are overridden with extra vars (highest Ansible precedence) so the image lands in this build's
//! work directory, from where it is moved to the artifact path. The playbook needs root: when not
//! root, it runs under `sudo -n` (preflight checked that works).

use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{expect_output, move_file, BuildContext, BuildError, Builder};
use crate::engine::progress::Stage;
use crate::engine::supervisor::{self, CommandSpec};

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
            let mut spec = if ctx.use_sudo {
                CommandSpec::program("sudo", ctx.log_path).args([
                    "-n",
                    "--preserve-env",
                    "ansible-playbook",
                ])
            } else {
                CommandSpec::program("ansible-playbook", ctx.log_path)
            };
            spec = spec.arg(PLAYBOOK);
            for e in &extra {
                spec = spec.arg("-e").arg(e);
            }
            let spec = spec
                .cwd(&dir)
                .envs(ctx.env.clone())
                .env("ANSIBLE_NOCOLOR", "1");
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
