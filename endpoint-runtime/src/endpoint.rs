//! The [`Endpoint`] trait: what `#[server_endpoint]` implements, and what a user may implement
//! by hand.
//!
//! The runtime makes one endpoint value per connection and calls its hooks strictly one at a
//! time (`&mut self`): `on_open` first and to completion, then `on_message` once per message,
//! `on_error` whenever something goes wrong, and `on_close` exactly once, last, on every ending
//! path (peer close, protocol error, handler panic, I/O error, server shutdown).
//!
//! # Examples
//!
//! The echo endpoint, written by hand (this is roughly what the macro generates):
//!
//! ```
//! use endpoint_runtime::{Endpoint, EndpointConfig, EndpointError, Message, Session};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Endpoint for Echo {
//!     fn config() -> EndpointConfig {
//!         EndpointConfig::new("/echo.do")
//!     }
//!
//!     async fn on_message(
//!         &mut self,
//!         _session: &Session,
//!         message: Message,
//!     ) -> Result<Option<Message>, EndpointError> {
//!         Ok(Some(message))
//!     }
//! }
//!
//! let server = endpoint_runtime::Server::new().endpoint::<Echo>();
//! # drop(server);
//! ```

use std::future::Future;

use crate::configurator::Configurator;
use crate::error::EndpointError;
use crate::message::{CloseReason, Message, PayloadKind};
use crate::session::Handshake;
use crate::session::Session;

/// What a hook returns: a message to send back to the peer (if any), or an error for `on_error`.
pub type HookResult = Result<Option<Message>, EndpointError>;

/// The path of a client endpoint's configuration: not a URI template, so the router refuses
/// to serve it.
const CLIENT_PATH: &str = "<client>";

/// Static description of an endpoint: its URI template and options, as given to
/// `#[server_endpoint(...)]`.
///
/// ```
/// # use endpoint_runtime::EndpointConfig;
/// let config = EndpointConfig::new("/chat/{room}")
///     .subprotocols(&["v2.chat", "v1.chat"])
///     .max_message_size(64 * 1024);
/// assert_eq!(config.path(), "/chat/{room}");
/// ```
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub(crate) path: &'static str,
    pub(crate) subprotocols: &'static [&'static str],
    pub(crate) max_message_size: Option<usize>,
    /// Per-kind limits (text, binary, pong) from `#[on_message(max_message_size = N)]`.
    pub(crate) kind_limits: [Option<usize>; 3],
    /// permessage-deflate for this endpoint: `None` follows the server's
    /// [`Limits::compression`](crate::Limits::compression).
    pub(crate) compression: Option<bool>,
    /// Messages of a kind without a handler.
    pub(crate) unhandled: Unhandled,
    /// Broadcasts to a session whose queue is full (rooms may set their own).
    pub(crate) slow_consumer: crate::config::SlowConsumer,
}

/// What an endpoint does with a message of a kind it has no handler for (a binary message to
/// an endpoint with only a text handler): [`EndpointConfig::unhandled`],
/// `#[server_endpoint(unhandled = ignore)]`.
///
/// | | here | Tomcat | Tyrus | Jakarta spec |
/// |---|---|---|---|---|
/// | default | close `1003` | ignored, silently | `IllegalStateException` to `@OnError`, open | says nothing |
///
/// RFC 6455 (7.4.1) gives `1003` for "a type of data it cannot accept". The default stays
/// `Close`: a message nobody handles is then never lost without a trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unhandled {
    /// Close with `1003` (`on_error` gets [`EndpointError::Unsupported`]). The default.
    #[default]
    Close,
    /// Drop the message (logged at `debug`), as Tomcat does; the session stays open.
    Ignore,
}

impl EndpointConfig {
    /// An endpoint served at `path`, a level-1 URI template such as `/chat/{room}`.
    pub const fn new(path: &'static str) -> Self {
        EndpointConfig {
            path,
            subprotocols: &[],
            max_message_size: None,
            kind_limits: [None; 3],
            compression: None,
            unhandled: Unhandled::Close,
            slow_consumer: crate::config::SlowConsumer::Close,
        }
    }

    /// The configuration of a client endpoint (`#[client_endpoint]`): no path, since the URL
    /// is given to [`Client::connect`](crate::client::Client::connect). The other options mean
    /// the same as a server's: the subprotocols are the ones offered, in order of preference;
    /// `compression(true)` offers permessage-deflate; the message limits bound what the server
    /// may send.
    ///
    /// ```
    /// # use endpoint_runtime::EndpointConfig;
    /// let config = EndpointConfig::client().subprotocols(&["v2.chat"]).compression(true);
    /// assert!(config.is_client());
    /// ```
    pub const fn client() -> Self {
        Self::new(CLIENT_PATH)
    }

