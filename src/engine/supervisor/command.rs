//! What to run: [`CommandSpec`], made with chained setters, plus the environment policy applied
//! to every child.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable prefixes removed from every child's environment, whatever the spec says.
/// The GCS service-account JSON (and its `_FILE` twin, which is re-added explicitly only for the
/// publish command) and the go-plugin handshake variables.
pub const DENIED_ENV_PREFIXES: &[&str] = &[
    "HYOPS_VYOS_GCS_SA_JSON",
    "TF_PLUGIN_MAGIC_COOKIE",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_PROTOCOL_VERSIONS",
];

/// Object-store secrets removed unless [`CommandSpec::inherit_store_credentials`] is set.
const STORE_SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
];

/// Default grace period between SIGTERM and SIGKILL.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Where a child's stdin comes from.
#[derive(Debug, Clone, Default)]
pub enum StdinSource {
    /// `/dev/null` (the default)
    #[default]
    Null,
    /// the contents of a file
    File(PathBuf),
    /// these bytes (a secret-safe wrapper: redacted in Debug), then the pipe is **held open**
    /// until the run ends. Closing it is how a cancel reaches a child that treats end-of-input
    /// as "stop" (e.g. a remote command behind an SSH channel).
    Held(crate::engine::credentials::SecretString),
}

/// The program to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// An executable (looked up on `PATH` when it has no slash) with arguments.
    Exec(PathBuf),
    /// A script run as `/bin/bash -lc SCRIPT` (the DESIGN §2 contract for operator commands).
    BashScript(String),
}

/// A builder-made description of one child process.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub(crate) program: Program,
    pub(crate) args: Vec<OsString>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) clear_env: bool,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) credential_file: Option<PathBuf>,
    pub(crate) inherit_store_credentials: bool,
    pub(crate) log_path: PathBuf,
    pub(crate) capture_stdout: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) label: String,
    pub(crate) stdin: StdinSource,
    pub(crate) stderr_lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl CommandSpec {
    /// Run `program` with output appended to `log_path`.
    pub fn program(program: impl Into<PathBuf>, log_path: impl Into<PathBuf>) -> Self {
        let program = program.into();
        let label = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        Self::new(Program::Exec(program), label, log_path.into())
    }

    /// Run `script` via `/bin/bash -lc` with output appended to `log_path`. `label` names the
    /// command in errors (the script itself may be long).
    pub fn bash_script(
        script: impl Into<String>,
        label: impl Into<String>,
        log_path: impl Into<PathBuf>,
    ) -> Self {
        Self::new(
            Program::BashScript(script.into()),
            label.into(),
            log_path.into(),
        )
    }

    fn new(program: Program, label: String, log_path: PathBuf) -> Self {
        CommandSpec {
            program,
            args: Vec::new(),
            cwd: None,
            clear_env: false,
            env: BTreeMap::new(),
            credential_file: None,
            inherit_store_credentials: false,
            log_path,
            capture_stdout: false,
            timeout: None,
            grace: DEFAULT_GRACE,
            label,
            stdin: StdinSource::Null,
            stderr_lines: None,
        }
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Start from an empty environment instead of the (filtered) inherited one.
    pub fn clear_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Set one variable. Names on the deny-list are refused at spawn time.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Set several variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in vars {
            self.env.insert(k.into(), v.into());
        }
        self
    }

    /// Publish commands only: expose the path of a 0600 credential file as
    /// `HYOPS_VYOS_GCS_SA_JSON_FILE`. Never the JSON itself.
    pub fn credential_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credential_file = Some(path.into());
        self
    }

    /// Publish commands only: keep `AWS_*`/`AZURE_STORAGE_*` secrets from the parent environment.
    pub fn inherit_store_credentials(mut self) -> Self {
        self.inherit_store_credentials = true;
        self
    }

    /// Also capture stdout (drained concurrently, copied to the log) into [`RunOutput::stdout`].
    ///
    /// [`RunOutput::stdout`]: super::RunOutput::stdout
    pub fn capture_stdout(mut self) -> Self {
        self.capture_stdout = true;
        self
    }

    /// Feed the child's stdin from `source` (default `/dev/null`).
    pub fn stdin(mut self, source: StdinSource) -> Self {
        self.stdin = source;
        self
    }

    /// Also send every stderr line (still copied to the log) to `lines` as it arrives.
    pub fn stderr_lines(mut self, lines: tokio::sync::mpsc::UnboundedSender<String>) -> Self {
        self.stderr_lines = Some(lines);
        self
    }

    /// Give up (TERM, grace, KILL) after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Grace period between SIGTERM and SIGKILL (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The short name used in errors and logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The environment the child gets: inherited-minus-denied (or empty), then the spec's own
    /// variables (minus denied names), then the credential file path when one was given.
    pub fn effective_env(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if !self.clear_env {
            for (k, v) in std::env::vars_os() {
                if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                    out.insert(k, v);
                }
            }
        }
        out.retain(|k, _| self.allowed(k));
        for (k, v) in &self.env {
            if self.allowed(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        if let Some(path) = &self.credential_file {
            out.insert(
                "HYOPS_VYOS_GCS_SA_JSON_FILE".to_owned(),
                path.display().to_string(),
            );
        }
        out
    }

    fn allowed(&self, key: &str) -> bool {
        if DENIED_ENV_PREFIXES.iter().any(|p| key.starts_with(p)) {
            return false;
        }
        self.inherit_store_credentials || !STORE_SECRET_VARS.contains(&key)
    }

    /// The argv as it will be executed (program first).
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = match &self.program {
            Program::Exec(p) => vec![p.clone().into_os_string()],
            Program::BashScript(s) => vec!["/bin/bash".into(), "-lc".into(), s.into()],
        };
        argv.extend(self.args.iter().cloned());
        argv
    }
}
