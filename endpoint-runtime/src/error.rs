//! Errors handed to `on_error`, and errors of sending.
//!
//! Every error that ends up in an endpoint's `on_error` is an [`EndpointError`]. Some of them
//! also end the session; [`EndpointError::close_code`] says which, and with what code:
//!
//! | error | session | close code |
//! |---|---|---|
//! | [`Decode`](EndpointError::Decode) (payload or `#[path_param]` did not parse) | stays open | - |
//! | [`Handler`](EndpointError::Handler) (a handler returned `Err`) | stays open | - |
//! | [`Encode`](EndpointError::Encode) (a reply could not be encoded) | stays open | - |
//! | [`MissingState`](EndpointError::MissingState) | stays open | - |
//! | [`Dropped`](EndpointError::Dropped) (broadcasts dropped for a full queue, `SlowConsumer::Drop`) | stays open | - |
//! | [`Unsupported`](EndpointError::Unsupported) (no handler for this kind of message) | closed | 1003 |
//! | [`InvalidUtf8`](EndpointError::InvalidUtf8) | closed | 1007 |
//! | [`TooBig`](EndpointError::TooBig) | closed | 1009 |
//! | [`Protocol`](EndpointError::Protocol) | closed | 1002 |
//! | [`SlowConsumer`](EndpointError::SlowConsumer) (outbound queue overflowed) | closed | 1008 |
//! | [`SendTimeout`](EndpointError::SendTimeout) (a send waited past the send timeout) | closed | 1008 |
//! | [`Panic`](EndpointError::Panic) (a handler panicked) | closed | 1011 |
//! | [`Timeout`](EndpointError::Timeout) (idle timeout) | closed | 1001 |
//! | [`NoPong`](EndpointError::NoPong) (keep-alive: the peer is dead or half-open) | dropped | 1006 (local) |
//! | [`Io`](EndpointError::Io) (transport failed) | gone | 1006 (local) |

use std::fmt;

/// A boxed error, as returned by handlers: `Box<dyn Error + Send + Sync>`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

use crate::message::{CloseCode, PayloadKind};

/// An error reported to an endpoint's `on_error` handler. See the [module docs](self) for which
/// errors close the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum EndpointError {
    /// A payload or a `#[path_param]` could not be decoded. The session stays open.
    Decode(DecodeError),
    /// A handler returned `Err`. The session stays open.
    Handler(BoxError),
    /// A returned or sent value could not be encoded. The session stays open.
    Encode(BoxError),
    /// A handler asked for `State<T>` that was never registered on the server.
    MissingState(&'static str),
    /// The endpoint has no handler for this kind of message (closed with 1003).
    Unsupported(PayloadKind),
    /// A text message was not valid UTF-8 (closed with 1007).
    InvalidUtf8,
    /// A compressed message (permessage-deflate) was not valid deflate data (closed with 1007).
    Compression(String),
    /// A message or frame exceeded the size limit (closed with 1009).
    TooBig {
        /// Size of the message (as far as it was known).
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The peer violated RFC 6455 (closed with 1002).
    Protocol(String),
    /// The session's outbound queue overflowed because the peer does not read fast enough
    /// (closed with 1008).
    SlowConsumer {
        /// The queue limit in bytes.
        limit: usize,
    },
    /// A send waited longer than the session's send timeout for room in the queue, or for
    /// its message to be written ([`Session::set_send_timeout`](crate::Session::set_send_timeout),
    /// [`Limits::send_timeout`](crate::Limits::send_timeout)): the peer is not reading. The
    /// session is closed with 1008, like a broadcast's slow consumer.
    SendTimeout(std::time::Duration),
    /// Broadcasts dropped `messages` for this session because its outbound queue was full
    /// (the [`SlowConsumer::Drop`](crate::SlowConsumer::Drop) policy of its endpoint or room).
    /// The session stays open; reported once per batch of drops, before the next message.
    Dropped {
        /// How many messages were dropped since the last report.
        messages: u64,
    },
    /// A [`Hub`](crate::Hub) was used before the server serving its endpoint (the URI
    /// template here) was built (`bind`, `listen`, `into_service`).
    NotServing(&'static str),
    /// A handler panicked; the panic was caught (closed with 1011).
    Panic(String),
    /// The session was idle (no message either way) for longer than its idle timeout
    /// (closed with 1001).
    Timeout(String),
    /// A keep-alive ping got no answer in time: the peer is gone or the connection half-open.
    /// The connection is dropped; `on_close` receives 1006.
    NoPong(std::time::Duration),
    /// The transport failed (the connection is gone; `on_close` receives 1006).
    Io(std::io::Error),
}

impl EndpointError {
    /// Wraps an error returned by a handler. An `EndpointError` inside the box is unwrapped, so a
    /// handler returning `Err(EndpointError::...)` keeps its meaning.
    pub fn from_handler(error: BoxError) -> Self {
        match error.downcast::<EndpointError>() {
            Ok(e) => *e,
            Err(other) => match other.downcast::<DecodeError>() {
                Ok(d) => EndpointError::Decode(*d),
                Err(other) => EndpointError::Handler(other),
            },
        }
    }

    /// The close code this error ends the session with, or `None` when the session stays open.
    ///
    /// ```
    /// # use endpoint_runtime::{CloseCode, EndpointError, DecodeError};
    /// assert_eq!(EndpointError::InvalidUtf8.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    /// assert_eq!(EndpointError::Decode(DecodeError::new("nope")).close_code(), None);
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            EndpointError::Decode(_)
            | EndpointError::Handler(_)
            | EndpointError::Encode(_)
            | EndpointError::MissingState(_)
            | EndpointError::Dropped { .. }
            | EndpointError::NotServing(_) => None,
            EndpointError::Unsupported(_) => Some(CloseCode::CANNOT_ACCEPT),
            EndpointError::InvalidUtf8 | EndpointError::Compression(_) => {
                Some(CloseCode::INVALID_PAYLOAD)
            }
            EndpointError::TooBig { .. } => Some(CloseCode::TOO_BIG),
            EndpointError::Protocol(_) => Some(CloseCode::PROTOCOL_ERROR),
            EndpointError::SlowConsumer { .. } | EndpointError::SendTimeout(_) => {
                Some(CloseCode::POLICY_VIOLATION)
            }
            EndpointError::Panic(_) => Some(CloseCode::INTERNAL_ERROR),
            EndpointError::Timeout(_) => Some(CloseCode::GOING_AWAY),
            EndpointError::Io(_) | EndpointError::NoPong(_) => Some(CloseCode::ABNORMAL),
        }
    }

    /// Whether this is a [`Decode`](EndpointError::Decode) error.
    pub fn is_decode(&self) -> bool {
        matches!(self, EndpointError::Decode(_))
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Decode(e) => write!(f, "decode error: {e}"),
            EndpointError::Handler(e) => write!(f, "handler error: {e}"),
            EndpointError::Encode(e) => write!(f, "encode error: {e}"),
            EndpointError::MissingState(t) => {
                write!(
                    f,
                    "state `{t}` is not registered on the server (Server::state)"
                )
            }
            EndpointError::Unsupported(k) => {
                write!(f, "this endpoint does not accept {} messages", k.name())
            }
            EndpointError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            EndpointError::Compression(why) => write!(f, "invalid compressed message: {why}"),
            EndpointError::TooBig { size, max } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the limit of {max} bytes"
                )
            }
            EndpointError::Protocol(e) => write!(f, "protocol error: {e}"),
            EndpointError::SlowConsumer { limit } => write!(
                f,
                "outbound queue exceeded {limit} bytes: the peer does not read fast enough"
            ),
            EndpointError::NotServing(path) => write!(
                f,
                "endpoint \"{path}\" is not served yet: the hub was used before the server was \
                 bound"
            ),
            EndpointError::Dropped { messages } => write!(
                f,
                "{messages} broadcast message(s) dropped: the outbound queue was full"
            ),
            EndpointError::SendTimeout(d) => write!(
                f,
                "a send waited more than {d:?} (the send timeout): the peer does not read"
            ),
            EndpointError::Panic(m) => write!(f, "handler panicked: {m}"),
            EndpointError::Timeout(m) => write!(f, "timeout: {m}"),
            EndpointError::NoPong(d) => write!(f, "no pong within {d:?} of a keep-alive ping"),
            EndpointError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EndpointError::Decode(e) => Some(e),
            EndpointError::Handler(e) | EndpointError::Encode(e) => Some(&**e),
            EndpointError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for EndpointError {
    fn from(value: DecodeError) -> Self {
        EndpointError::Decode(value)
    }
}

