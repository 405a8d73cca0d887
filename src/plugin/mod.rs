//! go-plugin transport: everything between Terraform's process launch and the provider's gRPC
//! service.
//!
//! Plugin mode ([`serve`] with [`ServeMode::Plugin`]): check the handshake environment, bind a
//! unix socket in a fresh 0700 directory (loopback TCP as fallback), set up AutoMTLS pinned to
//! Terraform's client certificate, print the one handshake line on stdout, then serve
//! `tfplugin5.Provider` with `grpc.health.v1.Health` (`plugin` = SERVING) and go-plugin's broker,
//! stdio and controller services until `GRPCController.Shutdown`, SIGTERM, or the parent
//! (Terraform) disappearing. SIGINT is ignored: Terraform forwards Ctrl-C to the whole process
//! group and cancels through `Stop` instead.
//!
//! Debug mode ([`ServeMode::Debug`]): plaintext on the private socket, the
//! `TF_REATTACH_PROVIDERS` line on stdout, runs until Ctrl-C / SIGTERM / Shutdown.
//!
//! This layer hosts the provider service but never reads tfplugin5 messages. Logging for plugin
//! mode lives in [`logging`].

mod conn;
pub mod debug;
mod error;
pub mod handshake;
mod incoming;
mod listener;
pub mod logging;
mod services;
mod tls;

use std::convert::Infallible;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;

pub use error::PluginError;
pub use handshake::{cookie_present, not_a_plugin_message, HandshakeEnv};

use crate::tfplugin5::goplugin::{
    grpc_broker_server::GrpcBrokerServer, grpc_controller_server::GrpcControllerServer,
    grpc_stdio_server::GrpcStdioServer,
};
use listener::PluginListener;

/// The gRPC message size limit, both directions (Terraform's own limit is 256 MiB too). Apply
/// it to the provider service with `max_decoding_message_size` / `max_encoding_message_size`.
pub const MAX_GRPC_MESSAGE_SIZE: usize = 256 << 20;

/// How long in-flight RPCs may take to finish once shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the plugin is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// Launched by Terraform: handshake line, AutoMTLS when a client cert is given.
    Plugin,
    /// Started by hand for a debugger: plaintext, reattach line.
    Debug,
}

/// Options for [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Plugin or debug mode.
    pub mode: ServeMode,
    /// The handshake environment (normally [`HandshakeEnv::from_env`]).
    pub env: HandshakeEnv,
    /// Provider source address used in the reattach line.
    pub provider_address: String,
}

impl ServeOptions {
    /// Plugin mode, configured from the process environment.
    pub fn plugin() -> ServeOptions {
        ServeOptions {
            mode: ServeMode::Plugin,
            env: HandshakeEnv::from_env(),
            provider_address: debug::PROVIDER_ADDRESS.to_string(),
        }
    }

    /// Debug (reattach) mode, configured from the process environment.
    pub fn debug() -> ServeOptions {
        ServeOptions {
            mode: ServeMode::Debug,
            ..ServeOptions::plugin()
        }
    }
}

/// Serve `provider` (the generated `ProviderServer<T>`, already configured) over go-plugin until
/// shutdown. Returns once the server stopped and the socket is removed.
pub async fn serve<S>(provider: S, opts: ServeOptions) -> Result<(), PluginError>
where
    S: tonic::codegen::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let version = opts.env.negotiate_version()?;
    let shutdown = CancellationToken::new();
    watch_signals(opts.mode, shutdown.clone())?;
    if opts.mode == ServeMode::Plugin {
        // Before the handshake line: the parent seen here is certainly Terraform.
        watch_parent(shutdown.clone());
    }

    let socket_dir = opts
        .env
        .unix_socket_dir
        .as_deref()
        .map(std::path::Path::new);
    let listener = PluginListener::bind(socket_dir, opts.env.port_range()?).await?;
    let address = listener.address().clone();

    let tls = match (opts.mode, opts.env.client_cert_pem.as_deref()) {
        (ServeMode::Plugin, Some(pem)) => Some(tls::ServerTls::new(pem)?),
        _ => None,
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(GrpcBrokerServer::new(services::Broker::new(
            shutdown.clone(),
        )))
        .add_service(GrpcStdioServer::new(services::Stdio::new(shutdown.clone())))
        .add_service(GrpcControllerServer::new(services::Controller::new(
            shutdown.clone(),
        )))
        .add_service(provider);

    let (incoming, accept_task) = incoming::spawn_accept_loop(
        listener,
        tls.as_ref().map(|t| t.config.clone()),
        shutdown.clone(),
    );

    match opts.mode {
        ServeMode::Plugin => handshake::announce(&handshake::handshake_line(
            version,
            &address,
            tls.as_ref().map(|t| t.cert_der.as_ref()),
        ))?,
        ServeMode::Debug => handshake::announce(&debug::reattach_line(
            &opts.provider_address,
            version,
            std::process::id(),
            &address,
        ))?,
    }

    tracing::info!(
        network = address.network(),
        address = %address.address(),
        tls = tls.is_some(),
        "plugin serving"
    );

    let server = router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(PluginError::from),
        () = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("in-flight requests did not finish within the shutdown grace period");
            Ok(())
        }
    };
    shutdown.cancel();
    // The accept loop ends on the token and hands the listener back; dropping it removes the
    // socket and its directory.
    match accept_task.await {
        Ok(listener) => drop(listener),
        Err(e) => tracing::warn!(error = %e, "accept loop ended abnormally"),
    }
    tracing::info!("plugin stopped");
    result
}

/// How often the orphan watchdog looks at the parent pid.
const PARENT_POLL: Duration = Duration::from_secs(2);

/// Stop when Terraform disappears without shutting us down (killed with SIGKILL, crashed): the
/// process gets re-parented, so the parent pid changes. Polling is used rather than
/// `PR_SET_PDEATHSIG`, which fires when the spawning *thread* exits — routine in a Go parent.
fn watch_parent(shutdown: CancellationToken) {
    // SAFETY: getppid(2) has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PARENT_POLL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    // SAFETY: as above.
                    if unsafe { libc::getppid() } != parent {
                        tracing::warn!("Terraform (parent process) went away, stopping");
                        shutdown.cancel();
                        break;
                    }
                }
            }
        }
    });
}

/// SIGTERM stops the plugin; SIGINT stops it only in debug mode (in plugin mode Terraform sends
/// Ctrl-C to the whole process group and then cancels through `Stop`, so it is ignored).
fn watch_signals(mode: ServeMode, shutdown: CancellationToken) -> Result<(), PluginError> {
    let mut term = signal(SignalKind::terminate()).map_err(PluginError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(PluginError::Signals)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM received, stopping");
                    shutdown.cancel();
                }
                _ = int.recv() => {
                    if mode == ServeMode::Debug {
                        tracing::info!("interrupt received, stopping");
                        shutdown.cancel();
                    } else {
                        tracing::debug!("ignoring SIGINT: Terraform cancels through Stop");
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
    });
    Ok(())
}
