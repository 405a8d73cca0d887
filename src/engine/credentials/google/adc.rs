//! The precedence walk (docs/index.md, "GCS credentials"): resource `gcs_credentials_wo` →
//! provider `gcs_credentials` / `gcs_credentials_file` → env `HYOPS_VYOS_GCS_SA_JSON[_FILE]` →
//! Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's ADC file,
//! then the metadata server) — the first source that is set wins; a set source that is broken is
//! an error, not a reason to look further. Then provider `gcs_impersonate_service_account`
//! impersonates on top of the source found.
//!
//! Any source may hold any credential file kind (`service_account`, `authorized_user`,
//! `external_account`, `impersonated_service_account`), as Google's libraries accept. The
//! environment is read only in [`AdcInputs::from_env`], so tests can describe a machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::external::{ExternalSource, SubjectFormat, SubjectSource, DEFAULT_STS_URL};
use super::impersonate::{ImpersonateSource, DEFAULT_IAM_ENDPOINT};
use super::metadata::{MetadataSource, DEFAULT_METADATA_HOST};
use super::user::{RawUser, UserSource};
use super::{GcsCredential, TokenSource};
use crate::engine::credentials::{
    CredentialError, CredentialInputs, CredentialSource, GcsServiceAccount, SecretString,
    ENV_SA_JSON, ENV_SA_JSON_FILE,
};

/// Google's ADC file variable.
pub const ENV_GOOGLE_APPLICATION_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// Google's metadata-server override (`host[:port]`).
pub const ENV_GCE_METADATA_HOST: &str = "GCE_METADATA_HOST";
/// Google's switch that skips the metadata server.
pub const ENV_NO_GCE_CHECK: &str = "NO_GCE_CHECK";
/// Google's opt-in for executable-sourced external accounts.
pub const ENV_ALLOW_EXECUTABLES: &str = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES";
/// IAM Credentials base URL for `gcs_impersonate_service_account` (private endpoints, tests).
/// Default `https://iamcredentials.googleapis.com`.
pub const ENV_IAM_ENDPOINT: &str = "HYOPS_GCS_IAM_ENDPOINT";

/// What Application Default Credentials can find on this machine.
#[derive(Debug, Clone, Default)]
pub struct AdcInputs {
    /// `GOOGLE_APPLICATION_CREDENTIALS`
    pub application_credentials: Option<PathBuf>,
    /// gcloud's ADC file (`$CLOUDSDK_CONFIG` or `~/.config/gcloud`, then
    /// `application_default_credentials.json`); used when it exists
    pub gcloud_adc_file: Option<PathBuf>,
    /// metadata server `host[:port]`; `None` skips it (`NO_GCE_CHECK=true`)
    pub metadata_host: Option<String>,
    /// `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`
    pub allow_executables: bool,
}

impl AdcInputs {
    /// From this process's environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let gcloud_dir = var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config/gcloud")));
        let no_gce = var(ENV_NO_GCE_CHECK)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        AdcInputs {
            application_credentials: var(ENV_GOOGLE_APPLICATION_CREDENTIALS).map(PathBuf::from),
            gcloud_adc_file: gcloud_dir.map(|d| d.join("application_default_credentials.json")),
            metadata_host: (!no_gce).then(|| {
                var(ENV_GCE_METADATA_HOST).unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned())
            }),
            allow_executables: var(ENV_ALLOW_EXECUTABLES).as_deref() == Some("1"),
        }
    }
}

impl AdcInputs {
    /// Whether a metadata server is configured and answers TCP (cached per process).
    pub fn metadata_reachable(&self) -> bool {
        self.metadata_host
            .as_deref()
            .is_some_and(super::metadata::reachable)
    }
}

/// Walks the precedence and returns the first credential found (wrapped in impersonation when
/// `inputs.impersonate` is set).
pub(crate) fn resolve(inputs: &CredentialInputs) -> Result<GcsCredential, CredentialError> {
    let (source, key) = find(inputs)?;
    match inputs
        .impersonate
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => Ok(GcsCredential::new(source, key)),
        Some(email) => {
            let endpoint = inputs
                .iam_endpoint
                .as_deref()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or(DEFAULT_IAM_ENDPOINT);
            let wrapped = ImpersonateSource {
                source,
                url: ImpersonateSource::url_for(endpoint, email),
                delegates: Vec::new(),
                lifetime: Duration::from_secs(3600),
            };
            Ok(GcsCredential::new(Box::new(wrapped), None))
        }
    }
}