/// A payload or path parameter that could not be decoded.
///
/// ```
/// # use endpoint_runtime::DecodeError;
/// let e = DecodeError::new("expected a number");
/// assert_eq!(e.to_string(), "expected a number");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    /// A decode error with a message.
    pub fn new(message: impl fmt::Display) -> Self {
        DecodeError {
            message: message.to_string(),
        }
    }

    pub(crate) fn wrong_kind(expected: PayloadKind, got: PayloadKind) -> Self {
        DecodeError::new(format!(
            "expected a {} message, got a {} message",
            expected.name(),
            got.name()
        ))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Why [`Session::send`](crate::Session::send) or a broadcast failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed (or closing); the message was not queued.
    Closed,
    /// The outbound queue is full ([`Session::try_send`](crate::Session::try_send) only).
    Full,
    /// The value could not be encoded.
    Encode(String),
    /// The send waited longer than the session's send timeout (for room, or, with
    /// [`Session::send_flushed`](crate::Session::send_flushed), for the write): the peer is not
    /// reading, and the session is being closed with 1008.
    Timeout(std::time::Duration),
    /// [`Session::close`](crate::Session::close) was given a code that may not be sent on the
    /// wire (`1005`, `1006`, `1015`, or no code at all, RFC 6455 7.4); nothing was sent.
    InvalidCloseCode(u16),
    /// A client's [`Connection`](crate::client::Connection) is between connections
    /// (reconnecting): the message was not queued, so nothing is sent to a server that may
    /// never come back.
    NotConnected,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("session is closed"),
            SendError::Full => f.write_str("outbound queue is full"),
            SendError::Encode(e) => write!(f, "cannot encode message: {e}"),
            SendError::Timeout(d) => write!(f, "send timed out after {d:?}"),
            SendError::NotConnected => {
                f.write_str("not connected (the client is reconnecting); nothing was queued")
            }
            SendError::InvalidCloseCode(code) => write!(
                f,
                "close code {code} may not be sent on the wire (1005, 1006 and 1015 only report \
                 a close; use 1000..=1003, 1007..=1014 or 3000..=4999)"
            ),
        }
    }
}

impl std::error::Error for SendError {}
