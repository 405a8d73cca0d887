//! The accept loop: takes connections off the listener, completes TLS on each in its own task
//! (bounded by a timeout, so one stalled peer cannot block others) and hands finished streams
//! to tonic.
//!
//! Knows nothing about gRPC services.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::conn::Conn;
use super::listener::PluginListener;

/// How long a peer may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections ready for tonic.
pub(super) type Incoming = ReceiverStream<std::io::Result<Conn>>;

/// Start accepting on `listener` until `shutdown`; TLS-wrap each connection when `tls` is set.
/// The task gives the listener back when it ends, so the caller decides when the socket goes.
pub(super) fn spawn_accept_loop(
    listener: PluginListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> (Incoming, JoinHandle<PluginListener>) {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = tls.map(TlsAcceptor::from);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let conn = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a plugin connection failed");
                    // Transient (e.g. EMFILE): back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(acceptor) = acceptor.clone() else {
                if tx.send(Ok(conn)).await.is_err() {
                    break;
                }
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(Conn::new(tls))).await;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "TLS handshake with client failed"),
                    Err(_) => tracing::warn!("TLS handshake with client timed out"),
                }
            });
        }
        listener
    });
    (ReceiverStream::new(rx), task)
}
