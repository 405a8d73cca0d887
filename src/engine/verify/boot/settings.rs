//! [`BootSettings`]: the `smoke_verify.boot` block with every default resolved against the build
//! method and the resolved `build` block. Resolution happens once per create (and in validation),
//! so a bad regex or duration is reported before anything runs.

use std::time::Duration;

use regex::Regex;

use crate::engine::build::BuildSettings;
use crate::engine::duration::parse_go_duration;
use crate::engine::spec::{BootAccelerator, BuildMethod, Console, SmokeVerifySpec};

/// Default `timeout`.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default `memory_mb`.
pub const DEFAULT_MEMORY_MB: u32 = 1024;
/// Default `expect` when `build.console = "serial"`: a login prompt at the end of a line.
pub const LOGIN_PROMPT: &str = r"(?m)login:[ \t]*\r?$";
/// Default `fail_on`: a kernel panic, systemd's emergency mode, firmware finding nothing to boot.
pub const DEFAULT_FAIL_ON: &[&str] = &[
    r"Kernel panic",
    r"(?i)emergency mode",
    r"No bootable device",
];

/// A `smoke_verify.boot` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("smoke_verify.boot.{field}: {message}")]
pub struct BootSettingsError {
    /// attribute name inside the `boot` block
    pub field: &'static str,
    /// what is wrong and how to fix it
    pub message: String,
}

/// The resolved `smoke_verify.boot` block (only built when boot verification is enabled).
#[derive(Debug, Clone)]
pub struct BootSettings {
    /// requested accelerator
    pub accelerator: BootAccelerator,
    /// `build.allow_tcg`: `auto` may fall back to TCG
    pub allow_tcg: bool,
    /// give up after this long
    pub timeout: Duration,
    /// guest memory
    pub memory_mb: u32,
    /// the guest agent must answer `guest-ping` and `guest-info`
    pub guest_agent: bool,
    /// cloud-init must report the seed's fresh instance-id
    pub cloud_init: bool,
    /// `build.console = "serial"`: cloud-init may also be proven on the console
    pub serial_console: bool,
    /// patterns that must all appear on the serial console
    pub expect: Vec<Regex>,
    /// patterns that fail the boot at once
    pub fail_on: Vec<Regex>,
}

fn compile(field: &'static str, patterns: &[String]) -> Result<Vec<Regex>, BootSettingsError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| BootSettingsError {
                field,
                message: format!("{p:?} is not a valid regular expression: {e}"),
            })
        })
        .collect()
}

impl BootSettings {
    /// Resolve `smoke.boot` against the build. `Ok(None)`: boot verification is disabled (the
    /// default for `build.method = "command"`, or `enabled = false`).
    pub fn resolve(
        smoke: &SmokeVerifySpec,
        build: &BuildSettings,
    ) -> Result<Option<Self>, BootSettingsError> {
        let spec = smoke.boot.clone().unwrap_or_default();
        let enabled = spec.enabled.unwrap_or(build.method != BuildMethod::Command);
        let timeout = match &spec.timeout {
            Some(t) => parse_go_duration(t).map_err(|e| BootSettingsError {
                field: "timeout",
                message: e.to_string(),
            })?,
            None => DEFAULT_BOOT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(BootSettingsError {
                field: "timeout",
                message: "must be longer than zero".to_owned(),
            });
        }
        let memory_mb = spec.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if !(128..=65536).contains(&memory_mb) {
            return Err(BootSettingsError {
                field: "memory_mb",
                message: format!("{memory_mb} is outside 128..=65536"),
            });
        }
        let serial_console = build.console == Console::Serial;
        let expect = match &spec.expect {
            Some(list) => compile("expect", list)?,
            None if serial_console => compile("expect", &[LOGIN_PROMPT.to_owned()])?,
            None => Vec::new(),
        };
        let fail_on = match &spec.fail_on {
            Some(list) => compile("fail_on", list)?,
            None => compile(
                "fail_on",
                &DEFAULT_FAIL_ON
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect::<Vec<_>>(),
            )?,
        };
        let guest_agent = spec.guest_agent.unwrap_or(build.guest_agent == "qemu");
        let cloud_init = spec.cloud_init.unwrap_or(build.cloud_init);
        if enabled && expect.is_empty() && !guest_agent && !cloud_init {
            return Err(BootSettingsError {
                field: "expect",
                message:
                    "nothing to wait for: with guest_agent and cloud_init off and a non-serial \
                          console, set expect (console regexes) or enabled = false"
                        .to_owned(),
            });
        }
        if !enabled {
            return Ok(None);
        }
        Ok(Some(BootSettings {
            accelerator: spec.accelerator.unwrap_or_default(),
            allow_tcg: build.allow_tcg,
            timeout,
            memory_mb,
            guest_agent,
            cloud_init,
            serial_console,
            expect,
            fail_on,
        }))
    }
}
