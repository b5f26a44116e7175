//! Helpers shared by the integration tests: a server on an ephemeral port, a real WebSocket
//! client, a raw TCP client for hand-written HTTP requests and WebSocket frames, and a recorder
//! of lifecycle events. Every wait is bounded, so a broken feature fails a test instead of
//! hanging it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint::{Limits, Server};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
pub use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on any single wait in a test (a read, a connect, a condition).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A WebSocket client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs `fut`, panicking with `what` when it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Runs `fut`, panicking with `what` when it takes longer than [`TIMEOUT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within(TIMEOUT, what, fut).await
}

/// Limits that keep tests fast: closing and shutting down never wait long on a silent peer.
pub fn fast_limits() -> Limits {
    let mut limits = Limits::default();
    limits.close_timeout = Duration::from_secs(1);
    limits.shutdown_timeout = Duration::from_secs(3);
    limits.handshake_timeout = Duration::from_secs(2);
    limits
}

/// A server running on `127.0.0.1:<ephemeral>` until [`TestServer::shutdown`] (or drop).
pub struct TestServer {
    pub addr: SocketAddr,
    /// The running server's handle (stats, rooms).
    pub handle: endpoint::ServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `server` to an ephemeral port and runs it with `run_until` (give it
/// `.limits(fast_limits())` to keep closing and shutdown quick).
pub async fn start(server: Server) -> TestServer {
    let server = server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    let handle = server.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        handle,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    /// `ws://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects a WebSocket client to `path`.
    pub async fn connect(&self, path: &str) -> Ws {
        connect(self.addr, path).await
    }

    /// Completes the shutdown future and waits (bounded) for `run_until` to return.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        self.wait().await;
    }

    /// Completes the shutdown future without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (bounded) for `run_until` to return, asserting it returned `Ok` (once; later calls
    /// return at once).
    pub async fn wait(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        bounded("run_until to return", task)
            .await
            .expect("server task panicked")
            .expect("run_until returned an error");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Connects a WebSocket client to `ws://addr{path}`.
pub async fn connect(addr: SocketAddr, path: &str) -> Ws {
    let url = format!("ws://{addr}{path}");
    let (ws, res) = bounded(
        "websocket connect",
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    assert_eq!(res.status().as_u16(), 101);
    ws
}

/// Connects with extra request headers.
pub async fn connect_with_headers(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Ws {
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        req.headers_mut()
            .insert(*k, v.parse().expect("header value"));
    }
    let (ws, _) = bounded("websocket connect", tokio_tungstenite::connect_async(req))
        .await
        .expect("connect");
    ws
}

/// The next message (pings and pongs included), panicking on timeout, end or error.
pub async fn recv(ws: &mut Ws) -> WsMessage {
    match bounded("next websocket message", ws.next()).await {
        Some(Ok(m)) => m,
        Some(Err(e)) => panic!("websocket error while waiting for a message: {e}"),
        None => panic!("websocket ended while waiting for a message"),
    }
}

/// The next data message, skipping pings and pongs.
pub async fn recv_data(ws: &mut Ws) -> WsMessage {
    loop {
        match recv(ws).await {
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            m => return m,
        }
    }
}

/// The next message, which must be text.
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv_data(ws).await {
        WsMessage::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Sends a text message.
pub async fn send_text(ws: &mut Ws, text: &str) {
    bounded("send", ws.send(WsMessage::text(text)))
        .await
        .expect("send text");
}

/// Sends `text` and returns the text answer.
pub async fn roundtrip(ws: &mut Ws, text: &str) -> String {
    send_text(ws, text).await;
    recv_text(ws).await
}

/// The next data message must be a close frame: its code and reason. Reading on afterwards lets
/// tungstenite answer it.
pub async fn recv_close(ws: &mut Ws) -> (u16, String) {
    match recv_data(ws).await {
        WsMessage::Close(Some(f)) => (u16::from(f.code), f.reason.as_str().to_owned()),
        WsMessage::Close(None) => panic!("close frame without a status code"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Reads until the connection ends (answering a close frame on the way), bounded.
pub async fn drain_until_end(ws: &mut Ws) {
    bounded("connection end", async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Sends a close frame with `code` and `reason`.
pub async fn send_close(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason.into(),
    };
    bounded("send close", ws.close(Some(frame)))
        .await
        .expect("send close");
}

/// Lifecycle events recorded by test endpoints, in order.
#[derive(Clone, Default, Debug)]
pub struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many events start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }

    /// Waits (bounded) until `cond` holds for the events; returns them.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let events = self.events();
            if cond(&events) {
                return events;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; events: {events:#?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `n` events start with `prefix`.
    pub async fn wait_count(&self, prefix: &str, n: usize) -> Vec<String> {
        self.wait_for(&format!("{n} events starting with `{prefix}`"), |e| {
            e.iter().filter(|x| x.starts_with(prefix)).count() >= n
        })
        .await
    }
}

/// Checks the lifecycle invariants of one session's events: `open` first, exactly one `close:`
/// event, and it is the last. Returns the close event.
pub fn assert_lifecycle(events: &[String]) -> String {
    assert!(!events.is_empty(), "no events");
    assert!(
        events[0].starts_with("open"),
        "on_open must come first: {events:#?}"
    );
    let closes: Vec<_> = events.iter().filter(|e| e.starts_with("close:")).collect();
    assert_eq!(
        closes.len(),
        1,
        "on_close must run exactly once: {events:#?}"
    );
    let last = events.last().unwrap();
    assert!(
        last.starts_with("close:"),
        "on_close must be last: {events:#?}"
    );
    last.clone()
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

/// A parsed HTTP response head plus its body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP response head from `stream`; returns it and the bytes read past it.
async fn read_head(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 1024];
        let n = bounded("http response head", stream.read(&mut chunk))
            .await
            .expect("read");
        assert!(
            n > 0,
            "connection closed before a complete response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("utf-8 head");
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line: {status_line}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {status_line}"));
    let headers = lines
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("header line: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    (status, headers, rest)
}

/// Sends `request` (a complete HTTP/1.1 request, `\r\n` line ends) on a fresh connection and
/// reads the response (head and `Content-Length` body).
pub async fn http(addr: SocketAddr, request: &str) -> HttpResponse {
    let mut stream = bounded("tcp connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    bounded("write request", stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let (status, headers, mut body) = read_head(&mut stream).await;
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("content-length"))
        .unwrap_or(0);
    while body.len() < len {
        let mut chunk = [0u8; 1024];
        let n = bounded("http response body", stream.read(&mut chunk))
            .await
            .expect("read");
        assert!(n > 0, "connection closed in the body");
        body.extend_from_slice(&chunk[..n]);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The RFC 6455 example key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A GET request for `path` with a complete, valid WebSocket handshake, minus the headers named
/// in `without`, plus `extra` header lines.
pub fn upgrade_request(path: &str, without: &[&str], extra: &[&str]) -> String {
    let all = [
        ("Host", "localhost".to_owned()),
        ("Upgrade", "websocket".to_owned()),
        ("Connection", "Upgrade".to_owned()),
        ("Sec-WebSocket-Version", "13".to_owned()),
        ("Sec-WebSocket-Key", KEY.to_owned()),
    ];
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    for (k, v) in all {
        if !without.iter().any(|w| w.eq_ignore_ascii_case(k)) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    for line in extra {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

// ---------------------------------------------------------------------------------------------
// Raw WebSocket frames

/// One frame as read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// For a close frame: the code and reason.
    pub fn close_code(&self) -> Option<(u16, String)> {
        (self.opcode == 0x8 && self.payload.len() >= 2).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }
}

/// Encodes a frame. `rsv` goes in bits 4-6 of the first byte (`0b100` is RSV1); `mask` is the
/// masking key (clients must mask; `None` writes an unmasked frame, a protocol error).
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 0b111) << 4) | (opcode & 0xF)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame, as a well-behaved client sends it.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(true, 0, opcode, payload, Some([0x12, 0x34, 0x56, 0x78]))
}

/// A client's close frame.
pub fn client_close(code: u16) -> Vec<u8> {
    client_frame(0x8, &code.to_be_bytes())
}

/// A WebSocket connection driven by hand over a raw TCP socket.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Connects and performs the opening handshake by hand (asserting `101` and the accept key).
    pub async fn connect(addr: SocketAddr, path: &str) -> RawWs {
        let mut stream = bounded("tcp connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        let req = upgrade_request(path, &[], &[]);
        bounded("write handshake", stream.write_all(req.as_bytes()))
            .await
            .expect("write");
        let (status, headers, rest) = read_head(&mut stream).await;
        assert_eq!(status, 101, "handshake answer: {headers:?}");
        let accept = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-accept"));
        assert_eq!(accept.map(|(_, v)| v.as_str()), Some(ACCEPT));
        RawWs { stream, buf: rest }
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        bounded("raw write", self.stream.write_all(bytes))
            .await
            .expect("raw write");
    }

    /// Reads one frame from the server; `None` when the connection ended first.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        bounded("raw frame", async {
            loop {
                if let Some((frame, used)) = parse_server_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some(frame);
                }
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
    }

    /// Reads frames until a close frame; returns its code and reason.
    pub async fn read_close(&mut self) -> (u16, String) {
        loop {
            match self.read_frame().await {
                Some(f) if f.opcode == 0x8 => {
                    return f.close_code().expect("close frame with a status code");
                }
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Waits (bounded) for the server to end the TCP connection.
    pub async fn expect_eof(&mut self) {
        while self.read_frame().await.is_some() {}
    }
}

/// Parses one unmasked server frame at the start of `buf`: the frame and the bytes it used.
fn parse_server_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    assert_eq!(buf[1] & 0x80, 0, "server frames must not be masked");
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            )
        }
        n => (n as usize, 2),
    };
    if buf.len() < at + len {
        return None;
    }
    let payload = buf[at..at + len].to_vec();
    at += len;
    Some((
        RawFrame {
            fin,
            opcode,
            payload,
        },
        at,
    ))
}
