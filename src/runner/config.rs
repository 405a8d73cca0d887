//! [`RunnerConfig`]: where and how to reach the build runner (the provider's `build_runner` block,
//! or `HYOPS_VYOS_BUILD_RUNNER_*` for the operator CLI). Made by [`RunnerConfigBuilder`]:
//! [`RunnerConfigBuilder::from_env`] reads the variables named below, `with_*` setters override,
//! [`RunnerConfigBuilder::build`] validates. There is deliberately no way to skip host-key checks.

use std::path::PathBuf;
use std::time::Duration;

use super::RunnerError;

/// `host` (required; the variable's presence turns the runner on for the CLI).
pub const ENV_HOST: &str = "HYOPS_VYOS_BUILD_RUNNER_HOST";
/// `port` (default 22).
pub const ENV_PORT: &str = "HYOPS_VYOS_BUILD_RUNNER_PORT";
/// `user` (default: ssh's own default / `~/.ssh/config`).
pub const ENV_USER: &str = "HYOPS_VYOS_BUILD_RUNNER_USER";
/// `identity_file`.
pub const ENV_IDENTITY_FILE: &str = "HYOPS_VYOS_BUILD_RUNNER_IDENTITY_FILE";
/// `known_hosts_file`.
pub const ENV_KNOWN_HOSTS_FILE: &str = "HYOPS_VYOS_BUILD_RUNNER_KNOWN_HOSTS_FILE";
/// `host_key` (one `known_hosts` key: `ssh-ed25519 AAAA…`).
pub const ENV_HOST_KEY: &str = "HYOPS_VYOS_BUILD_RUNNER_HOST_KEY";
/// `proxy_jump`.
pub const ENV_PROXY_JUMP: &str = "HYOPS_VYOS_BUILD_RUNNER_PROXY_JUMP";
/// `remote_dir` (default [`DEFAULT_REMOTE_DIR`]).
pub const ENV_REMOTE_DIR: &str = "HYOPS_VYOS_BUILD_RUNNER_REMOTE_DIR";
/// `connect_timeout` (Go duration or seconds; default 30s).
pub const ENV_CONNECT_TIMEOUT: &str = "HYOPS_VYOS_BUILD_RUNNER_CONNECT_TIMEOUT";

/// Default `remote_dir` (`~` is the runner user's home).
pub const DEFAULT_REMOTE_DIR: &str = "~/.cache/hybridops/runner";
/// Default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the runner's host key is checked (always checked; never skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// ssh's own known-hosts files (`~/.ssh/known_hosts`, `~/.ssh/config`), strictly
    UserKnownHosts,
    /// this `known_hosts` file only
    KnownHostsFile(PathBuf),
    /// exactly this public key (`<type> <base64>`)
    HostKey(String),
}

/// A validated runner configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) host_key: HostKeyCheck,
    pub(crate) proxy_jump: Option<String>,
    pub(crate) remote_dir: String,
    pub(crate) connect_timeout: Duration,
}

impl RunnerConfig {
    /// The host as configured (named in the contract and in diagnostics).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The runner directory as configured (`~/…` relative to the runner user's home).
    pub fn remote_dir(&self) -> &str {
        &self.remote_dir
    }
    /// `connect_timeout`.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// `[user@]host[:port]` for messages.
    pub fn display_target(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        if self.port == 22 {
            format!("{user}{}", self.host)
        } else {
            format!("{user}{}:{}", self.host, self.port)
        }
    }
}

/// Builder for [`RunnerConfig`]; every field is a plain string until [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct RunnerConfigBuilder {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    identity_file: Option<String>,
    known_hosts_file: Option<String>,
    host_key: Option<String>,
    proxy_jump: Option<String>,
    remote_dir: Option<String>,
    connect_timeout: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

macro_rules! setter {
    ($name:ident, $field:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(mut self, v: Option<impl Into<String>>) -> Self {
            if let Some(v) = v {
                self.$field = Some(v.into());
            }
            self
        }
    };
}

impl RunnerConfigBuilder {
    /// An empty builder (no runner unless `host` is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// The `HYOPS_VYOS_BUILD_RUNNER_*` variables of this process.
    pub fn from_env() -> Self {
        RunnerConfigBuilder {
            host: var(ENV_HOST),
            port: var(ENV_PORT),
            user: var(ENV_USER),
            identity_file: var(ENV_IDENTITY_FILE),
            known_hosts_file: var(ENV_KNOWN_HOSTS_FILE),
            host_key: var(ENV_HOST_KEY),
            proxy_jump: var(ENV_PROXY_JUMP),
            remote_dir: var(ENV_REMOTE_DIR),
            connect_timeout: var(ENV_CONNECT_TIMEOUT),
        }
    }

    setter!(with_host, host, "Set `host`.");
    setter!(with_port, port, "Set `port` (decimal).");
    setter!(with_user, user, "Set `user`.");
    setter!(with_identity_file, identity_file, "Set `identity_file`.");
    setter!(
        with_known_hosts_file,
        known_hosts_file,
        "Set `known_hosts_file`."
    );
    setter!(with_host_key, host_key, "Set `host_key`.");
    setter!(with_proxy_jump, proxy_jump, "Set `proxy_jump`.");
    setter!(with_remote_dir, remote_dir, "Set `remote_dir`.");
    setter!(
        with_connect_timeout,
        connect_timeout,
        "Set `connect_timeout` (`30s`, `2m`, or seconds)."
    );

