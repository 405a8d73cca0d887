//! Static checks of an [`ImageSpec`] that need no I/O: what `image validate` and the provider's
//! validation report, each problem with its attribute path. The create path runs them first.

use crate::engine::build::BuildSettings;
use crate::engine::duration::parse_go_duration;
use crate::engine::env::EngineEnv;
use crate::engine::error::SpecProblem;
use crate::engine::spec::ImageSpec;
use crate::engine::verify::boot::BootSettings;

/// `artifact_key` pattern.
pub const ARTIFACT_KEY_PATTERN: &str = r"^[a-z0-9][a-z0-9._-]{1,62}$";

fn url_ok(raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw).map_err(|e| format!("{e}"))?;
    match u.scheme() {
        "http" | "https" | "file" => Ok(()),
        other => Err(format!("scheme {other} is not http, https or file")),
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Every static problem of `spec` (empty: valid). `env` supplies the environment defaults the
/// `build` block resolves against.
pub fn validate_spec(spec: &ImageSpec, env: &EngineEnv) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    let mut bad = |path: &str, message: String| {
        out.push(SpecProblem {
            path: path.to_owned(),
            message,
        })
    };
    let key_re = regex::Regex::new(ARTIFACT_KEY_PATTERN).expect("static regex");
    if !key_re.is_match(&spec.artifact_key) {
        bad(
            "artifact_key",
            format!("{:?} must match {ARTIFACT_KEY_PATTERN}", spec.artifact_key),
        );
    }
    let sha = &spec.source_iso_sha256;
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        bad(
            "source_iso_sha256",
            "must be 64 hexadecimal digits (the ISO's sha256)".to_owned(),
        );
    }
    if let Err(e) = url_ok(&spec.source_iso_url) {
        bad("source_iso_url", e);
    }
    if let Some(m) = spec
        .source_iso_mirror_url
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        if let Err(e) = url_ok(m) {
            bad("source_iso_mirror_url", e);
        }
    }
    if let Some(p) = &spec.artifact_local_path {
        let s = p.to_string_lossy();
        if s.is_empty() || s.ends_with('/') {
            bad(
                "artifact_local_path",
                "must name a file (not empty, no trailing /)".to_owned(),
            );
        } else if has_control(&s) {
            bad(
                "artifact_local_path",
                "must not contain control characters".to_owned(),
            );
        }
    }
    if let Some(v) = &spec.artifact_version {
        if v.is_empty() || v.contains('/') || v.contains("..") || has_control(v) {
            bad(
                "artifact_version",
                format!("{v:?} must be non-empty, without '/', '..' or control characters"),
            );
        }
    }
    if let Some(i) = &spec.hyops_state_instance {
        let ok = !i.is_empty()
            && i.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !i.starts_with('.');
        if !ok {
            bad(
                "hyops_state_instance",
                format!("{i:?}: letters, digits, '_', '-', '.' only"),
            );
        }
    }
    match BuildSettings::resolve(&spec.build, env) {
        Err(e) => bad(&format!("build.{}", e.field), e.message),
        Ok(build) => {
            if let Err(e) = BootSettings::resolve(&spec.smoke_verify, &build) {
                bad(&format!("smoke_verify.boot.{}", e.field), e.message);
            }
        }
    }
    if spec.build.normalize == Some(crate::engine::spec::NormalizeMode::Compress)
        && spec.artifact_format != crate::engine::spec::ArtifactFormat::Qcow2
    {
        bad(
            "build.normalize",
            format!(
                "\"compress\" makes compressed qcow2, but artifact_format is {:?}; for a \
                 compressed raw image add \"raw.zst\" or \"raw.xz\" to additional_formats",
                spec.artifact_format.as_str()
            ),
        );
    }
    for (name, value) in [
        ("timeouts.create", &spec.timeouts.create),
        ("timeouts.delete", &spec.timeouts.delete),
    ] {
        if let Some(v) = value {
            if let Err(e) = parse_go_duration(v) {
                bad(name, e.to_string());
            }
        }
    }
    if let Some(p) = &spec.publish {
        if p.backend.is_none() && p.repo_state_ref.is_none() && p.command.is_none() {
            bad(
                "publish",
                "set repo_state_ref, backend or command (where should the image go?)".to_owned(),
            );
        }
        if let Some(prefix) = &p.prefix {
            let escape = prefix.starts_with('/')
                || prefix.split('/').any(|seg| seg == ".." || seg == ".")
                || has_control(prefix);
            if escape {
                bad(
                    "publish.prefix",
                    format!("{prefix:?}: no leading '/', no '.' or '..' segments, no control characters"),
                );
            }
        }
        if let Some(u) = &p.public_base_url {
            if !matches!(
                url::Url::parse(u).map(|u| u.scheme().to_owned()).as_deref(),
                Ok("http" | "https")
            ) {
                bad(
                    "publish.public_base_url",
                    format!("{u:?} must be an http(s) URL"),
                );
            }
        }
    }
    out
}
