//! [`Limits`]: every bound the server enforces, with defaults for an internet-facing server.
//!
//! | limit | default | what happens when exceeded |
//! |---|---|---|
//! | [`max_message_size`](Limits::max_message_size) | 1 MiB | close 1009 |
//! | [`max_frame_size`](Limits::max_frame_size) | 1 MiB | close 1009 |
//! | [`read_buffer_size`](Limits::read_buffer_size) | 512 B | (a buffer, not a limit: the least a connection allocates to keep a partial frame; the socket is read in chunks of up to 128 KiB through a per-thread scratch buffer, and an idle connection holds no buffer) |
//! | [`write_buffer_size`](Limits::write_buffer_size) | 16 KiB | (not a limit: frames are written once this much is encoded, or at the end of each batch) |
//! | [`outbound_queue_bytes`](Limits::outbound_queue_bytes) | 1 MiB | `send` waits, `try_send` fails, a broadcast closes the session with 1008 |
//! | [`send_timeout`](Limits::send_timeout) | 20 s (Tomcat's `BLOCKING_SEND_TIMEOUT`) | the send fails with `SendError::Timeout`, the session is closed with 1008 |
//! | [`handshake_timeout`](Limits::handshake_timeout) | 10 s | the TCP connection is dropped (slowloris) |
//! | [`max_request_head`](Limits::max_request_head) | 16 KiB | `431`/connection dropped by hyper |
//! | [`max_connections`](Limits::max_connections) | 10,000 | `503` before the upgrade |
//! | [`idle_timeout`](Limits::idle_timeout) | none | close 1001 after that long without a message either way ([`Session::set_idle_timeout`](crate::Session::set_idle_timeout) per session) |
//! | [`ping_interval`](Limits::ping_interval) | 30 s | a ping is sent after that long without hearing from the peer |
//! | [`pong_timeout`](Limits::pong_timeout) | 30 s | no answer to the ping in that time: the connection is dropped, `on_close` gets 1006 |
//! | [`close_timeout`](Limits::close_timeout) | 5 s | the TCP connection is dropped without waiting for the peer's close frame (after a protocol error: without reading on, at most 64 MiB, until the peer's end) |
//! | [`shutdown_timeout`](Limits::shutdown_timeout) | 10 s | `run_until` returns; unfinished sessions are dropped |
//! | [`compression`](Limits::compression) | off | (not a limit: permessage-deflate, see [`Compression`]) |
//!
//! ```
//! use endpoint_runtime::{Limits, Server};
//! use std::time::Duration;
//!
//! let mut limits = Limits::default();
//! limits.max_message_size = 64 * 1024;
//! limits.handshake_timeout = Duration::from_secs(5);
//! let server = Server::new().limits(limits);
//! # drop(server);
//! ```

use std::time::Duration;

use crate::protocol::deflate::DeflateConfig;

/// Server-wide bounds. See the [module docs](self) for defaults and effects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest incoming message, in bytes (an endpoint's `max_message_size` overrides it).
    pub max_message_size: usize,
    /// Largest incoming frame payload, in bytes.
    pub max_frame_size: usize,
    /// The least a connection allocates to keep a partial frame (or frames read past the one
    /// being handled) between reads, in bytes; it grows to the frame's size. The socket is read
    /// in chunks of up to 128 KiB through a per-thread scratch buffer, and a connection keeps a buffer of
    /// its own only while bytes are left over, so idle connections hold none.
    pub read_buffer_size: usize,
    /// Bytes encoded before frames are written to the socket mid-batch (a batch is otherwise
    /// written with one system call). Payloads of 8 KiB or more are written from the message
    /// itself, not copied.
    pub write_buffer_size: usize,
    /// Bound of each session's outbound queue, in payload bytes.
    pub outbound_queue_bytes: usize,
    /// How long a send waits for room in the session's outbound queue (and
    /// [`Session::send_flushed`](crate::Session::send_flushed) for the write) before it fails
    /// with [`SendError::Timeout`](crate::SendError::Timeout) and the session is closed with
    /// 1008: the peer is not reading. Also bounds a handler's reply waiting for room. `None`:
    /// wait as long as the session is open. Per session:
    /// [`Session::set_send_timeout`](crate::Session::set_send_timeout). Default 20 s, Tomcat's
    /// `BLOCKING_SEND_TIMEOUT`.
    pub send_timeout: Option<Duration>,
    /// Time a client has to send its complete handshake request.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head (request line and headers), in bytes; at least 8 KiB.
    pub max_request_head: usize,
    /// Most WebSocket sessions open at once; further upgrades get `503`.
    pub max_connections: usize,
    /// Close a session (1001) after this long without a message in either direction; `None`
    /// never. Pings and pongs do not count as messages.
    pub idle_timeout: Option<Duration>,
    /// Send a keep-alive ping after this long without any frame from the peer; `None` disables
    /// keep-alive. An HTTP/2 connection is pinged at the same interval too (an HTTP/2 PING,
    /// whether or not it carries open streams), and dropped with all its streams when
    /// `pong_timeout` passes without an answer.
    pub ping_interval: Option<Duration>,
    /// How long to wait for any frame after a keep-alive ping before dropping the connection
    /// (for HTTP/2's own PING: for its acknowledgement).
    pub pong_timeout: Duration,
    /// How long a closing session waits for the peer's close frame. After a protocol error the
    /// stream cannot be decoded any more: the server then ends its side of it and reads and
    /// discards what the peer still sends (at most 64 MiB) until the peer's end or this
    /// timeout, so that its close frame reaches a peer that is still writing (closing with
    /// unread input would reset the connection, and the peer's kernel would drop the frame).
    pub close_timeout: Duration,
    /// How long `run_until` waits for sessions to end after shutdown began.
    pub shutdown_timeout: Duration,
    /// permessage-deflate (RFC 7692): off unless enabled here or per endpoint
    /// ([`EndpointConfig::compression`](crate::EndpointConfig::compression)).
    pub compression: Compression,
}

