//! `external_account` (Workload Identity Federation): a subject token from a file, a URL or an
//! executable (GitHub Actions / GitLab OIDC tokens, SAML), exchanged at the STS `token_url`
//! (RFC 8693 token exchange) for a federated access token. With a
//! `service_account_impersonation_url` the ADC step wraps this source in
//! [`ImpersonateSource`](super::impersonate::ImpersonateSource), which asks it for a
//! `cloud-platform` token first.
//!
//! Executables run only when `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1` (Google's rule), through
//! the engine supervisor, with their output logged into a 0700 temp directory that is removed
//! afterwards (the output holds the subject token). AWS-sourced (`environment_id`) configurations
//! are refused with a clear error.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{http, AccessToken, TokenSource};
use crate::engine::credentials::{CredentialError, ScopedSecretFile, SecretString};
use crate::engine::supervisor::{self, CommandSpec, SupervisorError};

/// Google's STS endpoint.
pub(crate) const DEFAULT_STS_URL: &str = "https://sts.googleapis.com/v1/token";
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Where the subject token comes from.
#[derive(Debug)]
pub(crate) enum SubjectSource {
    /// read a file
    File(PathBuf),
    /// GET a URL with these headers (values may be bearer tokens: redacted in Debug)
    Url {
        url: String,
        headers: Vec<(String, SecretString)>,
    },
    /// run a command (no shell), read its JSON answer
    Executable {
        command: String,
        timeout: Duration,
        output_file: Option<PathBuf>,
        allowed: bool,
    },
}

/// How a file/URL source's content holds the token.
#[derive(Debug)]
pub(crate) enum SubjectFormat {
    Text,
    Json(String),
}

/// A federated identity exchanged at STS.
pub(crate) struct ExternalSource {
    pub(crate) audience: String,
    pub(crate) subject_token_type: String,
    pub(crate) token_url: String,
    pub(crate) subject: SubjectSource,
    pub(crate) format: SubjectFormat,
    pub(crate) workforce_pool_user_project: Option<String>,
    pub(crate) client: Option<(String, SecretString)>,
    /// the impersonated e-mail, told to executables
    pub(crate) impersonated_email: Option<String>,
    pub(crate) origin: String,
}

