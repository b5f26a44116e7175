//! # endpoint-runtime
//!
//! The runtime of the `endpoint` WebSocket framework: a hyper 1 server that upgrades requests
//! on the paths of registered [`Endpoint`]s, and drives each connection through the endpoint's
//! lifecycle hooks. The WebSocket framing (RFC 6455) is the runtime's own, built to hold no
//! buffer for an idle connection; tungstenite's `Utf8Bytes` and message types are reused.
//!
//! Most users depend on the `endpoint` facade and write `#[server_endpoint]` impls; this crate
//! is usable on its own by implementing [`Endpoint`] by hand.
//!
//! Where things live:
//!
//! | module | concept |
//! |---|---|
//! | [`server`] | [`Server`] builder, binding, accept loop, graceful shutdown |
//! | [`router`] | URI-template routing |
//! | [`handshake`] | upgrade validation, refusals and their HTTP statuses, [`Handshake`] |
//! | [`configurator`] | [`Configurator`]: origin checks, handshake inspection/refusal, subprotocol choice |
//! | `connection` | the per-connection driver (hooks one at a time, coalesced writes) |
//! | `frame` | RFC 6455 framing: the decoder (limits, UTF-8, close payloads) and the encoder |
//! | `ws` | a connection's bytes: reads and writes through per-thread scratch buffers |
//! | `transport` | the TCP or TLS stream recovered from hyper's upgrade (plain TCP kept in the session) |
//! | `timer` | keep-alive and idle deadlines of all sessions, one watcher task per server |
//! | [`session`] | [`Session`], its bounded outbound queue and direct writes by broadcasts, [`Properties`] |
//! | [`broker`] | [`Broker`](broker::Broker): rooms across processes (Redis with the `redis` feature) |
//! | `redis` | `RedisBroker`: Redis pub/sub rooms and presence across nodes (feature `redis`) |
//! | [`room`] | rooms, broadcast (fan-out), slow consumers ([`Room`], [`Rooms`], [`Delivery`]) |
//! | [`message`] | [`Message`], [`CloseCode`], [`CloseReason`], [`Decode`], [`Encode`] |
//! | [`error`] | [`EndpointError`] and which errors close with which code |
//! | [`config`] | [`Limits`] and their defaults |
//! | [`state`] | [`State<T>`] shared state |

pub mod broker;
pub mod config;
pub mod configurator;
mod connection;
pub mod endpoint;
pub mod error;
mod frame;
pub mod handshake;
#[cfg(feature = "json")]
mod json;
pub mod message;
#[cfg(feature = "redis")]
pub mod redis;
pub mod room;
pub mod router;
pub mod server;
pub mod session;
pub mod state;
pub mod stats;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
mod util;
mod ws;

pub use bytes::Bytes;
pub use config::Limits;
pub use configurator::{Configurator, HandshakeRequest};
pub use endpoint::{Endpoint, EndpointConfig, HookResult};
pub use error::{BoxError, DecodeError, EndpointError, SendError};
pub use handshake::{Handshake, Rejection};
#[cfg(feature = "json")]
pub use json::Json;
pub use message::{
    CloseCode, CloseReason, Decode, Encode, IntoReply, Message, PayloadKind, Pong, Utf8Bytes,
};
pub use room::{Delivery, Room, Rooms};
pub use server::{shutdown_signal, BoundServer, EndpointService, Server, ServerHandle};
pub use session::{Properties, Session, SessionId};
pub use state::State;
pub use stats::Stats;

/// The names an endpoint definition usually needs.
pub mod prelude {
    #[cfg(feature = "json")]
    pub use crate::Json;
    pub use crate::{
        Bytes, CloseCode, CloseReason, Configurator, Decode, DecodeError, Encode, EndpointError,
        Handshake, HandshakeRequest, Limits, Message, PayloadKind, Pong, Rejection, Room, Server,
        Session, State,
    };
}

/// Entry points for the cargo-fuzz targets in `fuzz/`. Not a public API.
#[doc(hidden)]
pub mod __fuzz {
    use crate::configurator::HandshakeRequest;
    pub use crate::handshake::{choose_subprotocol, is_valid_key};
    use crate::session::Properties;

    /// Validates an upgrade request: the `Sec-WebSocket-Accept` value and the client's
    /// subprotocols, or the refusal.
    pub fn validate_upgrade<B>(
        req: &http::Request<B>,
    ) -> Result<(String, Vec<String>), crate::Rejection> {
        crate::handshake::validate(req).map(|v| (v.accept, v.client_protocols))
    }