    /// Whether this is a client endpoint's configuration ([`EndpointConfig::client`]).
    pub fn is_client(&self) -> bool {
        self.path == CLIENT_PATH
    }

    /// What to do with messages of a kind the endpoint has no handler for
    /// (`#[server_endpoint(unhandled = ignore)]`); see [`Unhandled`]. Default: close with 1003.
    ///
    /// ```
    /// # use endpoint_runtime::{EndpointConfig, endpoint::Unhandled};
    /// let config = EndpointConfig::new("/text-only").unhandled(Unhandled::Ignore);
    /// # drop(config);
    /// ```
    pub const fn unhandled(mut self, unhandled: Unhandled) -> Self {
        self.unhandled = unhandled;
        self
    }

    /// What a broadcast does to a session of this endpoint whose outbound queue is full
    /// (`#[server_endpoint(slow_consumer = drop)]`); a room may set its own
    /// ([`Room::set_slow_consumer`](crate::Room::set_slow_consumer)). See
    /// [`SlowConsumer`](crate::SlowConsumer); default: close with 1008.
    pub const fn slow_consumer(mut self, policy: crate::config::SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }

    /// permessage-deflate for this endpoint (`#[server_endpoint(compression = true)]`):
    /// `true` accepts it with the server's [`Compression`](crate::Compression) settings (their
    /// defaults when the server's is disabled), `false` declines it whatever the server's says.
    /// Without it the server's [`Limits::compression`](crate::Limits::compression) decides.
    pub const fn compression(mut self, enabled: bool) -> Self {
        self.compression = Some(enabled);
        self
    }

    /// The compression settings in force for this endpoint under the server's.
    pub(crate) fn resolve_compression(
        &self,
        server: &crate::Compression,
    ) -> crate::protocol::deflate::DeflateConfig {
        let mut config = server.0.clone();
        if let Some(enabled) = self.compression {
            config.enabled = enabled;
        }
        config
    }

    /// Subprotocols the endpoint speaks. The first protocol of the *client's* list that appears
    /// here is chosen (the order here does not matter), as in Jakarta.
    pub const fn subprotocols(mut self, protocols: &'static [&'static str]) -> Self {
        self.subprotocols = protocols;
        self
    }

    /// The largest message this endpoint accepts (exceeding it closes with 1009). Without it the
    /// server default ([`Limits::max_message_size`](crate::Limits::max_message_size)) applies.
    /// It is for whole messages: a kind taken in parts or as a stream ([`MessageMode`]) has
    /// its handler's own limit ([`message_limit`](EndpointConfig::message_limit)) or none.
    pub const fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// The largest message of one kind (a handler's `#[on_message(max_message_size = N)]`,
    /// like Jakarta's `@OnMessage(maxMessageSize)`): it overrides the endpoint's and the
    /// server's limit for that kind, upwards or downwards. Pings are limited by the protocol.
    pub const fn message_limit(mut self, kind: PayloadKind, bytes: usize) -> Self {
        match kind {
            PayloadKind::Text => self.kind_limits[0] = Some(bytes),
            PayloadKind::Binary => self.kind_limits[1] = Some(bytes),
            PayloadKind::Pong => self.kind_limits[2] = Some(bytes),
            PayloadKind::Ping => {}
        }
        self
    }

    /// The URI template.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// What happens to messages of a kind without a handler ([`EndpointConfig::unhandled`]).
    pub fn unhandled_policy(&self) -> Unhandled {
        self.unhandled
    }

    /// What a broadcast does when a session's queue is full ([`EndpointConfig::slow_consumer`]).
    pub fn slow_consumer_policy(&self) -> crate::config::SlowConsumer {
        self.slow_consumer
    }

    /// The limits in force for this endpoint under the server's `limits`: the largest message
    /// of each kind, and what the socket reads at most (frame and message).
    ///
    /// `parts` (text, binary) names the kinds delivered in parts or as a stream
    /// ([`MessageMode`]): their limit is their handler's own `max_message_size`, or none, and they
    /// change neither what a whole message may be nor the frame limit.
    pub(crate) fn resolve(&self, limits: &crate::Limits, parts: [bool; 2]) -> MessageLimits {
        let base = self.max_message_size.unwrap_or(limits.max_message_size);
        let parts = [parts[0], parts[1], false];
        let per_kind = |i: usize| match self.kind_limits[i] {
            Some(max) => max,
            None if parts[i] => usize::MAX,
            None => base,
        };
        let kinds = [per_kind(0), per_kind(1), per_kind(2)];
        let read = (0..3)
            .filter(|&i| !parts[i])
            .map(|i| kinds[i])
            .fold(base, usize::max);
        let custom = self.max_message_size.is_some()
            || (0..3).any(|i| !parts[i] && self.kind_limits[i].is_some());
        // A message can arrive as one frame (browsers send them so): raising an endpoint's
        // message limit raises its frame limit with it.
        let frame = if custom {
            read
        } else {
            limits.max_frame_size.min(read)
        };
        MessageLimits {
            kinds,
            read,
            frame,
            ignore_unhandled: self.unhandled == Unhandled::Ignore,
        }
    }
}

