//! `method = "command"`: the operator's `build.command` (or `HYOPS_VYOS_ISO_BUILD_COMMAND`) run as
//! `/bin/bash -lc COMMAND` in `build.workdir` (default: the build's scratch directory). The
//! command must write the image to `$HYOPS_VYOS_ARTIFACT_LOCAL_PATH`.

use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{expect_output, BuildContext, BuildError, Builder};
use crate::engine::progress::Stage;
use crate::engine::supervisor::{self, CommandSpec};

/// The `command` build method.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommandBuilder;

impl Builder for CommandBuilder {
    fn name(&self) -> &'static str {
        "command"
    }

    fn build<'a>(
        &'a self,
        ctx: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<PathBuf, BuildError>> {
        Box::pin(async move {
            let script = ctx.settings.command.clone().ok_or_else(|| {
                BuildError::Refused("build.command is required for method \"command\"".to_owned())
            })?;
            let cwd = ctx
                .settings
                .workdir
                .clone()
                .unwrap_or_else(|| ctx.work_dir.to_owned());
            ctx.progress.message(
                Stage::Build,
                &format!("running build.command in {}", cwd.display()),
            );
            let spec = CommandSpec::bash_script(script, "build.command", ctx.log_path)
                .cwd(cwd)
                .envs(ctx.env.clone());
            supervisor::run(&spec, ctx.cancel).await?;
            expect_output("build.command", ctx.output_path).await?;
            Ok(ctx.output_path.to_owned())
        })
    }
}
