//! Messages, close codes, and the traits that turn payloads into Rust values and back.
//!
//! * [`Message`] is one complete WebSocket data or control message.
//! * [`Decode`] is the counterpart of Jakarta's `Decoder`: any type implementing it can be the
//!   payload parameter of an `#[on_message]` handler.
//! * [`Encode`] is the counterpart of Jakarta's `Encoder`: any type implementing it can be sent
//!   with [`Session::send`](crate::Session::send) or returned from a handler.
//! * [`IntoReply`] is what a handler may return: `()`, anything [`Encode`], `Option<_>` of it, or
//!   `Result<_, E>` whose `Err` reaches `on_error`.
//!
//! # Examples
//!
//! A user type decoded from text and encoded back:
//!
//! ```
//! use endpoint_runtime::{Decode, DecodeError, Encode, EndpointError, Message, PayloadKind};
//!
//! struct Point { x: i32, y: i32 }
//!
//! impl Decode for Point {
//!     const KIND: PayloadKind = PayloadKind::Text;
//!     fn decode(message: Message) -> Result<Self, DecodeError> {
//!         let text = message.as_text().unwrap_or_default();
//!         let (x, y) = text.split_once(',').ok_or_else(|| DecodeError::new("expected `x,y`"))?;
//!         Ok(Point {
//!             x: x.trim().parse().map_err(DecodeError::new)?,
//!             y: y.trim().parse().map_err(DecodeError::new)?,
//!         })
//!     }
//! }
//!
//! impl Encode for Point {
//!     fn encode(self) -> Result<Message, EndpointError> {
//!         Ok(Message::text(format!("{},{}", self.x, self.y)))
//!     }
//! }
//!
//! let p = Point::decode(Message::text("3, 4")).unwrap();
//! assert_eq!(p.encode().unwrap(), Message::text("3,4"));
//! ```

use std::fmt;

pub use crate::utf8::Utf8Bytes;
use bytes::Bytes;

use crate::error::{BoxError, DecodeError, EndpointError};
use crate::util::floor_char_boundary;

/// One complete WebSocket message, as handed to `on_message` or sent to a peer.
///
/// Text and binary payloads are reference-counted ([`Utf8Bytes`], [`Bytes`]): cloning a message
/// for a broadcast shares its bytes instead of copying them.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes of payload).
    Ping(Bytes),
    /// A pong (at most 125 bytes of payload).
    Pong(Bytes),
}

impl Message {
    /// A text message.
    ///
    /// ```
    /// # use endpoint_runtime::Message;
    /// assert_eq!(Message::text("hi").as_text(), Some("hi"));
    /// ```
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    ///
    /// ```
    /// # use endpoint_runtime::Message;
    /// assert_eq!(Message::binary(vec![1, 2]).as_bytes(), &[1, 2]);
    /// ```
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Message::Binary(bytes.into())
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// The raw payload bytes, whatever the kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which kind of payload this is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Message::Text(_) => PayloadKind::Text,
            Message::Binary(_) => PayloadKind::Binary,
            Message::Ping(_) => PayloadKind::Ping,
            Message::Pong(_) => PayloadKind::Pong,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        match self {
            Message::Text(t) if t.len() > MAX => {
                let start = &t.as_str()[..floor_char_boundary(t, MAX)];
                write!(f, "Text({start:?}... {} bytes)", t.len())
            }
            Message::Text(t) => write!(f, "Text({:?})", t.as_str()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
            Message::Ping(b) => write!(f, "Ping({} bytes)", b.len()),
            Message::Pong(b) => write!(f, "Pong({} bytes)", b.len()),
        }
    }
}

impl From<String> for Message {
    fn from(value: String) -> Self {
        Message::Text(value.into())
    }
}
impl From<&str> for Message {
    fn from(value: &str) -> Self {
        Message::Text(value.into())
    }
}
impl From<Vec<u8>> for Message {
    fn from(value: Vec<u8>) -> Self {
        Message::Binary(value.into())
    }
}
impl From<Bytes> for Message {
    fn from(value: Bytes) -> Self {
        Message::Binary(value)
    }
}
impl From<&[u8]> for Message {
    fn from(value: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(value))
    }
}

/// The kinds of payload an `#[on_message]` handler can receive. An endpoint has at most one
/// handler per kind (text, binary, pong), like Jakarta's one `@OnMessage` per message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// Text frames.
    Text,
    /// Binary frames.
    Binary,
    /// Ping frames (answered automatically; never handed to handlers).
    Ping,
    /// Pong frames.
    Pong,
}

impl PayloadKind {
    /// Lower-case name: `"text"`, `"binary"`, `"ping"`, `"pong"`.
    pub const fn name(self) -> &'static str {
        match self {
            PayloadKind::Text => "text",
            PayloadKind::Binary => "binary",
            PayloadKind::Ping => "ping",
            PayloadKind::Pong => "pong",
        }
    }

    #[doc(hidden)]
    pub const fn same(self, other: PayloadKind) -> bool {
        self as u8 == other as u8
    }
}