/// Resolved message limits of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageLimits {
    /// Text, binary, pong.
    pub(crate) kinds: [usize; 3],
    /// The most the decoder reads for one message.
    pub(crate) read: usize,
    /// The most the decoder reads for one frame.
    pub(crate) frame: usize,
    /// Messages of a kind without a handler are dropped rather than closed with 1003.
    pub(crate) ignore_unhandled: bool,
}

impl MessageLimits {
    /// The sizes the frame decoder enforces.
    pub(crate) fn decode(&self) -> crate::protocol::frame::DecodeLimits {
        crate::protocol::frame::DecodeLimits::whole(self.frame, self.read)
    }

    /// [`MessageLimits::decode`] for an endpoint that takes text and/or binary messages in
    /// parts (`parts`: text, binary; see [`MessageMode`]): those are delivered frame by frame
    /// under their own limit.
    pub(crate) fn decode_parts(&self, parts: [bool; 2]) -> crate::protocol::frame::DecodeLimits {
        let mut limits = self.decode();
        limits.parts = [
            parts[0].then_some(self.kinds[0]),
            parts[1].then_some(self.kinds[1]),
        ];
        limits
    }

    pub(crate) fn for_kind(&self, kind: PayloadKind) -> usize {
        match kind {
            PayloadKind::Text => self.kinds[0],
            PayloadKind::Binary => self.kinds[1],
            PayloadKind::Pong => self.kinds[2],
            PayloadKind::Ping => 125,
        }
    }
}

/// How an endpoint receives text or binary messages ([`Endpoint::message_mode`]).
///
/// | delivery | hook | Jakarta | limit |
/// |---|---|---|---|
/// | `Whole` (default) | [`on_message`](Endpoint::on_message), once per message | `@OnMessage (String msg)` | the endpoint's `max_message_size` (or the server's) |
/// | `Parts` | [`on_part`](Endpoint::on_part), once per frame, as it arrives | `@OnMessage (String part, boolean last)` | the handler's own `max_message_size`, or none |
/// | `Stream` | [`on_stream`](Endpoint::on_stream), once per message, reading it as it arrives | `@OnMessage (Reader r)` / `(InputStream s)` | the handler's own `max_message_size`, or none |
///
/// Parts and streams never hold more than one frame of the message (each frame is limited by
/// [`Limits::max_frame_size`](crate::Limits::max_frame_size), or the endpoint's own
/// `max_message_size` when it sets one), so a message of any size is processed in bounded
/// memory. A text part or chunk always holds whole characters: a character cut by a frame
/// boundary is carried to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    /// The whole message, assembled.
    Whole,
    /// Each frame's part as it arrives, with whether it is the last.
    Parts,
    /// A stream of the message's parts, read by one hook call.
    Stream,
}

