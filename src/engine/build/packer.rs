//! `method = "packer"`: a two-stage qemu build with templates packaged in the binary
//! (`packer/stage1.pkr.hcl`, `packer/stage2.pkr.hcl`, `packer/vyos.pkrvars.hcl`,
//! `packer/provision.sh`, `packer/sanitize.sh`), written into the build's work directory before
//! packer runs. `sanitize.sh` is stage 2's last step: template sanitation (no SSH host keys, an
//! empty machine-id, cloud-init state cleaned, no builder ethernet config or hw-id, no `service ssh`
//! and a locked build password in the saved config), each item checked before shutdown.
//!
//! Stage 1 installs from the ISO (`source_iso_path`) into `build_output_directory`; stage 2 boots
//! that disk (`source_disk_path`) and provisions it into a second `build_output_directory`. Both
//! run `packer build -on-error=abort`. On failure the stage-1 disk stays in the work directory
//! (its path is in the error) for debugging.
//!
//! Overrides: `build.packer_template` is either a directory holding `stage1.pkr.hcl` and
//! `stage2.pkr.hcl` (two stages, like the packaged ones) or one template file (a single stage that
//! takes the ISO and writes the image). Every template must declare the variables the provider
//! sets (see [`required_template_variables`]); a template lacking one is refused before packer runs.
//! The packaged vars file is loaded only with the packaged templates; `build.packer_vars_file`
//! replaces it. Optional knobs (`disk_size_gb`, `qemu_accelerator`, `console`, `cloud_init`, …)
//! are passed only to templates that declare them, because packer refuses `-var` for undeclared
//! variables. A VyOS cloud-init module is installed when `build.environment` sets
//! `HYOPS_VYOS_CC_VYOS_PATH` (passed as `cc_vyos_path`).

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use super::{expect_output, move_file, BuildContext, BuildError, Builder};
use crate::engine::progress::Stage;
use crate::engine::supervisor::{self, CommandSpec};

/// Packaged stage-1 template (HCL2, packer 1.6.6).
pub const STAGE1_TEMPLATE: &str = include_str!("packer/stage1.pkr.hcl");
/// Packaged stage-2 template (HCL2, packer 1.6.6).
pub const STAGE2_TEMPLATE: &str = include_str!("packer/stage2.pkr.hcl");
/// Packaged variables file, loaded by default.
pub const PACKAGED_VARS_FILE: &str = include_str!("packer/vyos.pkrvars.hcl");
const PROVISION_SCRIPT: &str = include_str!("packer/provision.sh");
const CC_VYOS_NONE: &str = include_str!("packer/cc_vyos_none.py");
/// Packaged template sanitation script (stage 2's last provisioner).
const SANITIZE_SCRIPT: &str = include_str!("packer/sanitize.sh");

/// `build.environment` key naming an optional `cc_vyos.py` for stage 2.
pub const ENV_CC_VYOS_PATH: &str = "HYOPS_VYOS_CC_VYOS_PATH";

/// Paths of the packaged templates once written to disk.
#[derive(Debug, Clone)]
pub struct PackagedTemplates {
    /// stage 1
    pub stage1: PathBuf,
    /// stage 2
    pub stage2: PathBuf,
    /// the packaged vars file
    pub vars_file: PathBuf,
}

/// Write the packaged templates, vars file and provisioning script into `dir` (created).
pub fn materialize_packaged_templates(dir: &Path) -> std::io::Result<PackagedTemplates> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("stage1.pkr.hcl", STAGE1_TEMPLATE),
        ("stage2.pkr.hcl", STAGE2_TEMPLATE),
        ("vyos.pkrvars.hcl", PACKAGED_VARS_FILE),
        ("provision.sh", PROVISION_SCRIPT),
        ("sanitize.sh", SANITIZE_SCRIPT),
        ("cc_vyos_none.py", CC_VYOS_NONE),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(PackagedTemplates {
        stage1: dir.join("stage1.pkr.hcl"),
        stage2: dir.join("stage2.pkr.hcl"),
        vars_file: dir.join("vyos.pkrvars.hcl"),
    })
}