impl std::fmt::Debug for ExternalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalSource")
            .field("audience", &self.audience)
            .field("token_url", &self.token_url)
            .field("subject", &self.subject)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ExternalSource {
    async fn subject_token(
        &self,
        client: &reqwest::Client,
    ) -> Result<SecretString, CredentialError> {
        let name = self.describe();
        let fail = |detail: String| CredentialError::Token {
            source_name: name.clone(),
            detail,
            transient: false,
        };
        let raw = match &self.subject {
            SubjectSource::File(p) => {
                let bytes = super::super::gcs::read_key_file(p).map_err(|e| {
                    fail(format!(
                        "cannot read subject token file {}: {e}",
                        p.display()
                    ))
                })?;
                SecretString::new(String::from_utf8(bytes.to_vec()).map_err(|_| {
                    fail(format!("subject token file {} is not UTF-8", p.display()))
                })?)
            }
            SubjectSource::Url { url, headers } => {
                http::check_url(&name, "credential_source.url", url)?;
                let mut req = client.get(url);
                for (k, v) in headers {
                    req = req.header(k, v.expose_secret());
                }
                let resp = req.send().await.map_err(|e| CredentialError::Token {
                    source_name: name.clone(),
                    detail: format!("subject token URL: {}", http::describe(e)),
                    transient: true,
                })?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(CredentialError::Token {
                        source_name: name.clone(),
                        detail: format!("subject token URL answered {status}"),
                        transient: status.is_server_error(),
                    });
                }
                let raw = http::read_limited(resp).await;
                SecretString::new(
                    String::from_utf8(raw.to_vec())
                        .map_err(|_| fail("subject token URL answered non-UTF-8".into()))?,
                )
            }
            SubjectSource::Executable {
                command,
                timeout,
                output_file,
                allowed,
            } => {
                return self
                    .run_executable(command, *timeout, output_file.as_ref(), *allowed)
                    .await
            }
        };
        let token = match &self.format {
            SubjectFormat::Text => SecretString::new(raw.expose_secret().trim().to_owned()),
            SubjectFormat::Json(field) => {
                let v: serde_json::Value = serde_json::from_str(raw.expose_secret())
                    .map_err(|_| fail("subject token source is not JSON".into()))?;
                v.get(field)
                    .and_then(|t| t.as_str())
                    .map(|t| SecretString::new(t.to_owned()))
                    .ok_or_else(|| fail(format!("subject token JSON has no string `{field}`")))?
            }
        };
        if token.is_blank() {
            return Err(fail("the subject token is empty".into()));
        }
        Ok(token)
    }

    async fn run_executable(
        &self,
        command: &str,
        timeout: Duration,
        output_file: Option<&PathBuf>,
        allowed: bool,
    ) -> Result<SecretString, CredentialError> {
        let name = self.describe();
        let fail = |detail: String| CredentialError::Token {
            source_name: name.clone(),
            detail,
            transient: false,
        };
        if !allowed {
            return Err(fail(
                "executable-sourced credentials run only when \
                 GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"
                    .into(),
            ));
        }
        if let Some(out) = output_file {
            if let Ok(text) = tokio::fs::read_to_string(out).await {
                if let Ok(t) = parse_executable_answer(&text, true) {
                    return Ok(t);
                }
            }
        }
        let mut words = command.split_whitespace();
        let program = words
            .next()
            .ok_or_else(|| fail("credential_source.executable.command is empty".into()))?;
        let log =
            ScopedSecretFile::create("executable.log", b"").map_err(CredentialError::ScopedFile)?;
        let mut spec = CommandSpec::program(program, log.path())
            .args(words)
            .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &self.audience)
            .env(
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                &self.subject_token_type,
            )
            .env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0")
            .capture_stdout()
            .timeout(timeout)
            .grace(Duration::from_secs(2));
        if let Some(e) = &self.impersonated_email {
            spec = spec.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", e);
        }
        if let Some(o) = output_file {
            spec = spec.env(
                "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE",
                o.display().to_string(),
            );
        }
        let out = supervisor::run(&spec, &CancellationToken::new())
            .await
            .map_err(|e| {
                // The log may hold a token: report the status only.
                let why = match e {
                    SupervisorError::Exited { status, .. } => status,
                    SupervisorError::Spawn { source, .. } => format!("could not start: {source}"),
                    other if other.is_cancelled() => "timed out".to_owned(),
                    _ => "failed".to_owned(),
                };
                fail(format!(
                    "executable `{program}`: {why} (output withheld: it may hold a token)"
                ))
            })?;
        drop(log);
        let stdout = SecretString::new(out.stdout.unwrap_or_default());
        parse_executable_answer(stdout.expose_secret(), false)
            .map_err(|detail| fail(format!("executable `{program}`: {detail}")))
    }
}