/// A WebSocket endpoint: lifecycle hooks the runtime calls for one connection.
///
/// Implemented by `#[server_endpoint]`; implement it by hand to use the runtime without the
/// macro (see the [module docs](self)). Every hook but [`on_message`](Endpoint::on_message) has
/// a default that does nothing (the default `on_error` logs the error with `tracing`).
pub trait Endpoint: Send + 'static {
    /// The endpoint's URI template and options.
    fn config() -> EndpointConfig
    where
        Self: Sized;

    /// Called once, before any message, when the handshake has completed.
    fn on_open<'a>(
        &'a mut self,
        session: &'a Session,
        handshake: &'a Handshake,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        let _ = (session, handshake);
        std::future::ready(Ok(None))
    }

    /// Called for every complete message (text, binary, pong). Return
    /// `Err(EndpointError::Unsupported(kind))` for kinds the endpoint does not accept: the session
    /// is closed with 1003, as Jakarta does.
    fn on_message<'a>(
        &'a mut self,
        session: &'a Session,
        message: Message,
    ) -> impl Future<Output = HookResult> + Send + 'a;

    /// Called for each part of a text or binary message whose kind is delivered in parts
    /// ([`Endpoint::message_mode`] says [`MessageMode::Parts`]), as each frame arrives: `part` is a
    /// text part (whole characters only) or a binary part, `last` whether it ends the message.
    /// A message sent in one frame is one part with `last` set.
    ///
    /// ```
    /// use endpoint_runtime::{MessageMode, Endpoint, EndpointConfig, HookResult, Message, PayloadKind, Session};
    ///
    /// #[derive(Default)]
    /// struct Parts;
    ///
    /// impl Endpoint for Parts {
    ///     fn config() -> EndpointConfig {
    ///         EndpointConfig::new("/parts")
    ///     }
    ///     async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
    ///         Ok(Some(m))
    ///     }
    ///     async fn on_part(&mut self, _: &Session, part: Message, last: bool) -> HookResult {
    ///         println!("{} bytes, last: {last}", part.len());
    ///         Ok(None)
    ///     }
    ///     fn message_mode(kind: PayloadKind) -> MessageMode {
    ///         match kind {
    ///             PayloadKind::Binary => MessageMode::Parts,
    ///             _ => MessageMode::Whole,
    ///         }
    ///     }
    /// }
    /// ```
    fn on_part<'a>(
        &'a mut self,
        session: &'a Session,
        part: Message,
        last: bool,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        let _ = (session, last);
        std::future::ready(Err(EndpointError::Unsupported(part.kind())))
    }

    /// Called once for each text or binary message whose kind is delivered as a stream
    /// ([`MessageMode::Stream`]), when its first frame arrives: the hook reads the message from
    /// `stream` while the rest of it arrives (see [`MessageStream`](crate::MessageStream)).
    /// What the hook leaves unread is discarded; the next message waits until it returns.
    fn on_stream<'a>(
        &'a mut self,
        session: &'a Session,
        stream: crate::MessageStream,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        let _ = session;
        std::future::ready(Err(EndpointError::Unsupported(stream.kind())))
    }

    /// Called when a hook fails or the connection breaks. Whether the session stays open is
    /// decided by [`EndpointError::close_code`], not by this hook (it may also call
    /// [`Session::close`]).
    fn on_error<'a>(
        &'a mut self,
        session: &'a Session,
        error: EndpointError,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        tracing::warn!(session = %session.id(), %error, "unhandled endpoint error");
        std::future::ready(Ok(None))
    }

    /// Called exactly once, last, however the session ended.
    fn on_close<'a>(
        &'a mut self,
        session: &'a Session,
        reason: CloseReason,
    ) -> impl Future<Output = ()> + Send + 'a {
        let _ = (session, reason);
        std::future::ready(())
    }

    /// The endpoint's handshake hooks (`configurator = T` in `#[server_endpoint]`); `None` by
    /// default. Called once, when the endpoint is registered.
    fn configurator() -> Option<Box<dyn Configurator>>
    where
        Self: Sized,
    {
        None
    }

    /// The `State<T>` values the hooks take, checked when the server is built
    /// ([`Server::bind`](crate::Server::bind) fails with `InvalidInput` naming the type and the
    /// endpoint when one was never registered). `#[server_endpoint]` declares every `State<T>`
    /// parameter; an endpoint written by hand declares what it looks up. Empty by default.
    ///
    /// ```
    /// # use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Session};
    /// use endpoint_runtime::state::RequiredState;
    /// struct Db;
    /// # #[derive(Default)] struct Chat;
    /// impl Endpoint for Chat {
    ///     # fn config() -> EndpointConfig { EndpointConfig::new("/chat") }
    ///     # async fn on_message(&mut self, _: &Session, _: Message) -> HookResult { Ok(None) }
    ///     fn required_state() -> Vec<RequiredState> {
    ///         vec![RequiredState::of::<Db>("on_message")]
    ///     }
    /// }
    /// ```
    fn required_state() -> Vec<crate::state::RequiredState>
    where
        Self: Sized,
    {
        Vec::new()
    }

    /// The kinds of message `on_message` handles; used to answer with 1003 early and to keep
    /// pongs away from endpoints that do not want them. Defaults to text and binary.
    fn accepts(kind: PayloadKind) -> bool
    where
        Self: Sized,
    {
        matches!(kind, PayloadKind::Text | PayloadKind::Binary)
    }

    /// How text and binary messages are delivered: whole to
    /// [`on_message`](Endpoint::on_message) (the default), in parts to
    /// [`on_part`](Endpoint::on_part), or as a stream to [`on_stream`](Endpoint::on_stream).
    /// Asked for text and binary only.
    fn message_mode(kind: PayloadKind) -> MessageMode
    where
        Self: Sized,
    {
        let _ = kind;
        MessageMode::Whole
    }
}