    /// A configurator's view of a request, to fuzz its query and cookie parsing.
    pub fn handshake_request(uri: http::Uri, headers: http::HeaderMap) -> HandshakeRequest {
        HandshakeRequest {
            method: http::Method::GET,
            uri,
            headers,
            path_params: Vec::new(),
            remote_addr: None,
            requested_protocols: Vec::new(),
            properties: Properties::default(),
            response_headers: http::HeaderMap::new(),
            state: Default::default(),
        }
    }

    /// The most bytes a client frame header takes (2 + 8 length + 4 mask).
    pub const MAX_FRAME_HEADER: usize = crate::frame::MAX_HEADER;

    /// The connection's RFC 6455 frame decoder (`frame::Decoder`) with fixed size limits.
    #[derive(Debug)]
    pub struct FrameDecoder {
        decoder: crate::frame::Decoder,
        limits: crate::frame::DecodeLimits,
    }

    /// What one complete frame amounted to (`frame::Inbound`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FrameEvent {
        /// A complete text, binary or pong message.
        Message(crate::Message),
        /// A ping, which the driver answers with a pong.
        Ping(crate::Bytes),
        /// The peer's close frame, or the close the server answers a malformed one with.
        Close(Option<crate::CloseReason>),
    }

    /// What [`FrameDecoder::decode`] found at the start of a buffer (`frame::Decoded`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FrameDecoded {
        /// A frame of `consumed` bytes; no event when it only continued a fragmented message.
        Frame {
            /// Bytes of the buffer the frame took.
            consumed: usize,
            /// What the frame meant, if anything yet.
            event: Option<FrameEvent>,
        },
        /// The frame is not complete; the decoder wants at least `need` bytes from the start.
        Incomplete {
            /// Buffer length to wait for before decoding again.
            need: usize,
        },
    }

    impl FrameDecoder {
        /// A decoder refusing frame payloads over `frame_limit` and messages over
        /// `message_limit` bytes.
        pub fn new(frame_limit: usize, message_limit: usize) -> Self {
            FrameDecoder {
                decoder: crate::frame::Decoder::default(),
                limits: crate::frame::DecodeLimits {
                    frame: frame_limit,
                    message: message_limit,
                },
            }
        }

        /// Decodes the frame at the start of `buf`, as the connection does; an error carries
        /// its close code (`EndpointError::close_code`).
        pub fn decode(&mut self, buf: &[u8]) -> Result<FrameDecoded, crate::EndpointError> {
            use crate::frame::{Decoded, Inbound};
            Ok(match self.decoder.decode(buf, self.limits)? {
                Decoded::Frame { consumed, inbound } => FrameDecoded::Frame {
                    consumed,
                    event: inbound.map(|inbound| match inbound {
                        Inbound::Message(m) => FrameEvent::Message(m),
                        Inbound::Ping(p) => FrameEvent::Ping(p),
                        Inbound::Close(c) => FrameEvent::Close(c),
                    }),
                },
                Decoded::Incomplete { need } => FrameDecoded::Incomplete { need },
            })
        }
    }
}

/// Support for code generated by `#[server_endpoint]`. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        Bytes, CloseReason, Configurator, Decode, DecodeError, Endpoint, EndpointConfig,
        EndpointError, Handshake, HookResult, IntoReply, Message, PayloadKind, Pong, Session,
        State,
    };
    pub use core::future::Future;

    /// Parses a path variable for a `#[path_param]` parameter.
    pub fn path_param<T>(session: &Session, name: &'static str) -> Result<T, EndpointError>
    where
        T: core::str::FromStr,
        T::Err: core::fmt::Display,
    {
        let raw = session.path_param(name).ok_or_else(|| {
            EndpointError::Decode(DecodeError::new(format!("missing path parameter `{name}`")))
        })?;
        raw.parse::<T>().map_err(|e| {
            EndpointError::Decode(DecodeError::new(format!(
                "path parameter `{name}` = `{}` is not a valid {}: {e}",
                crate::util::ellipsize(raw, 64),
                core::any::type_name::<T>()
            )))
        })
    }

    /// Logs an error `on_close` has nowhere to report (a missing path parameter or state, or an
    /// `Err` the close handler returned).
    pub fn report_close_error(session: &Session, error: EndpointError) {
        tracing::warn!(session = %session.id(), %error, "on_close handler failed");
    }

    /// Logs the `Err` of a close handler's return value.
    pub fn report_close_error_of(session: &Session, result: HookResult) {
        if let Err(error) = result {
            report_close_error(session, error);
        }
    }

    /// Looks up shared state for a `State<T>` parameter.
    pub fn state<T: Send + Sync + 'static>(session: &Session) -> Result<State<T>, EndpointError> {
        session
            .state::<T>()
            .ok_or(EndpointError::MissingState(core::any::type_name::<T>()))
    }
}
