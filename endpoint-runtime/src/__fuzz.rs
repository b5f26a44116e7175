//! Entry points for the cargo-fuzz targets in `fuzz/`. Not a public API.

use crate::configurator::HandshakeRequest;
pub use crate::handshake::{choose_subprotocol, is_valid_key};
use crate::session::Properties;

/// Validates an upgrade request: the `Sec-WebSocket-Accept` value and the client's
/// subprotocols, or the refusal (the accept value is empty for an HTTP/2 extended CONNECT,
/// which has no key).
pub fn validate_upgrade<B>(
    req: &http::Request<B>,
) -> Result<(String, Vec<String>), crate::Rejection> {
    crate::handshake::validate(req).map(|v| (v.accept.unwrap_or_default(), v.client_protocols))
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
pub const MAX_FRAME_HEADER: usize = crate::protocol::coding::MAX_HEADER;

/// The connection's RFC 6455 frame decoder (`frame::Decoder`) with fixed size limits.
#[derive(Debug)]
pub struct FrameDecoder {
    decoder: crate::protocol::frame::Decoder,
    limits: crate::protocol::frame::DecodeLimits,
    /// Payload bytes of the incomplete text frame at the start of the buffer already checked
    /// as UTF-8, kept between calls as the connection keeps it (`connection::io`): without
    /// it every call for a growing frame checks its payload from the start again.
    checked: usize,
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
    /// One frame's part of a message delivered in parts ([`FrameDecoder::parts`]).
    Part {
        /// The part (a text part holds whole characters).
        part: crate::Message,
        /// Whether it ends the message.
        last: bool,
    },
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
            decoder: crate::protocol::frame::Decoder::default(),
            limits: crate::protocol::frame::DecodeLimits::whole(frame_limit, message_limit),
            checked: 0,
        }
    }

    /// Delivers text and binary messages in parts (`Some(limit)`), as for an endpoint with
    /// partial or streaming handlers, instead of whole.
    pub fn parts(mut self, text: Option<usize>, binary: Option<usize>) -> Self {
        self.limits.parts = [text, binary];
        self
    }

    /// Decodes the frame at the start of `buf`, as the connection does; an error carries
    /// its close code (`EndpointError::close_code`). After `Incomplete`, the next call must
    /// present the same frame at the start of `buf` (with more bytes), as the connection does.
    pub fn decode(&mut self, buf: &[u8]) -> Result<FrameDecoded, crate::EndpointError> {
        use crate::protocol::frame::{Decoded, Inbound};
        Ok(
            match self
                .decoder
                .decode_checked(buf, self.limits, &mut self.checked, None)?
            {
                Decoded::Frame { consumed, inbound } => FrameDecoded::Frame {
                    consumed,
                    event: inbound.map(|inbound| match inbound {
                        Inbound::Message(m) => FrameEvent::Message(m),
                        Inbound::Ping(p) => FrameEvent::Ping(p),
                        Inbound::Close(c) => FrameEvent::Close(c),
                        Inbound::Part { part, last } => FrameEvent::Part { part, last },
                    }),
                },
                Decoded::Incomplete { need } => FrameDecoded::Incomplete { need },
            },
        )
    }
}

/// A connection's permessage-deflate inflater (`deflate::Decompressor`).
#[derive(Debug)]
pub struct Inflater(crate::protocol::deflate::Decompressor);

impl Inflater {
    /// With `context_takeover` (the client's), the window is kept across messages; without,
    /// each message is inflated afresh with the thread's state.
    pub fn new(context_takeover: bool) -> Self {
        Inflater(crate::protocol::deflate::Decompressor::new(
            &deflate_params(true, context_takeover, 15, 1),
        ))
    }

    /// Inflates one frame's payload of a compressed message, appending to `out`; `fin` ends
    /// the message, `max_output` bounds it. An error is the close code it ends the connection
    /// with (1009 over the bound, 1007 for data that is not deflate) and why.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        fin: bool,
        max_output: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), (crate::CloseCode, String)> {
        self.0
            .inflate(compressed, fin, max_output, out)
            .map_err(|e| (e.close_code(), e.to_string()))
    }

    /// Whether zlib state is held: with context takeover once a message was inflated,
    /// without only inside a fragmented message.
    pub fn holds_state(&self) -> bool {
        self.0.holds_state()
    }
}

/// A connection's permessage-deflate compressor (`deflate::Compressor`), to make valid input.
#[derive(Debug)]
pub struct Deflater(crate::protocol::deflate::Compressor);

impl Deflater {
    /// With `context_takeover` (the server's), messages may refer to earlier ones;
    /// `window_bits` 9 to 15 and `level` 0 to 9 (out-of-range values are brought in range).
    pub fn new(context_takeover: bool, window_bits: u8, level: u32) -> Self {
        Deflater(crate::protocol::deflate::Compressor::new(&deflate_params(
            !context_takeover,
            true,
            window_bits,
            level,
        )))
    }

    /// Appends one message's RFC 7692 payload (sync flush, `00 00 ff ff` taken off) to `out`.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.0.compress(payload, out);
    }

    /// Whether zlib state is held: only with context takeover, once a message was compressed.
    pub fn holds_state(&self) -> bool {
        self.0.holds_state()
    }
}

fn deflate_params(
    server_no_context_takeover: bool,
    client_context_takeover: bool,
    window_bits: u8,
    level: u32,
) -> crate::protocol::deflate::DeflateParams {
    crate::protocol::deflate::DeflateParams {
        server_no_context_takeover,
        client_no_context_takeover: !client_context_takeover,
        server_max_window_bits: window_bits.clamp(9, 15),
        client_max_window_bits: 15,
        level: level.min(9) as u8,
        min_size: 0,
    }
}
