//! A test kit for your endpoints: a [`TestServer`] on an ephemeral loopback port, and
//! [`TestClient`]s that connect to it with the framework's own client, send, and await
//! messages and closes with timeouts (as `Phoenix.ChannelTest` and socketioxide's test
//! sockets do). Real sockets, real frames: what passes here passes over the network.
//!
//! ```
//! use endpoint_runtime::test::TestServer;
//! use endpoint_runtime::{CloseCode, CloseReason, Endpoint, EndpointConfig, HookResult, Message, Server, Session};
//!
//! #[derive(Default)]
//! struct Echo;
//! impl Endpoint for Echo {
//!     fn config() -> EndpointConfig {
//!         EndpointConfig::new("/echo")
//!     }
//!     async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
//!         Ok(Some(m))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = TestServer::start(Server::new().endpoint::<Echo>()).await;
//! let mut client = server.connect("/echo").await;
//! client.send("hello").await.unwrap();
//! assert_eq!(client.recv_text().await, "hello");
//! client.close(CloseReason::new(CloseCode::NORMAL, "done"));
//! assert_eq!(client.expect_close().await.code(), CloseCode::NORMAL);
//! # }
//! ```
//!
//! Every wait is bounded by the client's timeout (5 s unless [`TestClient::timeout`] says
//! otherwise) and panics with what was awaited and what came instead, so a failing test says
//! why rather than hanging. What the client receives is kept, unbounded, until it is read:
//! this is for tests, not production.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::client::{Client, ClientEndpoint, ConnectError, Connection};
use crate::endpoint::{Endpoint, EndpointConfig, HookResult};
use crate::error::{EndpointError, SendError};
use crate::message::{CloseCode, CloseReason, Encode, Message, PayloadKind};
use crate::server::{Server, ServerHandle};
use crate::session::{Handshake, Session};

/// How long a [`TestClient`] waits for what it is told to expect, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Server`] running on `127.0.0.1` on a port of its own, until dropped (or
/// [`shutdown`](TestServer::shutdown)).
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Binds `server` to an ephemeral loopback port and runs it on a task.
    ///
    /// # Panics
    /// When the server cannot be bound (an endpoint's path is malformed, a `State<T>` is
    /// missing...): the message is the bind error.
    pub async fn start(server: Server) -> TestServer {
        let bound = match server.bind("127.0.0.1:0").await {
            Ok(bound) => bound,
            Err(e) => panic!("TestServer: the server could not be bound: {e}"),
        };
        let addr = bound.local_addr().expect("a bound listener has an address");
        let handle = bound.handle();
        let task = tokio::spawn(bound.run());
        TestServer {
            addr,
            handle,
            task: Some(task),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The server's handle (counters, rooms, shutdown).
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Connects a [`TestClient`] to `path`.
    ///
    /// # Panics
    /// When the connection fails; [`TestServer::try_connect`] returns the error instead.
    pub async fn connect(&self, path: &str) -> TestClient {
        match self.try_connect(path).await {
            Ok(client) => client,
            Err(e) => panic!("TestClient could not connect to {path}: {e}"),
        }
    }

    /// Connects a [`TestClient`] to `path`, or says why it could not (a refused handshake:
    /// [`ConnectError::Status`]).
    ///
    /// # Errors
    /// The [`ConnectError`].
    pub async fn try_connect(&self, path: &str) -> Result<TestClient, ConnectError> {
        TestClient::connect_with(&Client::new(), &self.url(path)).await
    }

    /// [`TestServer::try_connect`] with a client's settings (headers, subprotocols, limits).
    ///
    /// # Errors
    /// The [`ConnectError`].
    pub async fn connect_with(
        &self,
        client: &Client,
        path: &str,
    ) -> Result<TestClient, ConnectError> {
        TestClient::connect_with(client, &self.url(path)).await
    }

    /// Shuts the server down gracefully (every session gets 1001) and waits for it.
    pub async fn shutdown(mut self) {
        self.handle.shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What a [`TestClient`] saw, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A message from the server.
    Message(Message),
    /// `on_error` was called (a protocol error of the server, a limit).
    Error(String),
    /// The connection closed: the close frame's code and reason, or 1006 without one.
    Closed(CloseReason),
}

/// A client connection for tests: an endpoint that records what it receives, with methods
/// that await it.
#[derive(Debug)]
pub struct TestClient {
    connection: Connection,
    events: mpsc::UnboundedReceiver<Event>,
    timeout: Duration,
}

/// The test client's endpoint: forwards every event.
struct Probe {
    events: mpsc::UnboundedSender<Event>,
}

impl Endpoint for Probe {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }

    async fn on_open(&mut self, _: &Session, _: &Handshake) -> HookResult {
        Ok(None)
    }

    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        let _ = self.events.send(Event::Message(message));
        Ok(None)
    }

    async fn on_error(&mut self, _: &Session, error: EndpointError) -> HookResult {
        let _ = self.events.send(Event::Error(error.to_string()));
        Ok(None)
    }

    async fn on_close(&mut self, _: &Session, reason: CloseReason) {
        let _ = self.events.send(Event::Closed(reason));
    }

    fn accepts(kind: PayloadKind) -> bool {
        matches!(kind, PayloadKind::Text | PayloadKind::Binary)
    }
}

