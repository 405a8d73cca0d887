//! The transport layer's error type.

use std::io;

/// Why the plugin could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Started without go-plugin's magic cookie: not launched by Terraform.
    #[error("not launched by Terraform or OpenTofu (the plugin magic cookie is missing or wrong)")]
    NotLaunchedByTerraform,
    /// Terraform offered only plugin protocol versions this provider does not speak.
    #[error(
        "Terraform offered plugin protocol version(s) {offered:?}; this provider speaks only \
         protocol 5 (Terraform 0.12 or later)"
    )]
    UnsupportedProtocol {
        /// The raw `PLUGIN_PROTOCOL_VERSIONS` value.
        offered: String,
    },
    /// `PLUGIN_CLIENT_CERT` is not one PEM certificate.
    #[error("PLUGIN_CLIENT_CERT holds no usable PEM certificate: {0}")]
    ClientCert(String),
    /// The server certificate could not be generated.
    #[error("generating the server certificate: {0}")]
    ServerCert(#[from] rcgen::Error),
    /// rustls refused the TLS configuration.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// No socket could be opened.
    #[error("opening the plugin listener ({what}): {source}")]
    Listen {
        /// What was tried (unix socket path, TCP port range).
        what: String,
        /// The last failure.
        #[source]
        source: io::Error,
    },
    /// `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT` are not a valid range.
    #[error("invalid TCP port range from PLUGIN_MIN_PORT/PLUGIN_MAX_PORT: {0}")]
    PortRange(String),
    /// Writing the handshake line failed (Terraform went away).
    #[error("writing the handshake line to stdout: {0}")]
    Handshake(#[source] io::Error),
    /// Installing signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}
