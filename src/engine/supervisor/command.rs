//! What to run: [`CommandSpec`], made with chained setters, plus the environment policy applied
//! to every child.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Variables every child gets from the parent environment when they are set there (the
/// allow-list; DESIGN §2 / issue #12). Nothing else is inherited unless a spec names it with
/// [`CommandSpec::inherit`].
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "TZ",
    "TERM",
    "TMPDIR",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Prefixes of inherited variables (the locale categories `LC_ALL`, `LC_CTYPE`, …).
pub const INHERITED_ENV_PREFIXES: &[&str] = &["LC_"];

/// Names (prefixes) that never reach a child by inheritance or explicit value, whatever the spec
/// says: the GCS service-account variables (the publish command gets a path only, through
/// [`CommandSpec::credential_file`]) and the go-plugin handshake variables.
pub const DENIED_ENV_PREFIXES: &[&str] = &[
    "HYOPS_VYOS_GCS_SA_JSON",
    "TF_PLUGIN_MAGIC_COOKIE",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_PROTOCOL_VERSIONS",
];

/// True when `name` may never reach a child ([`DENIED_ENV_PREFIXES`]).
pub fn env_name_denied(name: &str) -> bool {
    DENIED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// True when `name` is on the base allow-list ([`INHERITED_ENV`], [`INHERITED_ENV_PREFIXES`]).
pub fn env_name_inherited_by_default(name: &str) -> bool {
    INHERITED_ENV.contains(&name) || INHERITED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A valid environment variable name (`[A-Za-z_][A-Za-z0-9_]*`) that a spec asks to inherit from
/// the parent with [`CommandSpec::inherit`]. Internal callers use [`EnvName::from_static`] for
/// fixed names (checked at compile time in a `const`); operator-supplied names go through
/// [`EnvName::new`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvName(std::borrow::Cow<'static, str>);

/// Why a string is not an [`EnvName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an environment variable name (letters, digits and _; not starting with a digit)"
)]
pub struct InvalidEnvName(pub String);

const fn valid_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl EnvName {
    /// Checks `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidEnvName> {
        let name = name.into();
        if valid_env_name(&name) {
            Ok(EnvName(std::borrow::Cow::Owned(name)))
        } else {
            Err(InvalidEnvName(name))
        }
    }

    /// A fixed name. Panics (at compile time when used in a `const`) when it is not valid.
    pub const fn from_static(name: &'static str) -> Self {
        assert!(valid_env_name(name), "not an environment variable name");
        EnvName(std::borrow::Cow::Borrowed(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EnvName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// A builder-made description of one child process. Its `Debug` shows variable names, never
/// values (an operator may pass credentials through `build.pass_environment`).
#[derive(Clone)]
pub struct CommandSpec {
    pub(crate) program: Program,
    pub(crate) args: Vec<OsString>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) clear_env: bool,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) inherit: Vec<EnvName>,
    pub(crate) credential_file: Option<PathBuf>,
    pub(crate) log_path: PathBuf,
    pub(crate) capture_stdout: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) label: String,
    pub(crate) stdin: StdinSource,
    pub(crate) stderr_lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    pub(crate) sudo_group: bool,
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec")
            .field("label", &self.label)
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("clear_env", &self.clear_env)
            .field("env_names", &self.env.keys().collect::<Vec<_>>())
            .field("inherit", &self.inherit)
            .field("credential_file", &self.credential_file)
            .field("log_path", &self.log_path)
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .field("sudo_group", &self.sudo_group)
            .field("stdin", &self.stdin)
            .field("stderr_lines", &self.stderr_lines.is_some())
            .finish_non_exhaustive()
    }
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
            inherit: Vec::new(),
            credential_file: None,
            log_path,
            capture_stdout: false,
            timeout: None,
            grace: DEFAULT_GRACE,
            label,
            stdin: StdinSource::Null,
            stderr_lines: None,
            sudo_group: false,
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

    /// Start from an empty environment: not even the base allow-list ([`INHERITED_ENV`]) is
    /// inherited; only [`CommandSpec::inherit`] names and explicit values are set.
    pub fn clear_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Set one variable to an explicit value. Names on the deny-list ([`DENIED_ENV_PREFIXES`])
    /// are dropped at spawn time.
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

    /// Also copy `name` from the parent environment (when set there), on top of the base
    /// allow-list. This is how a caller hands its own child one specific variable it needs (for
    /// example `SSH_AUTH_SOCK` for `ssh`); denied names are dropped whatever is asked.
    pub fn inherit(mut self, name: EnvName) -> Self {
        if !self.inherit.contains(&name) {
            self.inherit.push(name);
        }
        self
    }

    /// [`CommandSpec::inherit`] for several names.
    pub fn inherit_all(mut self, names: impl IntoIterator<Item = EnvName>) -> Self {
        for n in names {
            self = self.inherit(n);
        }
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

    /// The program is `sudo -n …`: members of the group run as root. When this process is not
    /// root it cannot signal them itself, so the final SIGKILL of a cancel, timeout or drop is
    /// also sent through `sudo -n kill -s KILL -- -PGID` (SIGTERM reaches them because `sudo`,
    /// which this process may signal, relays it to the command).
    pub fn sudo_group(mut self) -> Self {
        self.sudo_group = true;
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

    /// The environment the child gets, built from nothing: the base allow-list read from the
    /// parent (unless [`CommandSpec::clear_env`]), then the [`CommandSpec::inherit`] names read
    /// from the parent, then the spec's explicit values, then the credential file path when one
    /// was given. Denied names never appear. Values are read from the parent when this is called
    /// (at spawn).
    pub fn effective_env(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let wanted = |k: &str| {
            (!self.clear_env && env_name_inherited_by_default(k))
                || self.inherit.iter().any(|n| n.as_str() == k)
        };
        for (k, v) in std::env::vars_os() {
            if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                if wanted(&k) && !env_name_denied(&k) {
                    out.insert(k, v);
                }
            }
        }
        for (k, v) in &self.env {
            if !env_name_denied(k) {
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
