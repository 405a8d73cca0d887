//! A small QEMU guest agent client: JSON commands, one per line, over the unix socket QEMU backs
//! the `org.qemu.guest_agent.0` virtio-serial port with.
//!
//! The channel has no session: bytes written before the agent opened its end wait in the socket
//! and reach the agent later, and a previous client's answers may still be in flight. So every
//! conversation starts with `guest-sync-delimited` carrying a fresh id: the agent answers with a
//! `0xFF` byte, then `{"return": id}`; everything before the answer with *our* id is discarded.
//! Only after that are `guest-ping`, `guest-info` and the file commands sent.
//!
//! Knows nothing about VMs or images: it is told a socket path.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// Largest file read through the agent.
const MAX_FILE: usize = 1 << 20;
/// Longest answer line accepted.
const MAX_LINE: usize = 4 << 20;

/// A guest agent conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum QgaError {
    /// the socket could not be used
    #[error("guest agent socket: {0}")]
    Io(#[from] std::io::Error),
    /// no answer in time
    #[error("guest agent did not answer {0} in time")]
    Timeout(&'static str),
    /// an answer that is not the protocol's
    #[error("guest agent answered {command} with something unexpected: {detail}")]
    Protocol {
        /// the command
        command: &'static str,
        /// what was wrong
        detail: String,
    },
    /// the agent reported an error
    #[error("guest agent refused {command}: {class}: {desc}")]
    Guest {
        /// the command
        command: &'static str,
        /// QMP error class
        class: String,
        /// its description
        desc: String,
    },
}

/// One connection to the agent's socket.
#[derive(Debug)]
pub struct Qga {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
}

impl Qga {
    /// Connect to `socket`; every command waits at most `timeout` for its answer.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Self, QgaError> {
        let stream = UnixStream::connect(socket).await?;
        let (r, w) = stream.into_split();
        Ok(Qga {
            reader: BufReader::new(r),
            writer: w,
            timeout,
        })
    }

    async fn send(&mut self, msg: &Value) -> Result<(), QgaError> {
        let mut line = serde_json::to_vec(msg).map_err(|e| QgaError::Protocol {
            command: "encode",
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// The next non-empty line (a leading sync delimiter `0xFF` removed), parsed.
    async fn next_value(&mut self, command: &'static str) -> Result<Value, QgaError> {
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .await?;
            if n == 0 {
                return Err(QgaError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "socket closed",
                )));
            }
            let start = buf.iter().rposition(|b| *b == 0xFF).map_or(0, |i| i + 1);
            let text = String::from_utf8_lossy(&buf[start..]);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str(text).map_err(|e| QgaError::Protocol {
                command,
                detail: format!("{e}: {text:.200}"),
            });
        }
    }

    /// `guest-sync-delimited` with `id`: discard everything up to the answer carrying `id`.
    pub async fn sync(&mut self, id: u64) -> Result<(), QgaError> {
        let timeout = self.timeout;
        let fut = async {
            self.send(&json!({"execute": "guest-sync-delimited", "arguments": {"id": id}}))
                .await?;
            loop {
                let v = self.next_value("guest-sync-delimited").await?;
                if v.get("return").and_then(Value::as_u64) == Some(id) {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| QgaError::Timeout("guest-sync-delimited"))?
    }

    /// Run one command and return its `return` value.
    pub async fn execute(
        &mut self,
        command: &'static str,
        arguments: Option<Value>,
    ) -> Result<Value, QgaError> {
        let msg = match arguments {
            Some(a) => json!({"execute": command, "arguments": a}),
            None => json!({"execute": command}),
        };
        let timeout = self.timeout;
        let fut = async {
            self.send(&msg).await?;
            let v = self.next_value(command).await?;
            if let Some(err) = v.get("error") {
                let s = |k: &str| {
                    err.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                return Err(QgaError::Guest {
                    command,
                    class: s("class"),
                    desc: s("desc"),
                });
            }
            v.get("return").cloned().ok_or_else(|| QgaError::Protocol {
                command,
                detail: format!("no \"return\" in {v}"),
            })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| QgaError::Timeout(command))?
    }

    /// `guest-ping`, then `guest-info`; returns the agent's version.
    pub async fn ping_and_info(&mut self) -> Result<String, QgaError> {
        self.execute("guest-ping", None).await?;
        let info = self.execute("guest-info", None).await?;
        info.get("version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| QgaError::Protocol {
                command: "guest-info",
                detail: "no version".to_owned(),
            })
    }

    /// Read a whole guest file (at most 1 MiB) with `guest-file-open`/`-read`/`-close`.
    pub async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, QgaError> {
        let handle = self
            .execute("guest-file-open", Some(json!({"path": path, "mode": "r"})))
            .await?;
        let handle = handle.as_i64().ok_or_else(|| QgaError::Protocol {
            command: "guest-file-open",
            detail: format!("handle {handle} is not a number"),
        })?;
        let mut out = Vec::new();
        let result = loop {
            let r = match self
                .execute(
                    "guest-file-read",
                    Some(json!({"handle": handle, "count": 65536})),
                )
                .await
            {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let b64 = r.get("buf-b64").and_then(Value::as_str).unwrap_or_default();
            match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) => {
                    break Err(QgaError::Protocol {
                        command: "guest-file-read",
                        detail: e.to_string(),
                    })
                }
            }
            let eof = r.get("eof").and_then(Value::as_bool).unwrap_or(true);
            if eof || out.len() >= MAX_FILE {
                break Ok(());
            }
        };
        let closed = self
            .execute("guest-file-close", Some(json!({"handle": handle})))
            .await;
        result?;
        closed?;
        Ok(out)
    }
}