/// Which stage a template plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// takes the ISO (stage 1, or a single-stage custom template)
    FromIso,
    /// takes the stage-1 disk
    FromDisk,
}

/// The variables the provider sets on a template of the given stage (1: ISO in; 2: disk in).
pub fn required_template_variables(stage: u8) -> &'static [&'static str] {
    if stage == 1 {
        &["source_iso_path", "build_output_directory"]
    } else {
        &["source_disk_path", "build_output_directory"]
    }
}

/// Variable names declared by an HCL (`variable "x"`) or JSON (`"variables": {"x": …}`) template.
fn declared_variables(text: &str, json: bool) -> Vec<String> {
    if json {
        let parsed: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        parsed
            .get("variables")
            .and_then(|v| v.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        let re = regex::Regex::new(r#"(?m)^\s*variable\s+"([A-Za-z0-9_-]+)"\s*\{"#)
            .expect("static regex");
        re.captures_iter(text).map(|c| c[1].to_owned()).collect()
    }
}

struct Template {
    path: PathBuf,
    declared: Vec<String>,
}

fn load_template(path: &Path, role: Role) -> Result<Template, BuildError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BuildError::io(format!("reading packer template {}", path.display()), e))?;
    let json = path.extension().is_some_and(|e| e == "json");
    let declared = declared_variables(&text, json);
    let stage = if role == Role::FromIso { 1 } else { 2 };
    for required in required_template_variables(stage) {
        if !declared.iter().any(|d| d == required) {
            return Err(BuildError::Refused(format!(
                "packer template {} does not declare variable \"{required}\", which the provider sets \
                 (stage {stage} templates must declare {}); add a `variable \"{required}\" {{ type = string }}` block",
                path.display(),
                required_template_variables(stage).join(" and ")
            )));
        }
    }
    Ok(Template {
        path: path.to_owned(),
        declared,
    })
}

/// Stage templates in run order, plus the vars file to load.
type ResolvedTemplates = (Vec<(Role, Template)>, Option<PathBuf>);

/// The stage templates of a build: packaged, a custom directory, or one custom file.
fn resolve_templates(
    ctx: &BuildContext<'_>,
    packer_dir: &Path,
) -> Result<ResolvedTemplates, BuildError> {
    let s = ctx.settings;
    match &s.packer_template {
        None => {
            let p = materialize_packaged_templates(packer_dir).map_err(|e| {
                BuildError::io(
                    format!("writing packer templates to {}", packer_dir.display()),
                    e,
                )
            })?;
            let vars = s.packer_vars_file.clone().unwrap_or(p.vars_file);
            Ok((
                vec![
                    (Role::FromIso, load_template(&p.stage1, Role::FromIso)?),
                    (Role::FromDisk, load_template(&p.stage2, Role::FromDisk)?),
                ],
                Some(vars),
            ))
        }
        Some(custom) if custom.is_dir() => Ok((
            vec![
                (
                    Role::FromIso,
                    load_template(&custom.join("stage1.pkr.hcl"), Role::FromIso)?,
                ),
                (
                    Role::FromDisk,
                    load_template(&custom.join("stage2.pkr.hcl"), Role::FromDisk)?,
                ),
            ],
            s.packer_vars_file.clone(),
        )),
        Some(custom) => Ok((
            vec![(Role::FromIso, load_template(custom, Role::FromIso)?)],
            s.packer_vars_file.clone(),
        )),
    }
}

/// The single largest regular file packer left in `dir`.
fn find_output(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && best.as_ref().is_none_or(|(size, _)| meta.len() > *size) {
            best = Some((meta.len(), entry.path()));
        }
    }
    best.map(|(_, p)| p)
}

/// The `packer` build method.
#[derive(Debug, Default, Clone, Copy)]
pub struct Packer;

