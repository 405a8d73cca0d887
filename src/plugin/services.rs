//! go-plugin's side services every Terraform provider must serve next to `tfplugin5.Provider`:
//! the broker (kept open, never used), stdio mirroring (open and silent) and the controller
//! whose `Shutdown` stops the plugin.
//!
//! Owns nothing but the shutdown token it is given; knows nothing about the provider.

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::tfplugin5::goplugin::{
    grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio, ConnInfo, Empty, StdioData,
};

/// A stream that yields nothing and ends when `shutdown` fires.
fn silent_until<T: Send + 'static>(shutdown: CancellationToken) -> BoxStream<T> {
    stream::once(async move { shutdown.cancelled_owned().await })
        .filter_map(|()| async { None })
        .boxed()
}

/// `plugin.GRPCBroker`: this provider brokers no extra connections; the stream Terraform opens
/// is held until shutdown.
#[derive(Debug, Clone)]
pub(super) struct Broker {
    shutdown: CancellationToken,
}

impl Broker {
    /// A broker whose streams end on `shutdown`.
    pub(super) fn new(shutdown: CancellationToken) -> Self {
        Broker { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<BoxStream<ConnInfo>>, Status> {
        let mut incoming = request.into_inner();
        let shutdown = self.shutdown.clone();
        // Drain what the client sends (it never should) so its stream does not stall.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    msg = incoming.next() => match msg {
                        Some(Ok(info)) => tracing::debug!(
                            service_id = info.service_id,
                            "ignoring broker connection offer"
                        ),
                        Some(Err(_)) | None => break,
                    },
                }
            }
        });
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// `plugin.GRPCStdio`: this provider never writes to stdout after the handshake and logs on
/// stderr directly, so the stream carries nothing.
#[derive(Debug, Clone)]
pub(super) struct Stdio {
    shutdown: CancellationToken,
}

impl Stdio {
    /// A stdio service whose streams end on `shutdown`.
    pub(super) fn new(shutdown: CancellationToken) -> Self {
        Stdio { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<BoxStream<StdioData>>, Status> {
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// `plugin.GRPCController`: `Shutdown` triggers the plugin's graceful stop. Without it
/// Terraform waits two seconds and kills the plugin at every exit.
#[derive(Debug, Clone)]
pub(super) struct Controller {
    shutdown: CancellationToken,
}

impl Controller {
    /// A controller that fires `shutdown`.
    pub(super) fn new(shutdown: CancellationToken) -> Self {
        Controller { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by the plugin client");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}
