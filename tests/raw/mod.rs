//! Helpers of the hardening suites (`protocol_violations`, `limits`, `shutdown_load`) and of
//! `framing`: a server on an ephemeral port with its [`ServerHandle`], a hand-driven WebSocket
//! client over a raw TCP socket (handshake written by hand, frames built and parsed here, bytes
//! written in chosen chunks, socket buffers optionally small), a per-session log of `on_close`
//! codes, and the process RSS. Every wait is bounded.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint::{Limits, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

// The bounded waits are the shared ones of the other suites.
#[path = "../common/mod.rs"]
mod common;
pub use common::{bounded, within, TIMEOUT};

/// Limits for tests: nothing waits long on a silent peer.
pub fn test_limits() -> Limits {
    let mut limits = Limits::default();
    limits.close_timeout = Duration::from_secs(1);
    limits.shutdown_timeout = Duration::from_secs(3);
    limits.handshake_timeout = Duration::from_secs(2);
    limits
}

/// A server running on `127.0.0.1:<ephemeral>`.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `server` on an ephemeral loopback port and runs it (until [`ServerHandle::shutdown`]).
pub async fn start(server: Server) -> Running {
    let server = server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    let handle = server.handle();
    let task = tokio::spawn(server.run());
    Running {
        addr,
        handle,
        task: Some(task),
    }
}

/// [`start`] on a listener with `SO_SNDBUF` set (accepted sockets inherit it, and a set size
/// turns the kernel's send-buffer autotuning off): with a slow reader, the server's writes then
/// stop part-way through frames again and again instead of once per megabytes.
pub async fn start_with_send_buffer(server: Server, send_buffer: u32) -> Running {
    start_on(server, |socket| {
        socket.set_send_buffer_size(send_buffer).expect("SO_SNDBUF");
    })
}

/// [`start`] on a listener with `SO_RCVBUF` set (accepted sockets inherit it, and a set size
/// turns the kernel's receive-buffer autotuning off): a fresh connection can then hold a batch
/// larger than the runtime's read scratch, and the server's first read of it is a full one.
pub async fn start_with_receive_buffer(server: Server, receive_buffer: u32) -> Running {
    start_on(server, |socket| {
        socket
            .set_recv_buffer_size(receive_buffer)
            .expect("SO_RCVBUF");
    })
}

fn start_on(server: Server, set: impl FnOnce(&TcpSocket)) -> Running {
    let socket = TcpSocket::new_v4().expect("socket");
    set(&socket);
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind 127.0.0.1:0");
    let listener = socket.listen(1024).expect("listen");
    let server = server.listen(listener).expect("listen");
    let addr = server.local_addr().expect("local_addr");
    let handle = server.handle();
    let task = tokio::spawn(server.run());
    Running {
        addr,
        handle,
        task: Some(task),
    }
}

impl Running {
    /// Shuts down and waits (at most `limit`) for `run` to return; the time it took.
    pub async fn shutdown_within(&mut self, limit: Duration) -> Duration {
        let t0 = std::time::Instant::now();
        self.handle.shutdown();
        if let Some(task) = self.task.take() {
            within(limit, "run_until to return after shutdown", task)
                .await
                .expect("server task panicked")
                .expect("run returned an error");
        }
        t0.elapsed()
    }

    /// `open_sessions` as the server counts them.
    pub fn open_sessions(&self) -> u64 {
        self.handle.stats().open_sessions
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `on_close` codes, by session id, as the server saw them: the first code and the number of
/// calls (no allocation per entry, so a long run does not grow the test's own memory).
#[derive(Clone, Default, Debug)]
pub struct Closes(Arc<Mutex<HashMap<u64, (u16, u32)>>>);

impl Closes {
    pub fn record(&self, session: u64, code: u16) {
        self.0.lock().unwrap().entry(session).or_insert((code, 0)).1 += 1;
    }

    /// Makes room for `n` sessions up front.
    pub fn reserve(&self, n: usize) {
        self.0.lock().unwrap().reserve(n);
    }

    /// Sessions whose `on_close` ran at least once.
    pub fn sessions(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Total `on_close` calls.
    pub fn calls(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .map(|(_, n)| *n as usize)
            .sum()
    }

    /// Every session's `on_close` codes (the first code, repeated once per call).
    pub fn snapshot(&self) -> HashMap<u64, Vec<u16>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (code, n))| (*id, vec![*code; *n as usize]))
            .collect()
    }