type Found = (Box<dyn TokenSource>, Option<GcsServiceAccount>);

fn find(inputs: &CredentialInputs) -> Result<Found, CredentialError> {
    let adc = &inputs.adc;
    if let Some(s) = &inputs.write_only {
        return parse_any(s.clone(), CredentialSource::WriteOnly, adc);
    }
    if let Some(s) = &inputs.inline {
        return parse_any(s.clone(), CredentialSource::Inline, adc);
    }
    if let Some(p) = &inputs.file {
        return from_file(p, CredentialSource::File(p.clone()), adc);
    }
    if let Some(s) = &inputs.env_json {
        return parse_any(s.clone(), CredentialSource::Env, adc);
    }
    if let Some(p) = &inputs.env_file {
        return from_file(p, CredentialSource::EnvFile(p.clone()), adc);
    }
    if let Some(p) = &adc.application_credentials {
        return from_file(p, CredentialSource::Adc(p.clone()), adc);
    }
    let mut tried = vec![
        "resource argument gcs_credentials_wo: not set".to_owned(),
        "provider gcs_credentials: not set".to_owned(),
        "provider gcs_credentials_file: not set".to_owned(),
        format!("env {ENV_SA_JSON}: not set"),
        format!("env {ENV_SA_JSON_FILE}: not set"),
        format!("env {ENV_GOOGLE_APPLICATION_CREDENTIALS}: not set"),
    ];
    match &adc.gcloud_adc_file {
        Some(p) if p.exists() => {
            return from_file(p, CredentialSource::GcloudAdc(p.clone()), adc);
        }
        Some(p) => tried.push(format!(
            "gcloud ADC file {}: not found (`gcloud auth application-default login` writes it)",
            p.display()
        )),
        None => tried.push("gcloud ADC file: no HOME or CLOUDSDK_CONFIG".to_owned()),
    }
    match &adc.metadata_host {
        Some(host) => Ok((
            Box::new(MetadataSource {
                host: host.clone(),
                tried,
            }),
            None,
        )),
        None => {
            tried.push(format!(
                "metadata server: skipped ({ENV_NO_GCE_CHECK} is set)"
            ));
            Err(CredentialError::NoneFound { tried })
        }
    }
}

fn from_file(
    path: &Path,
    source: CredentialSource,
    adc: &AdcInputs,
) -> Result<Found, CredentialError> {
    let text = super::super::gcs::read_credential_text(path, &source)?;
    parse_any(text, source, adc)
}

#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

fn not_json(source: &CredentialSource, e: &serde_json::Error) -> CredentialError {
    CredentialError::NotJson {
        source_name: source.clone(),
        line: e.line(),
        column: e.column(),
        category: match e.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "a field has the wrong type",
            serde_json::error::Category::Eof => "unexpected end",
        },
    }
}

/// Parses a credential JSON of any supported `type`.
fn parse_any(
    json: SecretString,
    source: CredentialSource,
    adc: &AdcInputs,
) -> Result<Found, CredentialError> {
    let kind: Kind =
        serde_json::from_str(json.expose_secret()).map_err(|e| not_json(&source, &e))?;
    let origin = source.to_string();
    match kind.kind.as_deref() {
        None | Some("service_account") => {
            let account = GcsServiceAccount::parse(json, source)?;
            let key = super::key::KeySource::new(account.clone());
            Ok((Box::new(key), Some(account)))
        }
        Some("authorized_user") => {
            let raw: RawUser =
                serde_json::from_str(json.expose_secret()).map_err(|e| not_json(&source, &e))?;
            Ok((Box::new(UserSource::from_raw(raw, origin)?), None))
        }
        Some("external_account") => {
            let raw: RawExternal =
                serde_json::from_str(json.expose_secret()).map_err(|e| not_json(&source, &e))?;
            external(raw, origin, adc)
        }
        Some("impersonated_service_account") => {
            let raw: RawImpersonated =
                serde_json::from_str(json.expose_secret()).map_err(|e| not_json(&source, &e))?;
            let url =
                raw.service_account_impersonation_url
                    .ok_or_else(|| CredentialError::Invalid {
                        source_name: origin.clone(),
                        detail:
                            "impersonated_service_account lacks `service_account_impersonation_url`"
                                .into(),
                    })?;
            let inner = raw
                .source_credentials
                .ok_or_else(|| CredentialError::Invalid {
                    source_name: origin.clone(),
                    detail: "impersonated_service_account lacks `source_credentials`".into(),
                })?;
            let inner = SecretString::new(inner.to_string());
            let (src, _) = parse_any(inner, source, adc)?;
            Ok((
                Box::new(ImpersonateSource {
                    source: src,
                    url,
                    delegates: raw.delegates,
                    lifetime: Duration::from_secs(3600),
                }),
                None,
            ))
        }
        Some(other) => Err(CredentialError::Invalid {
            source_name: origin,
            detail: format!(
                "credential type {other:?} is not supported (service_account, authorized_user, \
                 external_account, impersonated_service_account are)"
            ),
        }),
    }
}

