//! go-plugin's handshake: the magic cookie, protocol version negotiation and the single line on
//! stdout that tells Terraform where to connect.
//!
//! Owns the environment variable names Terraform sets for a plugin. Knows nothing about TLS or
//! gRPC beyond the words `grpc` and the certificate bytes it is handed.
//!
//! Caveat: stdout belongs to this line alone; anything else printed there breaks Terraform's
//! parser, so the line is written once, with one flush.

use std::io::Write;

use base64::Engine;

use super::PluginError;

/// Name of go-plugin's magic cookie variable for Terraform providers.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value Terraform and OpenTofu set it to.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's core protocol version (the first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol this provider speaks.
pub const APP_PROTOCOL_VERSION: u32 = 5;

const PROTOCOL_VERSIONS_KEY: &str = "PLUGIN_PROTOCOL_VERSIONS";
const CLIENT_CERT_KEY: &str = "PLUGIN_CLIENT_CERT";
const MIN_PORT_KEY: &str = "PLUGIN_MIN_PORT";
const MAX_PORT_KEY: &str = "PLUGIN_MAX_PORT";
const UNIX_SOCKET_DIR_KEY: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// Whether the process was started as a plugin (the magic cookie is set to its value).
pub fn cookie_present() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE)
}

/// The explanation printed on stderr when the binary is run by hand without arguments.
pub fn not_a_plugin_message(program: &str) -> String {
    format!(
        "{program} is a Terraform/OpenTofu provider plugin (protocol 5).\n\
         Terraform starts it itself; it is not meant to be run directly.\n\
         \n\
         To build and publish an image without Terraform, use the operator CLI:\n\
         \x20   {program} image validate --config SPEC.json\n\
         \x20   {program} image apply --config SPEC.json\n\
         To attach a debugger, run `{program} --debug` and export the TF_REATTACH_PROVIDERS \
         line it prints.\n"
    )
}

/// Everything the handshake reads from the environment, read once.
#[derive(Debug, Clone, Default)]
pub struct HandshakeEnv {
    /// `PLUGIN_PROTOCOL_VERSIONS`, e.g. `5,6`.
    pub protocol_versions: Option<String>,
    /// `PLUGIN_CLIENT_CERT` (PEM); absent when Terraform runs without AutoMTLS.
    pub client_cert_pem: Option<String>,
    /// `PLUGIN_MIN_PORT`.
    pub min_port: Option<String>,
    /// `PLUGIN_MAX_PORT`.
    pub max_port: Option<String>,
    /// `PLUGIN_UNIX_SOCKET_DIR`.
    pub unix_socket_dir: Option<String>,
}

impl HandshakeEnv {
    /// Read the variables Terraform sets for a plugin (empty values count as unset).
    pub fn from_env() -> HandshakeEnv {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        HandshakeEnv {
            protocol_versions: get(PROTOCOL_VERSIONS_KEY),
            client_cert_pem: get(CLIENT_CERT_KEY),
            min_port: get(MIN_PORT_KEY),
            max_port: get(MAX_PORT_KEY),
            unix_socket_dir: get(UNIX_SOCKET_DIR_KEY),
        }
    }

    /// The protocol version to serve: 5 if offered (or nothing was offered, as go-plugin
    /// falls back to the plugin's own version), else an error naming what was offered.
    pub fn negotiate_version(&self) -> Result<u32, PluginError> {
        let Some(offered) = &self.protocol_versions else {
            return Ok(APP_PROTOCOL_VERSION);
        };
        let speaks_ours = offered
            .split(',')
            .any(|v| v.trim().parse::<u32>() == Ok(APP_PROTOCOL_VERSION));
        if speaks_ours {
            Ok(APP_PROTOCOL_VERSION)
        } else {
            Err(PluginError::UnsupportedProtocol {
                offered: offered.clone(),
            })
        }
    }

    /// The TCP port range for the fallback listener (go-plugin's defaults: 10000..=25000).
    pub fn port_range(&self) -> Result<(u16, u16), PluginError> {
        let parse = |v: &Option<String>, default: u16| -> Result<u16, PluginError> {
            match v {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| PluginError::PortRange(format!("{s:?} is not a port number"))),
            }
        };
        let min = parse(&self.min_port, 10000)?;
        let max = parse(&self.max_port, 25000)?;
        if min == 0 || min > max {
            return Err(PluginError::PortRange(format!("{min}..{max}")));
        }
        Ok((min, max))
    }
}

/// Where the plugin listens, as the handshake line and the reattach config name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix socket path.
    Unix(std::path::PathBuf),
    /// A loopback TCP address.
    Tcp(std::net::SocketAddr),
}

impl Address {
    /// go-plugin's network name: `unix` or `tcp`.
    pub fn network(&self) -> &'static str {
        match self {
            Address::Unix(_) => "unix",
            Address::Tcp(_) => "tcp",
        }
    }

    /// The address string go-plugin dials.
    pub fn address(&self) -> String {
        match self {
            Address::Unix(p) => p.display().to_string(),
            Address::Tcp(a) => a.to_string(),
        }
    }
}

/// The handshake line, newline included:
/// `CORE|APP|NETWORK|ADDRESS|grpc|CERT` where CERT is the server certificate's DER in standard
/// base64 without padding, or empty without AutoMTLS.
pub fn handshake_line(version: u32, address: &Address, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!(
        "{CORE_PROTOCOL_VERSION}|{version}|{}|{}|grpc|{cert}\n",
        address.network(),
        address.address()
    )
}

/// Write the handshake line to stdout and flush it.
pub fn announce(line: &str) -> Result<(), PluginError> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(PluginError::Handshake)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(versions: Option<&str>) -> HandshakeEnv {
        HandshakeEnv {
            protocol_versions: versions.map(str::to_string),
            ..HandshakeEnv::default()
        }
    }

    #[test]
    fn version_5_is_chosen_when_offered_or_nothing_offered() {
        for offered in [None, Some("5"), Some("5,6"), Some("4, 5")] {
            assert_eq!(
                env(offered).negotiate_version().ok(),
                Some(5),
                "{offered:?}"
            );
        }
    }

    #[test]
    fn version_negotiation_fails_without_5() {
        for offered in ["6", "4,6", "x"] {
            let err = env(Some(offered)).negotiate_version().unwrap_err();
            assert!(err.to_string().contains(offered), "{err}");
        }
    }

    #[test]
    fn handshake_line_has_unpadded_base64_cert() {
        let line = handshake_line(
            5,
            &Address::Unix("/tmp/x/p.sock".into()),
            Some(&[1, 2, 3, 4]),
        );
        assert_eq!(line, "1|5|unix|/tmp/x/p.sock|grpc|AQIDBA\n");
        let tcp = handshake_line(5, &Address::Tcp("127.0.0.1:10001".parse().unwrap()), None);
        assert_eq!(tcp, "1|5|tcp|127.0.0.1:10001|grpc|\n");
    }

    #[test]
    fn port_range_defaults_and_validation() {
        assert_eq!(
            HandshakeEnv::default().port_range().unwrap(),
            (10000, 25000)
        );
        let bad = HandshakeEnv {
            min_port: Some("30000".into()),
            max_port: Some("20000".into()),
            ..HandshakeEnv::default()
        };
        assert!(bad.port_range().is_err());
    }
}