/// The payload of a pong frame; take it in an `#[on_message]` handler to observe pongs.
///
/// ```
/// # use endpoint_runtime::Pong;
/// let pong = Pong(bytes::Bytes::from_static(b"t=1"));
/// assert_eq!(&pong.0[..], b"t=1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pong(pub Bytes);

/// A WebSocket close status code (RFC 6455 section 7.4), with the registered codes as
/// constants named after Jakarta's `CloseReason.CloseCodes`.
///
/// ```
/// # use endpoint_runtime::CloseCode;
/// assert_eq!(CloseCode::GOING_AWAY.as_u16(), 1001);
/// assert_eq!(CloseCode::from(4000).to_string(), "4000");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure (`NORMAL_CLOSURE`).
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going down or the browser left the page (`GOING_AWAY`).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error (`PROTOCOL_ERROR`).
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept (`CANNOT_ACCEPT`).
    pub const CANNOT_ACCEPT: CloseCode = CloseCode(1003);
    /// 1005: no status code was present in the close frame (`NO_STATUS_CODE`); never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection ended without a close frame (`CLOSED_ABNORMALLY`); never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: payload inconsistent with its type, e.g. invalid UTF-8 (`NOT_CONSISTENT`).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation, e.g. a slow consumer overflowing its queue (`VIOLATED_POLICY`).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: message too big (`TOO_BIG`).
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate (`NO_EXTENSION`).
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: unexpected condition on the server, e.g. a handler panicked (`UNEXPECTED_CONDITION`).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: service restart (`SERVICE_RESTART`).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (`TRY_AGAIN_LATER`).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1015: TLS handshake failure (`TLS_HANDSHAKE_FAILURE`); never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether a peer may put this code in a close frame (RFC 6455 7.4.1/7.4.2):
    /// 1000-1003, 1007-1011 (1012-1014 tolerated) and 3000-4999.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(value: u16) -> Self {
        CloseCode(value)
    }
}

impl From<CloseCode> for u16 {
    fn from(value: CloseCode) -> Self {
        value.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1000 => "NORMAL",
            1001 => "GOING_AWAY",
            1002 => "PROTOCOL_ERROR",
            1003 => "CANNOT_ACCEPT",
            1005 => "NO_STATUS",
            1006 => "ABNORMAL",
            1007 => "INVALID_PAYLOAD",
            1008 => "POLICY_VIOLATION",
            1009 => "TOO_BIG",
            1010 => "MANDATORY_EXTENSION",
            1011 => "INTERNAL_ERROR",
            1012 => "SERVICE_RESTART",
            1013 => "TRY_AGAIN_LATER",
            1015 => "TLS_HANDSHAKE",
            _ => return write!(f, "CloseCode({})", self.0),
        };
        write!(f, "{name}({})", self.0)
    }
}

/// Why a session closed: a code and a short reason, as in Jakarta's `CloseReason`.
///
/// `on_close` receives the code the peer sent (or the one the server sent, when the server
/// closed first); [`CloseCode::ABNORMAL`] (1006) when the connection ended without a close frame.
///
/// ```
/// # use endpoint_runtime::{CloseCode, CloseReason};
/// let reason = CloseReason::new(CloseCode::NORMAL, "bye");
/// assert_eq!(reason.code(), CloseCode::NORMAL);
/// assert_eq!(reason.reason(), "bye");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    code: CloseCode,
    reason: String,
}

impl CloseReason {
    /// A close reason; the text is cut to the 123 bytes a close frame can carry.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        // The most a close frame's payload holds besides the code (125 - 2).
        reason.truncate(floor_char_boundary(&reason, 123));
        CloseReason {
            code: code.into(),
            reason,
        }
    }

    /// A normal closure (1000) without a reason.
    pub fn normal() -> Self {
        CloseReason::new(CloseCode::NORMAL, "")
    }

    /// The close code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason phrase (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason)
        }
    }
}

/// Turns an incoming message into a typed payload: the counterpart of Jakarta's `Decoder`.
///
/// A type implementing `Decode` can be the payload parameter of an `#[on_message]` handler. When
/// decoding fails, the error reaches `on_error` as [`EndpointError::Decode`] and the session stays
/// open. Implemented for `String`, `Vec<u8>`, [`Bytes`], [`Pong`], [`Utf8Bytes`], the primitive
/// numbers and `bool` (parsed from text, like Java's boxed types), and `Json<T>`.
///
/// See the [module docs](self) for an example.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an `#[on_message]` payload",
    label = "not a payload type",
    note = "take `String`/`&str` (text), `Vec<u8>`/`Bytes`/`&[u8]` (binary), `Pong`, `Json<T>`, or implement `endpoint::Decode` for `{Self}`"
)]
pub trait Decode: Sized + Send + 'static {
    /// Which frames this type is decoded from; at most one handler per kind.
    const KIND: PayloadKind;

    /// Decodes a message of kind [`Self::KIND`].
    ///
    /// # Errors
    /// A [`DecodeError`] saying why the payload is not a valid `Self`.
    fn decode(message: Message) -> Result<Self, DecodeError>;
}