impl Builder for Packer {
    fn name(&self) -> &'static str {
        "packer"
    }

    fn build<'a>(
        &'a self,
        ctx: &'a BuildContext<'a>,
    ) -> BoxFuture<'a, Result<PathBuf, BuildError>> {
        Box::pin(async move {
            let s = ctx.settings;
            let packer_dir = ctx.work_dir.join("packer");
            let (stages, vars_file) = resolve_templates(ctx, &packer_dir)?;
            let cc_vyos = s
                .environment
                .get(ENV_CC_VYOS_PATH)
                .cloned()
                .unwrap_or_default();
            let mut input: PathBuf = ctx.iso_path.to_owned();
            let total = stages.len();
            let mut stage1_disk: Option<PathBuf> = None;
            for (n, (role, template)) in stages.iter().enumerate() {
                let stage_no = n + 1;
                let out_dir = ctx.work_dir.join(format!("stage{stage_no}-output"));
                let _ = std::fs::remove_dir_all(&out_dir);
                let mut vars: Vec<(&str, String)> = Vec::new();
                match role {
                    Role::FromIso => {
                        vars.push(("source_iso_path", input.display().to_string()));
                        vars.push(("source_iso_checksum", format!("sha256:{}", ctx.iso_sha256)));
                    }
                    Role::FromDisk => vars.push(("source_disk_path", input.display().to_string())),
                }
                vars.push(("build_output_directory", out_dir.display().to_string()));
                vars.push(("disk_size_gb", s.disk_size_gb.to_string()));
                vars.push(("qemu_accelerator", ctx.accelerator.as_str().to_owned()));
                vars.push(("console", s.console_str().to_owned()));
                vars.push(("cloud_init", s.cloud_init.to_string()));
                vars.push(("cloud_init_datasources", s.cloud_init_datasources.join(",")));
                vars.push(("guest_agent", s.guest_agent.clone()));
                if !cc_vyos.is_empty() {
                    vars.push(("cc_vyos_path", cc_vyos.clone()));
                }
                let mut spec = CommandSpec::program("packer", ctx.log_path)
                    .arg("build")
                    .arg("-on-error=abort")
                    .arg("-color=false");
                if let Some(vf) = &vars_file {
                    spec = spec.arg(format!("-var-file={}", vf.display()));
                }
                for (k, v) in vars {
                    let required =
                        required_template_variables(if *role == Role::FromIso { 1 } else { 2 })
                            .contains(&k);
                    if required || template.declared.iter().any(|d| d == k) {
                        spec = spec.arg("-var").arg(format!("{k}={v}"));
                    }
                }
                spec = spec
                    .args(s.packer_extra_args.iter())
                    .arg(&template.path)
                    .cwd(template.path.parent().unwrap_or(ctx.work_dir))
                    .envs(ctx.env.clone())
                    .env("CHECKPOINT_DISABLE", "1")
                    .env("PACKER_NO_COLOR", "1")
                    .env(
                        "PACKER_CACHE_DIR",
                        ctx.work_dir.join("packer_cache").display().to_string(),
                    );
                ctx.progress.message(
                    Stage::Build,
                    &format!(
                        "packer stage {stage_no}/{total}: {}",
                        template.path.display()
                    ),
                );
                if let Err(e) = supervisor::run(&spec, ctx.cancel).await {
                    if let (Some(disk), false) = (&stage1_disk, e.is_cancelled()) {
                        tracing::warn!(disk = %disk.display(), "packer failed; stage-1 disk kept for debugging");
                        ctx.progress.message(
                            Stage::Build,
                            &format!("stage-1 disk kept at {}", disk.display()),
                        );
                    }
                    return Err(e.into());
                }
                let produced = find_output(&out_dir).ok_or_else(|| BuildError::MissingOutput {
                    builder: "packer",
                    path: out_dir.clone(),
                })?;
                if stage_no == 1 && total > 1 {
                    stage1_disk = Some(produced.clone());
                }
                input = produced;
            }
            move_file(&input, ctx.output_path).await?;
            expect_output("packer", ctx.output_path).await?;
            if let Some(disk) = stage1_disk {
                let _ = tokio::fs::remove_file(&disk).await;
            }
            Ok(ctx.output_path.to_owned())
        })
    }
}