    /// Waits (bounded) until `n` sessions have closed; returns the log.
    pub async fn wait_sessions(&self, n: usize, limit: Duration) -> HashMap<u64, Vec<u16>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.sessions() >= n {
                return self.snapshot();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {n} on_close; {} so far: {:?}",
                    self.sessions(),
                    self.snapshot()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for exactly one session's single `on_close`; returns its code.
    pub async fn one(&self) -> u16 {
        let log = self.wait_sessions(1, TIMEOUT).await;
        // Give a duplicate call a chance to show up.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let log2 = self.snapshot();
        assert_eq!(log, log2, "on_close log changed after the first close");
        assert_eq!(log.len(), 1, "one session expected: {log:?}");
        let codes = log.values().next().unwrap();
        assert_eq!(codes.len(), 1, "on_close must run exactly once: {codes:?}");
        codes[0]
    }
}

/// Serializes the tests of one binary that hold it: RSS is per process, so a test that measures
/// it must not run beside others.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Resident set size of this process, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

// ---------------------------------------------------------------------------------------------
// Frames

/// Opcodes.
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame to write by hand, any field possibly wrong on purpose.
#[derive(Debug, Clone)]
pub struct Frame {
    pub fin: bool,
    /// RSV1..3 as bits `0b100`, `0b010`, `0b001`.
    pub rsv: u8,
    pub opcode: u8,
    /// Masking key; `None` writes an unmasked frame (a protocol error from a client).
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
    /// A length to put in the header instead of the payload's (the payload is still written).
    pub claimed_len: Option<u64>,
}

impl Frame {
    /// A final, masked frame.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            payload: payload.into(),
            claimed_len: None,
        }
    }

    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Frame::new(TEXT, payload)
    }

    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Frame::new(BINARY, payload)
    }

    /// A close frame with `code` and `reason` bytes.
    pub fn close(code: u16, reason: &[u8]) -> Self {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        Frame::new(CLOSE, p)
    }

    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    pub fn unmasked(mut self) -> Self {
        self.mask = None;
        self
    }

    pub fn claim_len(mut self, len: u64) -> Self {
        self.claimed_len = Some(len);
        self
    }

    /// The frame on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            vec![(u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | (self.opcode & 0xF)];
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.claimed_len.unwrap_or(self.payload.len() as u64);
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= u64::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }
}

/// A frame read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Received {
    /// The status code of a close frame (`None` for an empty close frame or another opcode).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Parses one server frame at the start of `buf`: the frame and the bytes it used.
pub fn parse_frame(buf: &[u8]) -> Option<(Received, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames must not be masked");
    assert_eq!(buf[0] & 0x70, 0, "server frames must not set RSV bits");
    let (len, at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).expect("frame length fits usize");
    if buf.len() < at + len {
        return None;
    }
    Some((
        Received {
            fin: buf[0] & 0x80 != 0,
            opcode: buf[0] & 0x0F,
            payload: buf[at..at + len].to_vec(),
        },
        at + len,
    ))
}

/// The RFC 6455 example key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A complete, valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
}

/// Reads an HTTP response head: the status and the bytes read past the head.
pub async fn read_response_head(stream: &mut TcpStream) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut buf = Vec::new();
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line: {head}"));
            return Ok((status, head, buf[i + 4..].to_vec()));
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A WebSocket connection driven by hand.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// How a read of the server's close ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseSeen {
    /// A close frame with this code.
    Code(u16),
    /// A close frame without a code.
    Empty,
    /// The TCP connection ended without a close frame.
    Eof,
}

impl RawWs {
    /// Connects and does the opening handshake by hand (asserting `101` and the accept key).
    pub async fn connect(addr: SocketAddr, path: &str) -> RawWs {
        RawWs::connect_with_recv_buffer(addr, path, None).await
    }