impl Decode for String {
    const KIND: PayloadKind = PayloadKind::Text;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message {
            Message::Text(t) => Ok(t.as_str().to_owned()),
            other => Err(DecodeError::wrong_kind(PayloadKind::Text, other.kind())),
        }
    }
}

impl Decode for Utf8Bytes {
    const KIND: PayloadKind = PayloadKind::Text;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message {
            Message::Text(t) => Ok(t),
            other => Err(DecodeError::wrong_kind(PayloadKind::Text, other.kind())),
        }
    }
}

impl Decode for Vec<u8> {
    const KIND: PayloadKind = PayloadKind::Binary;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message {
            Message::Binary(b) => Ok(b.into()),
            other => Err(DecodeError::wrong_kind(PayloadKind::Binary, other.kind())),
        }
    }
}

impl Decode for Bytes {
    const KIND: PayloadKind = PayloadKind::Binary;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message {
            Message::Binary(b) => Ok(b),
            other => Err(DecodeError::wrong_kind(PayloadKind::Binary, other.kind())),
        }
    }
}

impl Decode for Pong {
    const KIND: PayloadKind = PayloadKind::Pong;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message {
            Message::Pong(b) => Ok(Pong(b)),
            other => Err(DecodeError::wrong_kind(PayloadKind::Pong, other.kind())),
        }
    }
}

macro_rules! decode_from_str {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            const KIND: PayloadKind = PayloadKind::Text;
            fn decode(message: Message) -> Result<Self, DecodeError> {
                match message {
                    Message::Text(t) => t.as_str().trim().parse::<$t>().map_err(|e| {
                        DecodeError::new(format!(
                            "`{}` is not a valid {}: {e}",
                            crate::util::ellipsize(t.as_str(), 40),
                            stringify!($t)
                        ))
                    }),
                    other => Err(DecodeError::wrong_kind(PayloadKind::Text, other.kind())),
                }
            }
        }
    )*};
}
decode_from_str!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char
);

/// Turns a value into a message: the counterpart of Jakarta's `Encoder`.
///
/// Anything `Encode` can be passed to [`Session::send`](crate::Session::send) and returned from a
/// handler. Implemented for `String`, `&'static str`, `Vec<u8>`, [`Bytes`], [`Message`],
/// [`Utf8Bytes`], and `Json<T>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent as a WebSocket message",
    note = "send `String`, `&'static str`, `Vec<u8>`, `Bytes`, `Message`, `Json<T>`, or implement `endpoint::Encode` for `{Self}`"
)]
pub trait Encode {
    /// Encodes the value.
    ///
    /// # Errors
    /// [`EndpointError::Encode`] when the value cannot be represented.
    fn encode(self) -> Result<Message, EndpointError>;
}

impl Encode for Message {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(self)
    }
}
impl Encode for String {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::Text(self.into()))
    }
}
impl Encode for &'static str {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::Text(Utf8Bytes::from_static(self)))
    }
}
impl Encode for Utf8Bytes {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::Text(self))
    }
}
impl Encode for Vec<u8> {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::Binary(self.into()))
    }
}
impl Encode for Bytes {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::Binary(self))
    }
}

/// What a handler may return. `()` sends nothing; an [`Encode`] value is sent back to the peer;
/// `Option<T>` sends when `Some`; `Result<T, E>` sends `T`, or hands `E` to `on_error`.
#[diagnostic::on_unimplemented(
    message = "a handler cannot return `{Self}`",
    note = "return `()`, a sendable value (`String`, `Vec<u8>`, `Bytes`, `Message`, `Json<T>`, any `Encode`), `Option<_>` of one, or `Result<_, E>` where `E: Into<Box<dyn Error + Send + Sync>>`"
)]
pub trait IntoReply {
    /// The message to send back, if any.
    ///
    /// # Errors
    /// The handler's error, which the runtime passes to `on_error`.
    fn into_reply(self) -> Result<Option<Message>, EndpointError>;
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Option<Message>, EndpointError> {
        Ok(None)
    }
}

impl<T: Encode> IntoReply for T {
    fn into_reply(self) -> Result<Option<Message>, EndpointError> {
        self.encode().map(Some)
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Result<Option<Message>, EndpointError> {
        match self {
            Some(v) => v.into_reply(),
            None => Ok(None),
        }
    }
}

impl<T: IntoReply, E: Into<BoxError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Result<Option<Message>, EndpointError> {
        match self {
            Ok(v) => v.into_reply(),
            Err(e) => Err(EndpointError::from_handler(e.into())),
        }
    }
}
