//! Helpers for the rooms, broadcast, slow-consumer, keep-alive and typed-message tests: a
//! server on an ephemeral port with its [`ServerHandle`], real WebSocket clients, a minimal raw
//! client (hand-made handshake and frames), and a log of what endpoints observed. Every wait
//! is bounded, so a broken feature fails a test instead of hanging it.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint::{Limits, Server, ServerHandle, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// The client helpers are the shared ones of the issue-2 tests.
#[path = "../common/mod.rs"]
mod common;
pub use common::{
    bounded, connect, drain_until_end, recv, recv_data, recv_text, send_close, send_text, within,
    Ws, WsMessage, TIMEOUT,
};

/// Polls `cond` until it holds, bounded by [`TIMEOUT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Limits that keep tests fast: closing and shutting down never wait long on a silent peer.
pub fn fast_limits() -> Limits {
    let mut limits = Limits::default();
    limits.close_timeout = Duration::from_millis(500);
    limits.shutdown_timeout = Duration::from_secs(3);
    limits.handshake_timeout = Duration::from_secs(2);
    limits
}

/// A server on `127.0.0.1:<ephemeral>`, with its handle; shut down on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    task: Option<JoinHandle<std::io::Result<()>>>,
    stop: Option<oneshot::Sender<()>>,
}

/// Binds `server` to an ephemeral port and runs it.
pub async fn run(server: Server) -> Running {
    let bound = server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = bound.local_addr().expect("local_addr");
    let handle = bound.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.run_until(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        handle,
        task: Some(task),
        stop: Some(stop),
    }
}

impl Running {
    /// Connects a WebSocket client to `path` (which may carry a query).
    pub async fn connect(&self, path: &str) -> Ws {
        connect(self.addr, path).await
    }

    /// Shuts down gracefully and waits (bounded) for `run_until` to return `Ok`.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            bounded("run_until to return", task)
                .await
                .expect("server task panicked")
                .expect("run_until failed");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Sends `text`, returns the text answer.
pub async fn ask(ws: &mut Ws, text: &str) -> String {
    common::roundtrip(ws, text).await
}

/// The next data message must be a close frame: its code.
pub async fn recv_close(ws: &mut Ws) -> u16 {
    common::recv_close(ws).await.0
}

// ---------------------------------------------------------------------------------------------
// What endpoints observed

/// One thing an endpoint saw, tagged with the session's name (`?name=`, else its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub who: String,
    pub what: String,
}

/// A log shared by the endpoints of one test, and the named sessions they registered.
#[derive(Default)]
pub struct Log {
    seen: Mutex<Vec<Seen>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Log {
    pub fn new() -> Arc<Log> {
        Arc::new(Log::default())
    }

    pub fn push(&self, who: &str, what: impl Into<String>) {
        self.seen.lock().unwrap().push(Seen {
            who: who.to_owned(),
            what: what.into(),
        });
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// What `who` saw, in order.
    pub fn of(&self, who: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|s| s.who == who)
            .map(|s| s.what)
            .collect()
    }

    /// Waits until `who` saw something starting with `prefix`; returns it.
    pub async fn wait_for(&self, who: &str, prefix: &str) -> String {
        let mut found = None;
        eventually(&format!("`{who}` to see `{prefix}...`"), || {
            found = self.of(who).into_iter().find(|w| w.starts_with(prefix));
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    pub fn register(&self, name: &str, session: &Session) {
        self.sessions
            .lock()
            .unwrap()
            .insert(name.to_owned(), session.clone());
    }

    /// The session registered under `name`; waits (bounded) for it to be registered.
    pub async fn session(&self, name: &str) -> Session {
        let mut found = None;
        eventually(&format!("session `{name}` to open"), || {
            found = self.sessions.lock().unwrap().get(name).cloned();
            found.is_some()
        })
        .await;
        found.unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// A raw client: hand-made handshake and frames

/// A WebSocket connection over a raw TCP socket: it answers nothing by itself.
pub struct Raw {
    pub stream: TcpStream,
    /// Bytes read past the handshake response.
    pub rest: Vec<u8>,
}

impl Raw {
    /// Connects and completes the opening handshake (asserting `101`).
    pub async fn connect(addr: SocketAddr, path: &str) -> Raw {
        let mut stream = bounded("tcp connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        bounded("write handshake", stream.write_all(req.as_bytes()))
            .await
            .expect("write handshake");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 1024];
            let n = bounded("handshake response", stream.read(&mut chunk))
                .await
                .expect("read handshake response");
            assert!(n > 0, "connection closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "handshake answer: {head}");
        Raw {
            stream,
            rest: buf[end + 4..].to_vec(),
        }
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        bounded("raw write", self.stream.write_all(bytes))
            .await
            .expect("raw write");
    }

    /// Reads until the server ends the connection (EOF or reset), bounded; returns every byte
    /// received after the handshake.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.rest);
        bounded("raw connection end", async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => all.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        all
    }
}

/// A masked client frame (payload under 126 bytes); `rsv` goes in bits 4-6 of the first byte.
pub fn client_frame(rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | ((rsv & 0b111) << 4) | (opcode & 0xF)];
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Opcodes of the complete server frames at the start of `bytes` (server frames are unmasked).
pub fn frame_opcodes(mut bytes: &[u8]) -> Vec<u8> {
    let mut ops = Vec::new();
    while bytes.len() >= 2 {
        let (len, head) = match bytes[1] & 0x7F {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if bytes.len() < head + len {
            break;
        }
        ops.push(bytes[0] & 0x0F);
        bytes = &bytes[head + len..];
    }
    ops
}

// ---------------------------------------------------------------------------------------------
// Process memory

/// The process's resident set size in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
