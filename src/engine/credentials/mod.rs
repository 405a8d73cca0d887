//! Credentials: where a GCS credential comes from and how a secret is handed to a child process
//! ([`ScopedSecretFile`]).
//!
//! Owns the precedence (resource `gcs_credentials_wo`, provider `gcs_credentials`,
//! `gcs_credentials_file`, env [`ENV_SA_JSON`], env [`ENV_SA_JSON_FILE`], then Application Default
//! Credentials) and, in [`google`], every token source (key, authorized user, workload identity
//! federation, impersonation, metadata server) behind one trait. Knows nothing about uploads.
//! Values never reach Debug, Display, logs or errors: errors name the source and what was wrong
//! with it (e.g. "not JSON at line 3 column 1"), never content.

mod gcs;
pub mod google;
mod scoped_file;
mod secret;

use std::fmt;
use std::path::PathBuf;

pub use gcs::{GcsServiceAccount, DEFAULT_TOKEN_URI};
pub use google::{AdcInputs, GcsCredential, ENV_IAM_ENDPOINT};
pub use scoped_file::ScopedSecretFile;
pub use secret::SecretString;

/// Env fallback for provider `gcs_credentials`: the service-account JSON itself.
pub const ENV_SA_JSON: &str = "HYOPS_VYOS_GCS_SA_JSON";
/// Env fallback for provider `gcs_credentials_file`: a path to the JSON.
pub const ENV_SA_JSON_FILE: &str = "HYOPS_VYOS_GCS_SA_JSON_FILE";

/// Where a credential came from (named in errors, never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// a write-only resource argument (`gcs_credentials_wo`)
    WriteOnly,
    /// provider `gcs_credentials`
    Inline,
    /// provider `gcs_credentials_file`
    File(PathBuf),
    /// env `HYOPS_VYOS_GCS_SA_JSON`
    Env,
    /// env `HYOPS_VYOS_GCS_SA_JSON_FILE`
    EnvFile(PathBuf),
    /// env `GOOGLE_APPLICATION_CREDENTIALS`
    Adc(PathBuf),
    /// gcloud's application-default credentials file
    GcloudAdc(PathBuf),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::WriteOnly => f.write_str("resource argument gcs_credentials_wo"),
            CredentialSource::Inline => f.write_str("provider gcs_credentials"),
            CredentialSource::File(p) => write!(f, "provider gcs_credentials_file {}", p.display()),
            CredentialSource::Env => write!(f, "env {ENV_SA_JSON}"),
            CredentialSource::EnvFile(p) => write!(f, "env {ENV_SA_JSON_FILE} ({})", p.display()),
            CredentialSource::Adc(p) => {
                write!(f, "env GOOGLE_APPLICATION_CREDENTIALS ({})", p.display())
            }
            CredentialSource::GcloudAdc(p) => write!(f, "gcloud ADC file {}", p.display()),
        }
    }
}

/// Why a credential could not be used. Never carries the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// No source is set.
    #[error(
        "no GCS credential: set provider `gcs_credentials` or `gcs_credentials_file`, or env \
         {ENV_SA_JSON} or {ENV_SA_JSON_FILE}"
    )]
    Missing,
    /// A credential file could not be read.
    #[error("{source_name}: cannot read the file: {error}")]
    Read {
        /// where it came from
        source_name: CredentialSource,
        /// the I/O error
        error: std::io::Error,
    },
    /// The text is not JSON (position and category only).
    #[error("{source_name}: not JSON at line {line} column {column} ({category})")]
    NotJson {
        /// where it came from
        source_name: CredentialSource,
        /// 1-based line
        line: usize,
        /// 1-based column
        column: usize,
        /// syntax / eof / data
        category: &'static str,
    },
    /// A required field is missing or has the wrong type.
    #[error("{source_name}: service-account JSON lacks a string field `{field}`")]
    MissingField {
        /// where it came from
        source_name: CredentialSource,
        /// the field
        field: &'static str,
    },
    /// The `type` field says this is not a service-account key.
    #[error("{source_name}: `type` is not \"service_account\" (user or external-account credentials are not supported)")]
    NotServiceAccount {
        /// where it came from
        source_name: CredentialSource,
    },
    /// The private key cannot sign RS256.
    #[error("{source_name}: `private_key` cannot sign RS256: {reason}")]
    BadKey {
        /// where it came from
        source_name: CredentialSource,
        /// why (never key material)
        reason: &'static str,
    },
    /// A field has an unusable value (e.g. `token_uri` not a URL).
    #[error("{source_name}: `{field}` is not usable: {reason}")]
    BadField {
        /// where it came from
        source_name: CredentialSource,
        /// the field
        field: &'static str,
        /// why
        reason: String,
    },
    /// Every source was tried and none holds a credential (in precedence order, with why).
    #[error("no GCS credential found; tried, in order:\n{}", numbered(tried))]
    NoneFound {
        /// each source and why it was passed over
        tried: Vec<String>,
    },
    /// A credential file is well-formed JSON but unusable (missing field, unsupported kind).
    #[error("{source_name}: {detail}")]
    Invalid {
        /// where it came from
        source_name: String,
        /// what is wrong (never a value)
        detail: String,
    },
    /// A token endpoint (OAuth, STS, IAM Credentials, metadata server) refused or failed.
    #[error("{source_name}: {detail}")]
    Token {
        /// the token source
        source_name: String,
        /// endpoint, status and the error's code/description (never a secret)
        detail: String,
        /// worth retrying (connection error, 5xx, 429)
        transient: bool,
    },
    /// The scoped secret file could not be written.
    #[error("cannot write the scoped credential file: {0}")]
    ScopedFile(std::io::Error),
}

