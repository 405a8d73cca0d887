//! The plugin's listening socket: a unix socket in a fresh 0700 directory, or loopback TCP
//! within Terraform's port range when unix sockets are unavailable.
//!
//! Owns the socket's lifetime: the directory (and the socket in it) is removed when the
//! [`PluginListener`] is dropped, on every exit path that unwinds. Knows nothing about TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::{TcpListener, UnixListener};

use super::conn::Conn;
use super::handshake::Address;
use super::PluginError;

/// A bound listener plus whatever must be cleaned up with it.
#[derive(Debug)]
pub(super) struct PluginListener {
    inner: Inner,
    address: Address,
}

#[derive(Debug)]
enum Inner {
    Unix {
        listener: UnixListener,
        // Held for its Drop: removes the directory and the socket in it.
        _dir: tempfile::TempDir,
    },
    Tcp(TcpListener),
}

impl PluginListener {
    /// Bind a unix socket in a fresh 0700 directory under `socket_dir` (or the system temp
    /// dir); fall back to `127.0.0.1` on the first free port in `ports` when that fails.
    pub(super) async fn bind(
        socket_dir: Option<&Path>,
        ports: (u16, u16),
    ) -> Result<Self, PluginError> {
        match bind_unix(socket_dir) {
            Ok(l) => Ok(l),
            Err(unix_err) => {
                tracing::warn!(error = %unix_err, "unix socket unavailable, falling back to TCP");
                bind_tcp(ports).await
            }
        }
    }

    /// Where clients connect.
    pub(super) fn address(&self) -> &Address {
        &self.address
    }

    /// Accept one connection.
    pub(super) async fn accept(&self) -> std::io::Result<Conn> {
        match &self.inner {
            Inner::Unix { listener, .. } => listener.accept().await.map(|(s, _)| Conn::new(s)),
            Inner::Tcp(listener) => {
                let (s, _) = listener.accept().await?;
                s.set_nodelay(true)?;
                Ok(Conn::new(s))
            }
        }
    }
}

fn bind_unix(socket_dir: Option<&Path>) -> Result<PluginListener, PluginError> {
    let listen_err = |what: String| move |source| PluginError::Listen { what, source };
    let base = socket_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("hyops-plugin-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(listen_err(format!("temp dir in {}", base.display())))?;
    let path = dir.path().join("plugin.sock");
    let listener =
        UnixListener::bind(&path).map_err(listen_err(format!("unix socket {}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(listen_err(format!("chmod {}", path.display())))?;
    Ok(PluginListener {
        inner: Inner::Unix {
            listener,
            _dir: dir,
        },
        address: Address::Unix(path),
    })
}

async fn bind_tcp((min, max): (u16, u16)) -> Result<PluginListener, PluginError> {
    let mut last = None;
    for port in min..=max {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(|source| PluginError::Listen {
                        what: "tcp local address".into(),
                        source,
                    })?;
                return Ok(PluginListener {
                    inner: Inner::Tcp(listener),
                    address: Address::Tcp(addr),
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(PluginError::Listen {
        what: format!("tcp 127.0.0.1:{min}-{max}"),
        source: last.unwrap_or_else(|| std::io::Error::other("empty port range")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unix_socket_lives_in_private_dir_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let l = PluginListener::bind(Some(base.path()), (10000, 25000))
            .await
            .unwrap();
        let Address::Unix(path) = l.address().clone() else {
            panic!("expected a unix socket")
        };
        let dir = path.parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(path.exists());
        drop(l);
        assert!(!path.exists());
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn falls_back_to_loopback_tcp_when_unix_bind_fails() {
        let missing = Path::new("/nonexistent/hyops-test-dir");
        let l = PluginListener::bind(Some(missing), (20000, 25000))
            .await
            .unwrap();
        match l.address() {
            Address::Tcp(a) => {
                assert!(a.ip().is_loopback());
                assert!((20000..=25000).contains(&a.port()));
            }
            other => panic!("expected tcp, got {other:?}"),
        }
    }
}
