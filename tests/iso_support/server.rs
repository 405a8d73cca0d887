//! A small loopback HTTP/1.1 server (plain or TLS) for ISO fetch tests: serves byte bodies with
//! `Range`/`If-Range`/`ETag`, redirects, and switches to cut a body once, ignore `Range`, fail the
//! next requests with 503 or delay bodies. Counts requests and body bytes. One request per
//! connection (`Connection: close`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub enum Route {
    Body {
        data: Arc<Vec<u8>>,
        etag: Option<String>,
    },
    Redirect(String),
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub status: u16,
}

#[derive(Default)]
pub struct Switches {
    /// cut the next body after half of it (then clear)
    pub cut_once: AtomicBool,
    /// answer 200 with the whole body even to ranged requests
    pub ignore_range: AtomicBool,
    /// answer 503 to this many next requests
    pub fail_next: AtomicUsize,
    /// sleep this many ms after the headers, before the body
    pub body_delay_ms: AtomicU64,
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Vec<Logged>>,
    bytes_sent: AtomicU64,
    switches: Switches,
}

pub struct Server {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn http() -> Server {
        Server::start(None).await
    }

    pub async fn https(config: Arc<rustls::ServerConfig>) -> Server {
        Server::start(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let state = accept_state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(sock).await {
                                handle(stream, &state).await;
                            }
                        }
                        None => handle(sock, &state).await,
                    }
                });
            }
        });
        Server {
            addr,
            scheme,
            state,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn body(&self, path: &str, data: Arc<Vec<u8>>, etag: Option<&str>) {
        self.route(
            path,
            Route::Body {
                data,
                etag: etag.map(str::to_string),
            },
        );
    }

    pub fn route(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    pub fn switches(&self) -> &Switches {
        &self.state.switches
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// GET requests seen for `path`.
    pub fn gets(&self, path: &str) -> usize {
        self.log().iter().filter(|l| l.path == path).count()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.state.bytes_sent.load(Ordering::SeqCst)
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, state: &State) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let range = headers.get("range").cloned();
    let if_range = headers.get("if-range").cloned();
    let sw = &state.switches;
    let log = |status: u16| {
        state.log.lock().unwrap().push(Logged {
            path: path.clone(),
            range: range.clone(),
            if_range: if_range.clone(),
            status,
        })
    };

    let failing = sw
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        log(503);
        let _ = sock
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        let _ = sock.shutdown().await;
        return;
    }
    let route = state.routes.lock().unwrap().get(&path).cloned();
    match route {
        None => {
            log(404);
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
        Some(Route::Redirect(location)) => {
            log(302);
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(head.as_bytes()).await;
        }
        Some(Route::Body { data, etag }) => {
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            let validator_ok = match (&if_range, &etag) {
                (None, _) => true,
                (Some(v), Some(e)) => v == e,
                (Some(_), None) => false,
            };
            let partial = match start {
                Some(s)
                    if s < data.len()
                        && validator_ok
                        && !sw.ignore_range.load(Ordering::SeqCst) =>
                {
                    Some(s)
                }
                _ => None,
            };
            let (status, slice) = match partial {
                Some(s) => (206u16, &data[s..]),
                None => (200u16, &data[..]),
            };
            log(status);
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
                if status == 206 { "Partial Content" } else { "OK" },
                slice.len()
            );
            if let Some(e) = &etag {
                head.push_str(&format!("ETag: {e}\r\n"));
            }
            if let Some(s) = partial {
                head.push_str(&format!(
                    "Content-Range: bytes {s}-{}/{}\r\n",
                    data.len() - 1,
                    data.len()
                ));
            }
            head.push_str("\r\n");
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let delay = sw.body_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let cut = sw.cut_once.swap(false, Ordering::SeqCst);
            let send = if cut {
                &slice[..slice.len() / 2]
            } else {
                slice
            };
            for piece in send.chunks(256 * 1024) {
                if sock.write_all(piece).await.is_err() {
                    return;
                }
                state
                    .bytes_sent
                    .fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
            let _ = sock.flush().await;
            if cut {
                // Drop without a clean end: the client sees a short body.
                return;
            }
        }
    }
    let _ = sock.shutdown().await;
}