    /// [`RawWs::connect`] with `SO_RCVBUF` set before connecting (the kernel doubles it and
    /// applies its minimum): a small buffer makes the server's writes stall, and resume, in
    /// small steps when the client reads slowly.
    pub async fn connect_with_recv_buffer(
        addr: SocketAddr,
        path: &str,
        recv_buffer: Option<u32>,
    ) -> RawWs {
        bounded("raw handshake", async {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .expect("socket");
            if let Some(size) = recv_buffer {
                socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
            }
            let mut stream = socket.connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream
                .write_all(upgrade_request(path).as_bytes())
                .await
                .expect("write handshake");
            let (status, head, rest) = read_response_head(&mut stream).await.expect("response");
            assert_eq!(status, 101, "handshake answer: {head}");
            assert!(
                head.to_ascii_lowercase().contains(&format!(
                    "sec-websocket-accept: {}",
                    ACCEPT.to_ascii_lowercase()
                )),
                "accept key: {head}"
            );
            RawWs { stream, buf: rest }
        })
        .await
    }

    /// Writes frames (each encoded) in one write.
    pub async fn send(&mut self, frames: &[Frame]) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        self.write(&bytes).await;
    }

    /// Writes raw bytes (a write error is ignored: the server may already have closed).
    pub async fn write(&mut self, bytes: &[u8]) {
        let _ = bounded("raw write", self.stream.write_all(bytes)).await;
    }

    /// Writes `bytes` `chunk` bytes per write system call (`connect` sets TCP_NODELAY, so each
    /// write leaves as its own segment), sleeping `pause` after every `pause_every` writes
    /// (`0`: never) so that the server really reads partial frames. Each write is bounded; a
    /// write error panics (unlike [`RawWs::write`]: the caller expects the server to read).
    pub async fn write_chunks(
        &mut self,
        bytes: &[u8],
        chunk: usize,
        pause_every: usize,
        pause: Duration,
    ) {
        for (i, piece) in bytes.chunks(chunk.max(1)).enumerate() {
            bounded("chunked write", self.stream.write_all(piece))
                .await
                .expect("chunked write");
            if pause_every > 0 && (i + 1) % pause_every == 0 {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// The next frame from the server; `None` when the connection ended first.
    pub async fn read_frame(&mut self) -> Option<Received> {
        self.read_frame_with_header().await.map(|(_, frame)| frame)
    }

    /// The next frame from the server with its header bytes as they came on the wire (to check
    /// the length form); `None` when the connection ended first.
    pub async fn read_frame_with_header(&mut self) -> Option<(Vec<u8>, Received)> {
        bounded("a frame from the server", async {
            loop {
                if let Some((frame, used)) = parse_frame(&self.buf) {
                    let header = self.buf[..used - frame.payload.len()].to_vec();
                    self.buf.drain(..used);
                    return Some((header, frame));
                }
                let mut chunk = [0u8; 8192];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
    }

    /// Whether the server ended the TCP connection within `limit` (end of stream or reset),
    /// with no byte before the end; `false` when it is still open after `limit`. A byte that
    /// arrives instead panics: the caller expects nothing more from the server.
    pub async fn ended_within(&mut self, limit: Duration) -> bool {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let mut chunk = [0u8; 64];
        match tokio::time::timeout(limit, self.stream.read(&mut chunk)).await {
            Err(_) => false,
            Ok(Ok(0) | Err(_)) => true,
            Ok(Ok(n)) => panic!("expected the end, got {n} bytes: {:?}", &chunk[..n]),
        }
    }

    /// Reads (skipping data, pings, pongs) until the server's close frame or the end.
    pub async fn read_close(&mut self) -> CloseSeen {
        loop {
            match self.read_frame().await {
                Some(f) if f.opcode == CLOSE => {
                    return f.close_code().map_or(CloseSeen::Empty, CloseSeen::Code);
                }
                Some(_) => continue,
                None => return CloseSeen::Eof,
            }
        }
    }

    /// Answers the server's close (as a client should) and waits for the TCP end.
    pub async fn finish(&mut self, code: u16) {
        self.send(&[Frame::close(code, b"")]).await;
        bounded("server to end the connection", async {
            let mut chunk = [0u8; 1024];
            while let Ok(n) = self.stream.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// Sends a text message and expects it echoed.
    pub async fn echo(&mut self, text: &str) {
        self.send(&[Frame::text(text)]).await;
        loop {
            let f = self.read_frame().await.expect("echo: connection ended");
            match f.opcode {
                PING | PONG => continue,
                TEXT => {
                    assert_eq!(f.payload, text.as_bytes());
                    return;
                }
                other => panic!("echo: unexpected frame {other:#x}: {f:?}"),
            }
        }
    }
}