impl ClientEndpoint for Probe {}

impl TestClient {
    /// Connects to `url` with `client`'s settings.
    ///
    /// # Errors
    /// The [`ConnectError`].
    pub async fn connect_with(client: &Client, url: &str) -> Result<TestClient, ConnectError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let connection = client.connect(url, Probe { events: tx }).await?;
        Ok(TestClient {
            connection,
            events: rx,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Connects to `url` with the default settings.
    ///
    /// # Errors
    /// The [`ConnectError`].
    pub async fn connect(url: &str) -> Result<TestClient, ConnectError> {
        Self::connect_with(&Client::new(), url).await
    }

    /// How long each wait lasts before it panics.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The open session (`None` once closed).
    pub fn session(&self) -> Option<Session> {
        self.connection.session()
    }

    /// Sends a message (text for `&str`/`String`, binary for `Vec<u8>`/`Bytes`, anything
    /// [`Encode`]).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub async fn send(&self, message: impl Encode) -> Result<(), SendError> {
        self.connection.send(message).await
    }

    /// Starts the close handshake with `reason`.
    ///
    /// # Panics
    /// When `reason`'s code may not be sent (1005, 1006, 1015).
    pub fn close(&self, reason: CloseReason) {
        if let Err(e) = self.connection.close(reason) {
            panic!("TestClient::close: {e}");
        }
    }

    /// The next event, or `None` when none came within the timeout.
    pub async fn next_event(&mut self) -> Option<Event> {
        tokio::time::timeout(self.timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message.
    ///
    /// # Panics
    /// When none comes within the timeout, or the connection closes (or errs) first.
    pub async fn recv(&mut self) -> Message {
        match self.next_event().await {
            Some(Event::Message(message)) => message,
            Some(other) => panic!("TestClient: expected a message, got {other:?}"),
            None => panic!("TestClient: no message within {:?}", self.timeout),
        }
    }

    /// The next message, which must be text.
    ///
    /// # Panics
    /// As [`TestClient::recv`], and when it is not text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("TestClient: expected a text message, got {other:?}"),
        }
    }

    /// The next message, which must be binary.
    ///
    /// # Panics
    /// As [`TestClient::recv`], and when it is not binary.
    pub async fn recv_binary(&mut self) -> Bytes {
        match self.recv().await {
            Message::Binary(data) => data,
            other => panic!("TestClient: expected a binary message, got {other:?}"),
        }
    }

    /// The next message, a text holding JSON, decoded.
    ///
    /// # Panics
    /// As [`TestClient::recv_text`], and when it does not decode as `T`.
    #[cfg(feature = "json")]
    pub async fn recv_json<T: serde::de::DeserializeOwned>(&mut self) -> T {
        let text = self.recv_text().await;
        match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(e) => panic!(
                "TestClient: `{text}` is not a {}: {e}",
                std::any::type_name::<T>()
            ),
        }
    }

    /// Waits for the connection to close, and returns why (code and reason of the server's
    /// close frame, or 1006 when the connection ended without one). `on_error` events on the
    /// way are skipped.
    ///
    /// # Panics
    /// When a message comes first, or nothing within the timeout.
    pub async fn expect_close(&mut self) -> CloseReason {
        loop {
            match self.next_event().await {
                Some(Event::Closed(reason)) => return reason,
                Some(Event::Error(_)) => continue,
                Some(Event::Message(m)) => {
                    panic!("TestClient: expected the close, got a message first: {m:?}")
                }
                None => panic!("TestClient: no close within {:?}", self.timeout),
            }
        }
    }

    /// [`TestClient::expect_close`], asserting the code.
    ///
    /// # Panics
    /// As [`TestClient::expect_close`], and when the code is another.
    pub async fn expect_close_code(&mut self, code: impl Into<CloseCode>) -> CloseReason {
        let code = code.into();
        let reason = self.expect_close().await;
        assert_eq!(
            reason.code(),
            code,
            "TestClient: closed with {reason}, expected code {}",
            code.as_u16()
        );
        reason
    }

    /// Asserts that nothing arrives for `period`.
    ///
    /// # Panics
    /// When a message, an error or the close arrives within it.
    pub async fn expect_silence(&mut self, period: Duration) {
        if let Ok(Some(event)) = tokio::time::timeout(period, self.events.recv()).await {
            panic!("TestClient: expected nothing for {period:?}, got {event:?}");
        }
    }
}
