//! A one-file loopback HTTP/1.1 server on std threads, for tests that need an `http://` source
//! URL (with user info and a signed query string) in another process: every GET gets the whole
//! body with `Content-Length` and `Connection: close`. Keeps each request head, so a test can
//! prove the full URL (credentials included) was used for the download.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The running server; stops when dropped.
pub struct HttpFile {
    /// where it listens (127.0.0.1)
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpFile {
    /// Serve `body` to every GET.
    pub fn serve(body: Vec<u8>) -> HttpFile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (stop2, heads2) = (stop.clone(), heads.clone());
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (body, heads) = (body.clone(), heads2.clone());
                std::thread::spawn(move || answer(conn, &body, &heads));
            }
        });
        HttpFile { addr, stop, heads }
    }

    /// The request heads received so far (request line and headers, CRLF-joined).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

fn answer(conn: TcpStream, body: &[u8], heads: &Mutex<Vec<String>>) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    let is_head = head.starts_with("HEAD ");
    if let Ok(mut h) = heads.lock() {
        h.push(head);
    }
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        let _ = conn.write_all(body);
    }
    let _ = conn.flush();
}

impl Drop for HttpFile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}