/// Reads an executable's JSON answer (version 1). `need_expiry`: an output-file answer counts
/// only with an `expiration_time` still in the future.
fn parse_executable_answer(text: &str, need_expiry: bool) -> Result<SecretString, String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|_| "answer is not JSON".to_owned())?;
    if v.get("version").and_then(|x| x.as_u64()) != Some(1) {
        return Err("answer lacks \"version\": 1".into());
    }
    if v.get("success").and_then(|x| x.as_bool()) != Some(true) {
        let code = v.get("code").and_then(|x| x.as_str()).unwrap_or("");
        let msg = v.get("message").and_then(|x| x.as_str()).unwrap_or("");
        return Err(format!("reported failure: {code} {msg}"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match v.get("expiration_time").and_then(|x| x.as_u64()) {
        Some(exp) if exp <= now => return Err("the token has expired".into()),
        None if need_expiry => return Err("no expiration_time".into()),
        _ => {}
    }
    let field = match v.get("token_type").and_then(|x| x.as_str()) {
        Some("urn:ietf:params:oauth:token-type:saml2") => "saml_response",
        Some(
            "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token",
        ) => "id_token",
        _ => return Err("unknown or missing token_type".into()),
    };
    v.get(field)
        .and_then(|x| x.as_str())
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::new(t.to_owned()))
        .ok_or_else(|| format!("answer has no `{field}`"))
}

#[async_trait]
impl TokenSource for ExternalSource {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        scope: &str,
    ) -> Result<AccessToken, CredentialError> {
        let name = self.describe();
        http::check_url(&name, "token_url", &self.token_url)?;
        let subject = self.subject_token(client).await?;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", GRANT_TOKEN_EXCHANGE.into()),
            ("audience", self.audience.clone()),
            ("scope", scope.into()),
            ("requested_token_type", ACCESS_TOKEN_TYPE.into()),
            ("subject_token_type", self.subject_token_type.clone()),
        ];
        if let (Some(p), None) = (&self.workforce_pool_user_project, &self.client) {
            form.push(("options", serde_json::json!({"userProject": p}).to_string()));
        }
        // The subject token is serialized straight from its secret wrapper.
        let mut req = client.post(&self.token_url).form(&FormWithSubject {
            base: &form,
            subject: &subject,
        });
        if let Some((id, secret)) = &self.client {
            req = req.basic_auth(id, Some(secret.expose_secret()));
        }
        let endpoint = format!("STS {}", self.token_url);
        let body = http::send_json(&name, &endpoint, req).await?;
        http::oauth_token(&name, &self.token_url, &body)
    }

    fn describe(&self) -> String {
        format!(
            "external_account (audience {}, from {})",
            self.audience, self.origin
        )
    }
}

/// The STS form: the plain fields plus `subject_token`.
struct FormWithSubject<'a> {
    base: &'a [(&'a str, String)],
    subject: &'a SecretString,
}

impl serde::Serialize for FormWithSubject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.base.len() + 1))?;
        for (k, v) in self.base {
            seq.serialize_element(&(k, v.as_str()))?;
        }
        seq.serialize_element(&("subject_token", self.subject.expose_secret()))?;
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_answers_are_read_by_token_type_and_failures_name_no_token() {
        let later = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + 600)
            .unwrap_or(u64::MAX);
        let cases: &[(String, bool, Result<&str, &str>)] = &[
            (
                format!(r#"{{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:id_token","id_token":"T1","expiration_time":{later}}}"#),
                true,
                Ok("T1"),
            ),
            (
                r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:saml2","saml_response":"S1"}"#.into(),
                false,
                Ok("S1"),
            ),
            (
                r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"T2"}"#.into(),
                true,
                Err("no expiration_time"),
            ),
            (
                r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"T3","expiration_time":1}"#.into(),
                false,
                Err("expired"),
            ),
            (
                r#"{"version":1,"success":false,"code":"401","message":"denied"}"#.into(),
                false,
                Err("reported failure: 401 denied"),
            ),
            (r#"{"version":2,"success":true}"#.into(), false, Err("version")),
            ("not json".into(), false, Err("not JSON")),
        ];
        for (text, need_expiry, want) in cases {
            match (parse_executable_answer(text, *need_expiry), want) {
                (Ok(t), Ok(w)) => assert_eq!(t.expose_secret(), *w),
                (Err(e), Err(w)) => {
                    assert!(e.contains(w), "{e} vs {w}");
                    assert!(!e.contains("T2") && !e.contains("T3"), "{e}");
                }
                (got, _) => panic!("{text}: unexpected {:?}", got.map(|t| t.to_string())),
            }
        }
    }

    #[test]
    fn debug_of_a_url_source_hides_header_values() {
        let s = SubjectSource::Url {
            url: "https://token.example/oidc".into(),
            headers: vec![("Authorization".into(), "Bearer request-secret".into())],
        };
        let shown = format!("{s:?}");
        assert!(
            shown.contains("Authorization") && !shown.contains("request-secret"),
            "{shown}"
        );
    }
}
