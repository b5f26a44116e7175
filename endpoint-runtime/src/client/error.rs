//! [`ConnectError`]: why a connection attempt failed, naming the cause.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Why [`Client::connect`](super::Client::connect) (or a reconnection) failed: each step of the
/// attempt has its own variant, and the message names what went wrong.
///
/// ```
/// use endpoint_runtime::client::ConnectError;
/// use endpoint_runtime::test::TestClient;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Nothing listens on port 9 of this machine:
/// match TestClient::connect("ws://127.0.0.1:9/").await {
///     Err(ConnectError::Connect { kind, .. }) => {
///         assert_eq!(kind, std::io::ErrorKind::ConnectionRefused)
///     }
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectError {
    /// Not a `ws://` or `wss://` URL with a host.
    InvalidUrl(String),
    /// The host name did not resolve.
    Dns {
        /// The host looked up.
        host: String,
        /// What the resolver said.
        message: String,
    },
    /// No TCP connection to any address of the host (refused, unreachable, ...); the last
    /// address tried.
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The error's kind (`ConnectionRefused`, ...).
        kind: io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// The TLS handshake failed (an untrusted or mismatched certificate, a protocol
    /// error), or `wss://` without the `tls` feature.
    Tls(String),
    /// The server did not answer the upgrade request with a well-formed HTTP response.
    Http(String),
    /// The server answered with another status than `101 Switching Protocols`: its headers
    /// and the start of its body (at most 64 KiB).
    Status {
        /// The status.
        status: StatusCode,
        /// The response's headers (boxed: they are large, and rare).
        headers: Box<HeaderMap>,
        /// The response's body, cut at 64 KiB.
        body: Bytes,
    },
    /// The `101` broke the handshake (RFC 6455 4.1): a wrong `Sec-WebSocket-Accept`, no
    /// `Upgrade: websocket`, a subprotocol or an extension that was not offered.
    Handshake(String),
    /// The client's configurator refused the response
    /// ([`ClientConfigurator::after_response`](super::ClientConfigurator::after_response)).
    Refused(String),
    /// The attempt took longer than [`Client::connect_timeout`](super::Client::connect_timeout).
    Timeout(Duration),
}

impl ConnectError {
    pub(crate) fn connect(addr: SocketAddr, e: &io::Error) -> Self {
        ConnectError::Connect {
            addr,
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidUrl(why) => write!(f, "invalid WebSocket URL: {why}"),
            ConnectError::Dns { host, message } => {
                write!(f, "cannot resolve host `{host}`: {message}")
            }
            ConnectError::Connect { addr, message, .. } => {
                write!(f, "cannot connect to {addr}: {message}")
            }
            ConnectError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            ConnectError::Http(why) => write!(f, "bad HTTP response to the upgrade: {why}"),
            ConnectError::Status { status, body, .. } => {
                write!(f, "the server answered the upgrade with {status}")?;
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                let text = text.trim();
                if !text.is_empty() {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
            ConnectError::Handshake(why) => write!(f, "bad WebSocket handshake: {why}"),
            ConnectError::Refused(why) => write!(f, "the client's configurator refused: {why}"),
            ConnectError::Timeout(after) => write!(f, "no connection within {after:?}"),
        }
    }
}

impl std::error::Error for ConnectError {}