    /// True when a host is set (the runner is wanted).
    pub fn is_set(&self) -> bool {
        self.host.is_some()
    }

    /// Validate: `None` when no host is set; errors name the field.
    pub fn build(self) -> Result<Option<RunnerConfig>, RunnerError> {
        let Some(host) = self.host else {
            return Ok(None);
        };
        let bad = |field: &'static str, message: String| RunnerError::Config { field, message };
        let host = host.trim().to_owned();
        if host.starts_with('-')
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
        {
            return Err(bad(
                "host",
                format!("{host:?} is not a host name or address"),
            ));
        }
        let port = match self.port {
            None => 22,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("port", format!("{p:?} is not a TCP port")))?,
        };
        let plain =
            |field: &'static str, v: Option<String>| -> Result<Option<String>, RunnerError> {
                match v {
                    Some(v) if v.starts_with('-') || v.chars().any(|c| c.is_control()) => {
                        Err(bad(field, format!("{v:?} is not usable here")))
                    }
                    other => Ok(other),
                }
            };
        let user = plain("user", self.user)?;
        if let Some(u) = &user {
            if u.chars().any(|c| c.is_whitespace() || c == '@') {
                return Err(bad("user", format!("{u:?} is not a user name")));
            }
        }
        let identity_file = plain("identity_file", self.identity_file)?.map(PathBuf::from);
        let known_hosts_file = plain("known_hosts_file", self.known_hosts_file)?;
        let host_key = plain("host_key", self.host_key)?;
        let host_key = match (known_hosts_file, host_key) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "host_key",
                    "set known_hosts_file or host_key, not both".to_owned(),
                ))
            }
            (Some(f), None) => HostKeyCheck::KnownHostsFile(PathBuf::from(f)),
            (None, Some(k)) => {
                let parts: Vec<&str> = k.split_whitespace().collect();
                let key = match parts.as_slice() {
                    [t, b64, ..]
                        if t.starts_with("ssh-")
                            || t.starts_with("ecdsa-")
                            || t.starts_with("sk-") =>
                    {
                        format!("{t} {b64}")
                    }
                    _ => {
                        return Err(bad(
                            "host_key",
                            "expected a public key as `<type> <base64>` (e.g. the content of \
                             /etc/ssh/ssh_host_ed25519_key.pub)"
                                .to_owned(),
                        ))
                    }
                };
                HostKeyCheck::HostKey(key)
            }
            (None, None) => HostKeyCheck::UserKnownHosts,
        };
        let proxy_jump = plain("proxy_jump", self.proxy_jump)?;
        let remote_dir =
            plain("remote_dir", self.remote_dir)?.unwrap_or_else(|| DEFAULT_REMOTE_DIR.to_owned());
        if !(remote_dir.starts_with('/') || remote_dir.starts_with("~/"))
            || remote_dir.split('/').any(|s| s == "..")
        {
            return Err(bad(
                "remote_dir",
                format!("{remote_dir:?} must be absolute or start with ~/, without .. segments"),
            ));
        }
        let connect_timeout = match self.connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(t) => parse_timeout(&t).ok_or_else(|| {
                bad(
                    "connect_timeout",
                    format!("{t:?} is not a duration such as 30s"),
                )
            })?,
        };
        Ok(Some(RunnerConfig {
            host,
            port,
            user,
            identity_file,
            host_key,
            proxy_jump,
            remote_dir: remote_dir.trim_end_matches('/').to_owned(),
            connect_timeout,
        }))
    }
}

/// `30s`/`2m` (Go duration) or plain seconds; at least one second (ssh counts whole seconds).
fn parse_timeout(t: &str) -> Option<Duration> {
    let t = t.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => crate::engine::duration::parse_go_duration(t).ok()?,
    };
    (d >= Duration::from_secs(1)).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation_name_the_field() {
        let c = RunnerConfigBuilder::new()
            .with_host(Some("runner.example"))
            .build()
            .unwrap()
            .unwrap();
        assert_eq!(c.port, 22);
        assert_eq!(c.remote_dir, DEFAULT_REMOTE_DIR);
        assert_eq!(c.host_key, HostKeyCheck::UserKnownHosts);
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(RunnerConfigBuilder::new().build().unwrap().is_none());
        let err = |b: RunnerConfigBuilder| match b.build() {
            Err(RunnerError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let base = || RunnerConfigBuilder::new().with_host(Some("h"));
        assert_eq!(err(base().with_port(Some("0"))), "port");
        assert_eq!(err(base().with_remote_dir(Some("rel/dir"))), "remote_dir");
        assert_eq!(err(base().with_remote_dir(Some("/a/../b"))), "remote_dir");
        assert_eq!(
            err(base().with_connect_timeout(Some("soon"))),
            "connect_timeout"
        );
        assert_eq!(err(base().with_host_key(Some("nonsense"))), "host_key");
        assert_eq!(
            err(base()
                .with_host_key(Some("ssh-ed25519 AAAA"))
                .with_known_hosts_file(Some("/k"))),
            "host_key"
        );
        assert_eq!(
            err(RunnerConfigBuilder::new().with_host(Some("-oProxyCommand=x"))),
            "host"
        );
        let c = base()
            .with_host_key(Some("ssh-ed25519 AAAAC3 root@x"))
            .with_connect_timeout(Some("5"))
            .build()
            .unwrap()
            .unwrap();
        assert_eq!(
            c.host_key,
            HostKeyCheck::HostKey("ssh-ed25519 AAAAC3".into())
        );
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
    }
}