#[derive(serde::Deserialize)]
struct RawImpersonated {
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
    #[serde(default)]
    delegates: Vec<String>,
    #[serde(default)]
    source_credentials: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct RawExternal {
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    subject_token_type: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
    #[serde(default)]
    service_account_impersonation: Option<RawImpersonationOptions>,
    #[serde(default)]
    credential_source: Option<RawCredentialSource>,
    #[serde(default)]
    workforce_pool_user_project: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretString>,
}

#[derive(serde::Deserialize)]
struct RawImpersonationOptions {
    #[serde(default)]
    token_lifetime_seconds: Option<u64>,
}

#[derive(serde::Deserialize)]
struct RawCredentialSource {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, SecretString>,
    #[serde(default)]
    executable: Option<RawExecutable>,
    #[serde(default)]
    environment_id: Option<String>,
    #[serde(default)]
    format: Option<RawFormat>,
}

#[derive(serde::Deserialize)]
struct RawExecutable {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    timeout_millis: Option<u64>,
    #[serde(default)]
    output_file: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct RawFormat {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    subject_token_field_name: Option<String>,
}

fn external(raw: RawExternal, origin: String, adc: &AdcInputs) -> Result<Found, CredentialError> {
    let invalid = |detail: &str| CredentialError::Invalid {
        source_name: origin.clone(),
        detail: format!("external_account: {detail}"),
    };
    let cs = raw
        .credential_source
        .ok_or_else(|| invalid("lacks `credential_source`"))?;
    if cs.environment_id.is_some() {
        return Err(invalid(
            "AWS-sourced credentials (`environment_id`) are not supported; use a file-, URL- or \
             executable-sourced configuration",
        ));
    }
    let format = match cs.format {
        Some(f) if f.kind.as_deref() == Some("json") => SubjectFormat::Json(
            f.subject_token_field_name
                .ok_or_else(|| invalid("format json needs `subject_token_field_name`"))?,
        ),
        _ => SubjectFormat::Text,
    };
    let impersonated_email = raw
        .service_account_impersonation_url
        .as_deref()
        .and_then(|u| {
            u.rsplit_once("/serviceAccounts/")
                .map(|(_, t)| t.trim_end_matches(":generateAccessToken").to_owned())
        });
    let subject = match (cs.file, cs.url, cs.executable) {
        (Some(f), None, None) => SubjectSource::File(f),
        (None, Some(url), None) => SubjectSource::Url {
            url,
            headers: cs.headers.into_iter().collect(),
        },
        (None, None, Some(e)) => SubjectSource::Executable {
            command: e
                .command
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| invalid("credential_source.executable lacks `command`"))?,
            timeout: Duration::from_millis(
                e.timeout_millis.unwrap_or(30_000).clamp(5_000, 120_000),
            ),
            output_file: e.output_file,
            allowed: adc.allow_executables,
        },
        _ => {
            return Err(invalid(
                "credential_source needs exactly one of `file`, `url`, `executable`",
            ))
        }
    };
    let sts = ExternalSource {
        audience: raw.audience.ok_or_else(|| invalid("lacks `audience`"))?,
        subject_token_type: raw
            .subject_token_type
            .ok_or_else(|| invalid("lacks `subject_token_type`"))?,
        token_url: raw
            .token_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_STS_URL.to_owned()),
        subject,
        format,
        workforce_pool_user_project: raw.workforce_pool_user_project,
        client: raw.client_id.zip(raw.client_secret),
        impersonated_email,
        origin: origin.clone(),
    };
    match raw.service_account_impersonation_url {
        None => Ok((Box::new(sts), None)),
        Some(url) => {
            let lifetime = raw
                .service_account_impersonation
                .and_then(|o| o.token_lifetime_seconds)
                .unwrap_or(3600)
                .clamp(600, 43_200);
            Ok((
                Box::new(ImpersonateSource {
                    source: Box::new(sts),
                    url,
                    delegates: Vec::new(),
                    lifetime: Duration::from_secs(lifetime),
                }),
                None,
            ))
        }
    }
}