fn numbered(tried: &[String]) -> String {
    tried
        .iter()
        .enumerate()
        .map(|(i, t)| format!("  {}. {t}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The credential inputs, before resolution: provider settings plus the environment.
#[derive(Debug, Clone, Default)]
pub struct CredentialInputs {
    /// `gcs_credentials_wo` (resource write-only argument), highest precedence
    pub write_only: Option<SecretString>,
    /// provider `gcs_credentials`
    pub inline: Option<SecretString>,
    /// provider `gcs_credentials_file`
    pub file: Option<PathBuf>,
    /// env `HYOPS_VYOS_GCS_SA_JSON`
    pub env_json: Option<SecretString>,
    /// env `HYOPS_VYOS_GCS_SA_JSON_FILE`
    pub env_file: Option<PathBuf>,
    /// Application Default Credentials (what this machine offers)
    pub adc: AdcInputs,
    /// provider `gcs_impersonate_service_account`
    pub impersonate: Option<String>,
    /// IAM Credentials base URL (env `HYOPS_GCS_IAM_ENDPOINT`)
    pub iam_endpoint: Option<String>,
}

impl CredentialInputs {
    /// Provider values plus the two environment variables of this process.
    pub fn from_settings_and_env(
        inline: Option<&SecretString>,
        file: Option<&std::path::Path>,
    ) -> Self {
        let env_json = std::env::var(ENV_SA_JSON)
            .ok()
            .map(SecretString::new)
            .filter(|s| !s.is_blank());
        let env_file = std::env::var_os(ENV_SA_JSON_FILE)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        CredentialInputs {
            write_only: None,
            inline: inline.filter(|s| !s.is_blank()).cloned(),
            file: file.map(|p| p.to_path_buf()),
            env_json,
            env_file,
            adc: AdcInputs::from_env(),
            impersonate: None,
            iam_endpoint: std::env::var(ENV_IAM_ENDPOINT)
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }

    /// Walks the whole precedence, ADC included, and returns the credential to publish with
    /// (impersonated when `impersonate` is set). Reads no environment itself.
    pub fn resolve_gcs(&self) -> Result<GcsCredential, CredentialError> {
        google::adc::resolve(self)
    }

    /// True when some source is there (the credential may still turn out unusable): a
    /// configured one, an ADC file, or a metadata server that answers (probed once, ≤ 0.3 s).
    /// Without one, GCS objects are checked through their public URLs.
    pub fn is_set(&self) -> bool {
        self.write_only.is_some()
            || self.inline.is_some()
            || self.file.is_some()
            || self.env_json.is_some()
            || self.env_file.is_some()
            || self.adc.application_credentials.is_some()
            || self
                .adc
                .gcloud_adc_file
                .as_ref()
                .is_some_and(|p| p.exists())
            || self.adc.metadata_reachable()
    }

    /// Picks the first explicitly set source (not ADC) and parses it as a service-account key.
    pub fn resolve(&self) -> Result<GcsServiceAccount, CredentialError> {
        if let Some(s) = &self.write_only {
            return GcsServiceAccount::parse(s.clone(), CredentialSource::WriteOnly);
        }
        if let Some(s) = &self.inline {
            return GcsServiceAccount::parse(s.clone(), CredentialSource::Inline);
        }
        if let Some(p) = &self.file {
            return GcsServiceAccount::from_file(p, CredentialSource::File(p.clone()));
        }
        if let Some(s) = &self.env_json {
            return GcsServiceAccount::parse(s.clone(), CredentialSource::Env);
        }
        if let Some(p) = &self.env_file {
            return GcsServiceAccount::from_file(p, CredentialSource::EnvFile(p.clone()));
        }
        Err(CredentialError::Missing)
    }
}