/// What a broadcast does to a recipient whose outbound queue is full (the peer does not read
/// fast enough): per endpoint ([`EndpointConfig::slow_consumer`](crate::EndpointConfig::slow_consumer),
/// `#[server_endpoint(slow_consumer = drop)]`) and per room
/// ([`Room::set_slow_consumer`](crate::Room::set_slow_consumer)). Never silent: every
/// recipient gets the message, or is closed, or is told it missed it.
///
/// | policy | the recipient | the broadcaster | counted in |
/// |---|---|---|---|
/// | `Close` (default) | closed with `1008`; `on_error` gets `EndpointError::SlowConsumer` | never waits | `Delivery::overflowed`, `Stats::slow_consumers` |
/// | `Wait` | gets it once there is room (closed with `1008` if there is none within its send timeout) | the awaited broadcasts (`broadcast_wait`) wait, one recipient after the other, as a Java loop over `getBasicRemote().sendText` does; the plain `broadcast` cannot wait and closes as `Close` | `Delivery::overflowed` when closed |
/// | `Drop` | misses this message; `on_error` gets `EndpointError::Dropped` with the count (uWebSockets' `dropped`, Spring's `DROP`) | never waits | `Delivery::dropped`, `Stats::dropped_messages` |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Close the recipient with 1008. The default.
    #[default]
    Close,
    /// Wait for room, bounded by the recipient's send timeout (`broadcast_wait`).
    Wait,
    /// Skip the recipient for this message, and tell its endpoint.
    Drop,
}

/// permessage-deflate (RFC 7692) settings: [`Limits::compression`].
///
/// Off by default, like Node's `ws` and uWebSockets: compression costs CPU on every message, and
/// a message that mixes a secret with text an attacker chooses leaks the secret through its
/// compressed length (the CRIME/BREACH kind of attack). [`Compression::enabled`] turns it on
/// with settings that hold no zlib state while a connection is idle: no context takeover either
/// way (each message compressed on its own, so a broadcast is compressed once for all its
/// recipients), 32 KiB windows, zlib level 1, messages under 1 KiB sent as they are. What
/// each setting costs and why it is the default: the runtime's `protocol/deflate.rs`.
///
/// ```
/// use endpoint_runtime::{Compression, Limits};
///
/// let mut limits = Limits::default();
/// limits.compression = Compression::enabled().level(6).min_size(256);
/// assert!(limits.compression.is_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression(pub(crate) DeflateConfig);

impl Compression {
    /// No compression: offers of permessage-deflate are declined.
    pub fn disabled() -> Self {
        Compression(DeflateConfig::default())
    }

    /// Compression with the defaults described on [`Compression`].
    pub fn enabled() -> Self {
        Compression(DeflateConfig {
            enabled: true,
            ..DeflateConfig::default()
        })
    }

    /// Whether offers of permessage-deflate are accepted.
    pub fn is_enabled(&self) -> bool {
        self.0.enabled
    }

    /// Context takeover: whether the server's (`server`) and the client's (`client`)
    /// compressor keep their window from one message to the next. Better ratios for similar
    /// messages; costs, per connection that agreed, a zlib compressor (about 370 KiB at 15
    /// window bits) for the server's side and a decompressor (about 46 KiB) for the client's,
    /// held from its first compressed message to the end. A client that asks for no takeover
    /// gets none whatever this says.
    pub fn context_takeover(mut self, server: bool, client: bool) -> Self {
        self.0.server_no_context_takeover = !server;
        self.0.client_no_context_takeover = !client;
        self
    }

    /// The largest windows, in bits (9 to 15; values out of range are brought into it), the
    /// server compresses with and asks the client to compress with. A client asking for less
    /// gets less.
    pub fn max_window_bits(mut self, server: u8, client: u8) -> Self {
        self.0.server_max_window_bits = server.clamp(9, 15);
        self.0.client_max_window_bits = client.clamp(9, 15);
        self
    }

    /// zlib's compression level, 0 (stored) to 9 (default 1: the measured best trade for chat
    /// messages).
    pub fn level(mut self, level: u32) -> Self {
        self.0.level = level.min(9);
        self
    }

    /// Messages smaller than this many bytes are sent uncompressed (default 1024).
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.0.min_size = bytes;
        self
    }
}

impl Default for Compression {
    /// [`Compression::disabled`].
    fn default() -> Self {
        Compression::disabled()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 512,
            write_buffer_size: 16 * 1024,
            outbound_queue_bytes: 1 << 20,
            send_timeout: Some(Duration::from_secs(20)),
            handshake_timeout: Duration::from_secs(10),
            max_request_head: 16 * 1024,
            max_connections: 10_000,
            idle_timeout: None,
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            compression: Compression::disabled(),
        }
    }
}
