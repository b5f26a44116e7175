//! The WebSocket framing of RFC 6455, server side: a decoder that turns client bytes into
//! messages, and the encoder of server frames.
//!
//! The decoder owns no read buffer. It parses whatever slice the connection hands it (the
//! thread's scratch buffer, or the bytes a connection kept of a partial frame) and copies each
//! payload once, unmasking it on the way, into the message's own allocation. Its state is one
//! pointer, set only while a fragmented message is being assembled. That is what lets an idle
//! connection cost no buffer at all (see `ws.rs`).
//!
//! Every violation is reported with the close code the contract gives it: 1002 for framing
//! errors, 1007 for invalid UTF-8, 1009 for a frame or message over the limits, decided from the
//! header alone, before any payload is awaited or allocated.

use bytes::{Bytes, BytesMut};

use super::coding::{OpCode, MAX_HEADER};
use super::deflate::{Decompressor, InflateError};
use crate::error::EndpointError;
use crate::message::{CloseCode, CloseReason, Message, Utf8Bytes};

/// What one complete frame from the peer amounts to.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A complete text, binary or pong message.
    Message(Message),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(Bytes),
    /// The peer's close frame, or the close the server answers a malformed one with (1002 for an
    /// invalid code or a 1-byte payload, 1007 for a reason that is not UTF-8).
    Close(Option<CloseReason>),
    /// One frame's part of a text or binary message of a kind delivered in parts
    /// ([`DecodeLimits::parts`]): a text part holds whole characters only.
    Part { part: Message, last: bool },
}

/// The result of looking at the start of a buffer.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A frame was consumed; `None` when it only continued a fragmented message.
    Frame {
        consumed: usize,
        inbound: Option<Inbound>,
    },
    /// The frame is not complete: `need` bytes from the start of the buffer make it whole.
    Incomplete { need: usize },
}

/// Size limits the decoder enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeLimits {
    /// Largest frame payload.
    pub(crate) frame: usize,
    /// Largest message (all fragments together).
    pub(crate) message: usize,
    /// Text and binary: `Some(max)` delivers messages of that kind in parts, one per frame
    /// ([`Inbound::Part`]), never assembled, `max` bounding the whole message; `None`, whole.
    pub(crate) parts: [Option<usize>; 2],
    /// The frames come from a server (this is a client): they must not be masked (RFC 6455
    /// 5.1). From a client they must be.
    pub(crate) from_server: bool,
}

impl DecodeLimits {
    /// Limits for whole messages only.
    pub(crate) const fn whole(frame: usize, message: usize) -> DecodeLimits {
        DecodeLimits {
            frame,
            message,
            parts: [None, None],
            from_server: false,
        }
    }

    fn parts_of(&self, opcode: OpCode) -> Option<usize> {
        match opcode {
            OpCode::Text => self.parts[0],
            OpCode::Binary => self.parts[1],
            _ => None,
        }
    }
}

/// A fragmented message being assembled.
#[derive(Debug)]
struct Fragments {
    text: bool,
    /// permessage-deflate: `data` is what the fragments inflated to.
    compressed: bool,
    data: BytesMut,
    /// Length of the prefix already known to be valid UTF-8 (text only).
    checked: usize,
    /// Delivered in parts (`DecodeLimits::parts`): `data` holds only the unfinished character
    /// a text part could not end with (at most 3 bytes), `delivered` counts the message so far.
    parts: Option<PartsState>,
}

/// The progress of a message delivered in parts.
#[derive(Debug, Clone, Copy)]
struct PartsState {
    /// Bytes of the message so far (inflated, for a compressed one).
    delivered: u64,
    /// The message's limit.
    max: usize,
    /// The rest of the message is checked and dropped, not delivered
    /// ([`Decoder::discard_message`]).
    discard: bool,
    /// A frame being delivered in pieces, as its payload arrives: what is left of it.
    rest: Option<FrameRest>,
}

/// The part of a frame's payload still to come, when it is delivered in pieces.
#[derive(Debug, Clone, Copy)]
struct FrameRest {
    remaining: u64,
    /// The mask, turned to start at the next payload byte.
    mask: [u8; 4],
    fin: bool,
}

/// A frame of an uncompressed message in parts that does not fit in what was read is
/// delivered in pieces of at least this many bytes (or what is left of it) as they arrive, so
/// no part waits for, or holds, a whole large frame.
const PIECE_MIN: usize = 16 * 1024;

/// `mask` turned by `n` payload bytes.
fn turn(mask: [u8; 4], n: usize) -> [u8; 4] {
    let k = n % 4;
    [
        mask[k],
        mask[(k + 1) % 4],
        mask[(k + 2) % 4],
        mask[(k + 3) % 4],
    ]
}

/// The frame decoder (a server's, or with [`DecodeLimits::from_server`] a client's); see the
/// module docs.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    fragments: Option<Box<Fragments>>,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    /// RSV1 with permessage-deflate agreed: the message's payload is compressed.
    compressed: bool,
    opcode: OpCode,
    mask: [u8; 4],
    len: usize,
    header_len: usize,
}

fn protocol(what: &str) -> EndpointError {
    EndpointError::Protocol(what.to_owned())
}

impl Decoder {
    /// Looks at the frame at the start of `buf`, checking a text frame's UTF-8 only once it is
    /// complete (the tests' shorthand; the connection and the fuzz target use
    /// [`Decoder::decode_checked`], which keeps the progress between calls).
    #[cfg(test)]
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        limits: DecodeLimits,
    ) -> Result<Decoded, EndpointError> {
        self.decode_checked(buf, limits, &mut 0, None)
    }

    /// [`Decoder::decode`], failing fast on text: while a text frame is incomplete, the part of
    /// its payload that has arrived is checked as UTF-8, from `checked` (payload bytes of the
    /// frame at the start of `buf` already known valid, kept by the caller between calls for
    /// the same frame, 0 for a new one), so a broken text fails (1007) at the bytes that break
    /// it rather than once the whole frame is in, and each byte is checked once.
    ///
    /// With `inflate` (permessage-deflate agreed), RSV1 on a message's first frame means its
    /// payload is compressed: each frame is inflated as it completes, never past the message
    /// limit (1009), and a text's UTF-8 is checked on what it inflates to.
    pub(crate) fn decode_checked(
        &mut self,
        buf: &[u8],
        limits: DecodeLimits,
        checked: &mut usize,
        inflate: Option<&mut Decompressor>,
    ) -> Result<Decoded, EndpointError> {
        if let Some(rest) = self.frame_rest() {
            // The payload of a frame being delivered in pieces continues here.
            *checked = 0;
            let n = buf
                .len()
                .min(usize::try_from(rest.remaining).unwrap_or(usize::MAX));
            let inbound = self.piece(&buf[..n], rest)?;
            return Ok(Decoded::Frame {
                consumed: n,
                inbound,
            });
        }
        let Some(h) = self.header(buf, limits, inflate.is_some())? else {
            // Enough for any header: a smaller `need` would only cost another round.
            return Ok(Decoded::Incomplete {
                need: buf.len().max(2) + 1,
            });
        };
        let end = h.header_len + h.len;
        if buf.len() < end {
            if self.in_pieces(&h, limits) {
                let have = buf.len() - h.header_len;
                if have < PIECE_MIN {
                    return Ok(Decoded::Incomplete {
                        need: end.min(h.header_len + PIECE_MIN),
                    });
                }
                *checked = 0;
                let max = limits.parts_of(h.opcode);
                let inbound = self.first_piece(&h, &buf[h.header_len..], max)?;
                return Ok(Decoded::Frame {
                    consumed: buf.len(),
                    inbound,
                });
            }
            self.check_partial_text(&h, &buf[h.header_len..], checked)?;
            return Ok(Decoded::Incomplete { need: end });
        }
        *checked = 0;
        let payload = &buf[h.header_len..end];
        let inbound = self.frame(&h, payload, limits, inflate)?;
        Ok(Decoded::Frame {
            consumed: end,
            inbound,
        })
    }

    /// What is left of a frame being delivered in pieces.
    fn frame_rest(&self) -> Option<FrameRest> {
        self.fragments.as_ref()?.parts?.rest
    }

    /// Whether the frame `h` heads (checked, incomplete) is delivered in pieces: an
    /// uncompressed frame of a message in parts.
    fn in_pieces(&self, h: &Header, limits: DecodeLimits) -> bool {
        match (h.opcode, &self.fragments) {
            (OpCode::Text | OpCode::Binary, None) => {
                !h.compressed && limits.parts_of(h.opcode).is_some()
            }
            (OpCode::Continuation, Some(f)) => f.parts.is_some() && !f.compressed,
            _ => false,
        }
    }

    /// The first piece of a frame delivered in pieces: the payload that arrived with its
    /// header (`max`: the message's limit, for a message's first frame).
    fn first_piece(
        &mut self,
        h: &Header,
        masked: &[u8],
        max: Option<usize>,
    ) -> Result<Option<Inbound>, EndpointError> {
        let (text, mut state, data) = match self.fragments.take() {
            Some(f) => (f.text, f.parts.expect("in_pieces"), f.data),
            None => {
                let state = PartsState {
                    delivered: 0,
                    max: max.expect("in_pieces"),
                    discard: false,
                    rest: None,
                };
                (h.opcode == OpCode::Text, state, BytesMut::new())
            }
        };
        state.rest = Some(FrameRest {
            remaining: h.len as u64,
            mask: h.mask,
            fin: h.fin,
        });
        self.fragments = Some(Box::new(Fragments {
            text,
            compressed: false,
            data,
            checked: 0,
            parts: Some(state),
        }));
        self.piece(masked, state.rest.expect("just set"))
    }

    /// The next `masked` bytes of a frame delivered in pieces.
    fn piece(&mut self, masked: &[u8], rest: FrameRest) -> Result<Option<Inbound>, EndpointError> {
        let f = self
            .fragments
            .take()
            .expect("a frame in pieces has its message");
        let mut state = f.parts.expect("delivered in parts");
        let remaining = rest.remaining - masked.len() as u64;
        state.rest = (remaining > 0).then(|| FrameRest {
            remaining,
            mask: turn(rest.mask, masked.len()),
            fin: rest.fin,
        });
        let mut data = f.data;
        let carried = data.len();
        data.extend_from_slice(masked);
        unmask_in_place(&mut data[carried..], rest.mask);
        state.delivered += masked.len() as u64;
        let last = rest.fin && remaining == 0;
        self.deliver(f.text, false, state, data, last)
    }

    /// Whether a fragmented message is open: after a part, whether more of its message is to
    /// come (so `false` right after its last part).
    pub(crate) fn in_message(&self) -> bool {
        self.fragments.is_some()
    }

    /// The rest of the message being delivered in parts is not wanted (a stream's hook
    /// returned before its end): its frames are still checked (limits, UTF-8, inflation), then
    /// dropped. Nothing when no such message is open.
    pub(crate) fn discard_message(&mut self) {
        if let Some(parts) = self.fragments.as_mut().and_then(|f| f.parts.as_mut()) {
            parts.discard = true;
        }
    }

    /// Parses and checks a header; `None` when `buf` does not hold all of it yet.
    fn header(
        &self,
        buf: &[u8],
        limits: DecodeLimits,
        deflate: bool,
    ) -> Result<Option<Header>, EndpointError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let compressed = deflate && b0 & 0x70 == RSV1;
        if b0 & 0x70 != 0 && !compressed {
            return Err(protocol("reserved bits set without a negotiated extension"));
        }
        let Some(opcode) = OpCode::from_u8(b0 & 0x0F) else {
            let bits = b0 & 0x0F;
            return Err(EndpointError::Protocol(format!("unknown opcode {bits}")));
        };
        let control = opcode.is_control();
        if compressed && !matches!(opcode, OpCode::Text | OpCode::Binary) {
            // RFC 7692 6.1: RSV1 on the first frame of a message only, never on a control frame.
            return Err(protocol("RSV1 set on a control or continuation frame"));
        }
        let masked = b1 & 0x80 != 0;
        if masked == limits.from_server {
            return Err(protocol(if masked {
                "server frame masked"
            } else {
                "client frame not masked"
            }));
        }
        let (len, at) = match b1 & 0x7F {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(protocol("payload length with the high bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if control {
            if !fin {
                return Err(protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(protocol("control frame payload over 125 bytes"));
            }
        } else {
            // Sizes are decided here, from the header, before any payload is awaited (for a
            // compressed message the frame limit is on the wire's bytes, the message limit on
            // what they inflate to, checked while inflating).
            let (assembled, max) = match &self.fragments {
                Some(f) => match f.parts {
                    Some(p) if !f.compressed => (p.delivered, p.max),
                    Some(p) => (0, p.max),
                    None if !f.compressed => (f.data.len() as u64, limits.message),
                    None => (0, limits.message),
                },
                None => (0, limits.parts_of(opcode).unwrap_or(limits.message)),
            };
            if len > limits.frame as u64 {
                return Err(too_big(len, limits.frame));
            }
            if assembled + len > max as u64 {
                return Err(too_big(assembled + len, max));
            }
            match (opcode, &self.fragments) {
                (OpCode::Continuation, None) => {
                    return Err(protocol("continuation frame without a message to continue"))
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(protocol("new message inside a fragmented message"))
                }
                _ => {}
            }
        }
        // A server's frames carry no mask: unmasking with zeros changes nothing.
        let (mask, header_len) = if masked {
            let Some(mask) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            (mask.try_into().expect("4 bytes"), at + 4)
        } else {
            ([0; 4], at)
        };
        Ok(Some(Header {
            fin,
            compressed,
            opcode,
            mask,
            // Bounded by the limits (data) or 125 (control) above.
            len: len as usize,
            header_len,
        }))
    }

    /// Checks the arrived part of an incomplete text frame's payload (`masked`, from its start)
    /// past the first `checked` bytes; raises `checked` to the end of its last whole character.
    fn check_partial_text(
        &self,
        h: &Header,
        masked: &[u8],
        checked: &mut usize,
    ) -> Result<(), EndpointError> {
        // A continuation of a text message starts with what its last fragment left unfinished.
        if h.compressed || self.fragments.as_ref().is_some_and(|f| f.compressed) {
            // Checked on what it inflates to, frame by frame.
            return Ok(());
        }
        let tail: &[u8] = match (h.opcode, &self.fragments) {
            (OpCode::Text, _) => &[],
            (OpCode::Continuation, Some(f)) if f.text && *checked == 0 => &f.data[f.checked..],
            (OpCode::Continuation, Some(f)) if f.text => &[],
            _ => return Ok(()),
        };
        if masked.len() <= *checked {
            return Ok(());
        }
        const CHUNK: usize = 4096;
        // The unfinished character carried from one chunk to the next (at most 3 bytes).
        let mut buf = [0u8; CHUNK + 4];
        let mut carry = tail.len().min(3);
        buf[..carry].copy_from_slice(&tail[tail.len() - carry..]);
        let mut at = *checked;
        while at < masked.len() {
            let n = (masked.len() - at).min(CHUNK);
            for (i, (d, s)) in buf[carry..carry + n]
                .iter_mut()
                .zip(&masked[at..at + n])
                .enumerate()
            {
                *d = s ^ h.mask[(at + i) & 3];
            }
            at += n;
            let len = carry + n;
            carry = match std::str::from_utf8(&buf[..len]) {
                Ok(_) => 0,
                Err(e) if e.error_len().is_none() => len - e.valid_up_to(),
                Err(_) => return Err(EndpointError::InvalidUtf8),
            };
            buf.copy_within(len - carry..len, 0);
        }
        // Whole characters checked: the carry is checked again next time, with what follows.
        // A carry that began in the previous fragment's tail stays with the tail.
        *checked = masked.len().saturating_sub(carry).max(*checked);
        Ok(())
    }

    /// Turns a complete, checked frame into what it means.
    fn frame(
        &mut self,
        h: &Header,
        masked: &[u8],
        limits: DecodeLimits,
        inflate: Option<&mut Decompressor>,
    ) -> Result<Option<Inbound>, EndpointError> {
        let compressed = h.compressed || self.fragments.as_ref().is_some_and(|f| f.compressed);
        match h.opcode {
            OpCode::Text | OpCode::Binary if limits.parts_of(h.opcode).is_some() => {
                let max = limits.parts_of(h.opcode).expect("just checked");
                let state = PartsState {
                    delivered: 0,
                    max,
                    discard: false,
                    rest: None,
                };
                self.part(
                    h,
                    masked,
                    h.opcode == OpCode::Text,
                    compressed,
                    state,
                    BytesMut::new(),
                    inflate,
                )
            }
            OpCode::Continuation if self.fragments.as_ref().is_some_and(|f| f.parts.is_some()) => {
                let f = self.fragments.take().expect("checked in the header");
                let state = f.parts.expect("just checked");
                self.part(h, masked, f.text, f.compressed, state, f.data, inflate)
            }
            OpCode::Text | OpCode::Binary if compressed => {
                let inflate = inflate.expect("RSV1 accepted only with an inflater");
                let mut data = Vec::new();
                inflate_frame(inflate, masked, h, limits.message, &mut data)?;
                if h.fin {
                    return Ok(Some(Inbound::Message(message(
                        h.opcode == OpCode::Text,
                        Bytes::from(data),
                    )?)));
                }
                let mut fragments = Box::new(Fragments {
                    text: h.opcode == OpCode::Text,
                    compressed: true,
                    data: BytesMut::from(&data[..]),
                    checked: 0,
                    parts: None,
                });
                fragments.check_utf8()?;
                self.fragments = Some(fragments);
                Ok(None)
            }
            OpCode::Text | OpCode::Binary if h.fin => {
                let data = unmask(masked, h.mask);
                Ok(Some(Inbound::Message(message(
                    h.opcode == OpCode::Text,
                    data.freeze(),
                )?)))
            }
            OpCode::Text | OpCode::Binary => {
                let mut fragments = Box::new(Fragments {
                    text: h.opcode == OpCode::Text,
                    compressed: false,
                    data: unmask(masked, h.mask),
                    checked: 0,
                    parts: None,
                });
                fragments.check_utf8()?;
                self.fragments = Some(fragments);
                Ok(None)
            }
            OpCode::Continuation => {
                let f = self.fragments.as_mut().expect("checked in the header");
                if f.compressed {
                    let inflate = inflate.expect("a compressed message has an inflater");
                    let room = limits.message.saturating_sub(f.data.len());
                    let mut data = Vec::new();
                    inflate_frame(inflate, masked, h, room, &mut data)?;
                    f.data.extend_from_slice(&data);
                } else {
                    let at = f.data.len();
                    f.data.extend_from_slice(masked);
                    unmask_in_place(&mut f.data[at..], h.mask);
                }
                f.check_utf8()?;
                if !h.fin {
                    return Ok(None);
                }
                let f = self.fragments.take().expect("present");
                Ok(Some(Inbound::Message(message(f.text, f.data.freeze())?)))
            }
            OpCode::Ping => Ok(Some(Inbound::Ping(unmask(masked, h.mask).freeze()))),
            OpCode::Pong => Ok(Some(Inbound::Message(Message::Pong(
                unmask(masked, h.mask).freeze(),
            )))),
            OpCode::Close => Ok(Some(Inbound::Close(close_payload(&unmask(masked, h.mask))))),
        }
    }
}

impl Decoder {
    /// One frame of a message delivered in parts: `carry` is what the previous part of a text
    /// left unfinished (the start of a character cut by the frame boundary), put in front of
    /// this frame's payload; a text part ends at its last whole character and carries the rest,
    /// so every part is valid UTF-8 by itself (a message that ends inside a character is 1007).
    #[allow(clippy::too_many_arguments)]
    fn part(
        &mut self,
        h: &Header,
        masked: &[u8],
        text: bool,
        compressed: bool,
        mut state: PartsState,
        mut data: BytesMut,
        inflate: Option<&mut Decompressor>,
    ) -> Result<Option<Inbound>, EndpointError> {
        let carried = data.len();
        if compressed {
            let inflate = inflate.expect("RSV1 accepted only with an inflater");
            // The decompressor counts the whole message against `max`.
            let mut out = Vec::new();
            inflate_frame(inflate, masked, h, state.max, &mut out)?;
            data.extend_from_slice(&out);
        } else {
            data.extend_from_slice(masked);
            unmask_in_place(&mut data[carried..], h.mask);
        }
        state.delivered += (data.len() - carried) as u64;
        self.deliver(text, compressed, state, data, h.fin)
    }

    /// Hands out a part (`last`: the message's last), keeping what a text part cannot end
    /// with (an unfinished character) for the next one.
    fn deliver(
        &mut self,
        text: bool,
        compressed: bool,
        state: PartsState,
        mut data: BytesMut,
        last: bool,
    ) -> Result<Option<Inbound>, EndpointError> {
        let unfinished = if text {
            match std::str::from_utf8(&data) {
                Ok(_) => 0,
                Err(e) if e.error_len().is_none() && !last => data.len() - e.valid_up_to(),
                Err(_) => return Err(EndpointError::InvalidUtf8),
            }
        } else {
            0
        };
        let rest = data.split_off(data.len() - unfinished);
        let discard = state.discard;
        if !last {
            self.fragments = Some(Box::new(Fragments {
                text,
                compressed,
                data: rest,
                checked: 0,
                parts: Some(state),
            }));
        }
        if discard {
            return Ok(None);
        }
        let part = if text {
            Message::Text(self::text(data.freeze())?)
        } else {
            Message::Binary(data.freeze())
        };
        Ok(Some(Inbound::Part { part, last }))
    }
}

/// A complete text or binary message.
fn message(text: bool, data: Bytes) -> Result<Message, EndpointError> {
    Ok(if text {
        Message::Text(self::text(data)?)
    } else {
        Message::Binary(data)
    })
}

thread_local! {
    /// Where a compressed frame's payload is unmasked before it is inflated.
    static UNMASKED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Unmasks a compressed frame's payload and inflates it into `out`, at most `max` bytes.
fn inflate_frame(
    inflate: &mut Decompressor,
    masked: &[u8],
    h: &Header,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), EndpointError> {
    UNMASKED.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        buf.extend_from_slice(masked);
        unmask_in_place(&mut buf, h.mask);
        let result = inflate.inflate(&buf, h.fin, max, out);
        if buf.capacity() > 1 << 20 {
            // A large frame's buffer is not kept by the thread.
            *buf = Vec::new();
        }
        result.map_err(|e| match e {
            InflateError::TooBig { size, max } => EndpointError::TooBig { size, max },
            InflateError::Invalid(why) => EndpointError::Compression(why),
        })
    })
}

impl Fragments {
    /// Checks the UTF-8 of what arrived since the last check, so a broken text fails at the
    /// fragment that breaks it. A character cut at the end waits for the next fragment.
    fn check_utf8(&mut self) -> Result<(), EndpointError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
            Err(_) => return Err(EndpointError::InvalidUtf8),
        }
        Ok(())
    }
}

fn too_big(size: u64, max: usize) -> EndpointError {
    EndpointError::TooBig {
        size: usize::try_from(size).unwrap_or(usize::MAX),
        max,
    }
}

fn text(data: Bytes) -> Result<Utf8Bytes, EndpointError> {
    Utf8Bytes::try_from(data).map_err(|_| EndpointError::InvalidUtf8)
}

/// Reads a close frame's payload; a malformed one is answered with the code it deserves.
fn close_payload(payload: &[u8]) -> Option<CloseReason> {
    let (code, reason) = match payload {
        [] => return None,
        [_] => {
            return Some(CloseReason::new(
                CloseCode::PROTOCOL_ERROR,
                "1-byte close payload",
            ))
        }
        [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
    };
    if !CloseCode(code).is_sendable() {
        return Some(CloseReason::new(
            CloseCode::PROTOCOL_ERROR,
            format!("invalid close code {code}"),
        ));
    }
    match std::str::from_utf8(reason) {
        Ok(reason) => Some(CloseReason::new(code, reason)),
        Err(_) => Some(CloseReason::new(
            CloseCode::INVALID_PAYLOAD,
            "close reason is not UTF-8",
        )),
    }
}

/// Copies `src` into a new buffer and unmasks it there. A copy, then a pass over the copy (still
/// in the cache): a buffer written as it is unmasked would have to be zeroed first (`calloc`,
/// without `unsafe`), which cost more than the copy (`bench/profile endpoint callgrind 3`: one
/// zeroed allocation per message, 183 instructions of 3,253 per 20-byte echo).
fn unmask(src: &[u8], mask: [u8; 4]) -> BytesMut {
    let mut out = BytesMut::from(src);
    unmask_in_place(&mut out, mask);
    out
}

/// The mask repeated over eight bytes (chunks start at multiples of 8, so of 4).
fn wide_mask(mask: [u8; 4]) -> u64 {
    u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ])
}

/// XORs `buf` with the mask, eight bytes at a time.
pub(crate) fn unmask_in_place(buf: &mut [u8], mask: [u8; 4]) {
    let wide = wide_mask(mask);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// The first header bit of permessage-deflate: set on a compressed message's first frame.
pub(crate) const RSV1: u8 = 0x40;

/// Writes the header of an unmasked server frame of one frame per message, compressed
/// (RSV1) or not; returns its length.
pub(crate) fn encode_header_for(
    out: &mut [u8; MAX_HEADER],
    opcode: OpCode,
    compressed: bool,
    len: usize,
) -> usize {
    encode_header_fin(out, opcode, compressed, true, len)
}

/// [`encode_header_for`] for any frame of a message: `fin` clear on all but its last.
pub(crate) fn encode_header_fin(
    out: &mut [u8; MAX_HEADER],
    opcode: OpCode,
    compressed: bool,
    fin: bool,
    len: usize,
) -> usize {
    let rsv1 = if compressed { RSV1 } else { 0 };
    let fin = if fin { 0x80 } else { 0 };
    encode_header_bits(out, fin | rsv1 | opcode as u8, len)
}

/// Writes a header whose first byte is `b0` (FIN, RSV bits, opcode).
fn encode_header_bits(out: &mut [u8; MAX_HEADER], b0: u8, len: usize) -> usize {
    out[0] = b0;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// Appends one unmasked frame, header and payload, to `out`: every server frame that is
/// copied (rather than written from its message, see `connection::io`) is made here.
pub(crate) fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    encode_frame_for(out, opcode, false, payload);
}

/// [`encode_frame`], compressed (RSV1: `payload` is deflated) or not.
pub(crate) fn encode_frame_for(
    out: &mut Vec<u8>,
    opcode: OpCode,
    compressed: bool,
    payload: &[u8],
) {
    let mut head = [0; MAX_HEADER];
    let n = encode_header_for(&mut head, opcode, compressed, payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// Appends one frame of a message sent in parts (never compressed): `opcode` is the message's
/// on its first frame and `Continuation` after, `fin` set on the last.
pub(crate) fn encode_part(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
    let mut head = [0; MAX_HEADER];
    let n = encode_header_fin(&mut head, opcode, false, fin, payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// What a connection writes: a message, which it frames (and compresses, when agreed), or a
/// data message already compressed for it (a broadcast's payload, compressed once and shared by
/// the recipients that agreed the same settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Message(Message),
    Deflated {
        opcode: OpCode,
        /// The payload on the wire (compressed, without its deflate tail).
        payload: Bytes,
    },
    /// One frame of a message sent in parts by a message writer (`session::writer`), not its
    /// last: the message's opcode on its first frame, `Continuation` after. Parts go
    /// uncompressed (RFC 7692 lets each message choose, and a part cannot wait for the rest).
    Part {
        opcode: OpCode,
        payload: Bytes,
    },
    /// The last frame of a message sent in parts (FIN). Two variants rather than a `bool`:
    /// an `Outgoing` stays the size of a `Message`, and so do the futures that hold one.
    LastPart {
        opcode: OpCode,
        payload: Bytes,
    },
}

impl Outgoing {
    /// A frame of a message in parts.
    pub(crate) fn part(opcode: OpCode, payload: Bytes, last: bool) -> Outgoing {
        if last {
            Outgoing::LastPart { opcode, payload }
        } else {
            Outgoing::Part { opcode, payload }
        }
    }
}

impl Outgoing {
    /// The bytes it holds, which the outbound queue counts against its bound.
    pub(crate) fn len(&self) -> usize {
        match self {
            Outgoing::Message(m) => m.len(),
            Outgoing::Deflated { payload, .. }
            | Outgoing::Part { payload, .. }
            | Outgoing::LastPart { payload, .. } => payload.len(),
        }
    }
}

impl From<Message> for Outgoing {
    fn from(message: Message) -> Self {
        Outgoing::Message(message)
    }
}

/// The opcode and payload of the frame a message is sent as.
pub(crate) fn opcode_and_payload(msg: Message) -> (OpCode, Bytes) {
    match msg {
        Message::Text(t) => (OpCode::Text, t.into()),
        Message::Binary(b) => (OpCode::Binary, b),
        Message::Ping(b) => (OpCode::Ping, b),
        Message::Pong(b) => (OpCode::Pong, b),
    }
}

/// The opcode and payload of a message, borrowed (for frames encoded once for many sockets).
pub(crate) fn opcode_and_bytes(msg: &Message) -> (OpCode, &[u8]) {
    match msg {
        Message::Text(t) => (OpCode::Text, t.as_bytes()),
        Message::Binary(b) => (OpCode::Binary, b),
        Message::Ping(b) => (OpCode::Ping, b),
        Message::Pong(b) => (OpCode::Pong, b),
    }
}

/// Appends a close frame (code and reason; empty for `None` or 1005) to `out`, masked with
/// `mask` when there is one (a client's).
pub(crate) fn encode_close(out: &mut Vec<u8>, reason: Option<&CloseReason>, mask: Option<[u8; 4]>) {
    let reason = reason.filter(|r| r.code() != CloseCode::NO_STATUS);
    let mut payload = [0; 125];
    let len = match reason {
        None => 0,
        Some(r) => {
            payload[..2].copy_from_slice(&r.code().as_u16().to_be_bytes());
            // `CloseReason::new` keeps reasons within the 123 bytes a close frame has room for.
            let text = r.reason().as_bytes();
            payload[2..2 + text.len()].copy_from_slice(text);
            2 + text.len()
        }
    };
    match mask {
        None => encode_frame(out, OpCode::Close, &payload[..len]),
        Some(mask) => encode_masked(out, OpCode::Close, false, true, &payload[..len], mask),
    }
}

/// Appends one masked frame (a client's, RFC 6455 5.3): the header with the mask bit and
/// `mask`, then the payload XORed with it. `mask` must be fresh for every frame and
/// unpredictable (`client::mask`).
pub(crate) fn encode_masked(
    out: &mut Vec<u8>,
    opcode: OpCode,
    compressed: bool,
    fin: bool,
    payload: &[u8],
    mask: [u8; 4],
) {
    let mut head = [0; MAX_HEADER];
    let n = encode_header_fin(&mut head, opcode, compressed, fin, payload.len());
    head[1] |= 0x80;
    out.reserve(n + 4 + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask_in_place(&mut out[start..], mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits::whole(1 << 20, 1 << 20);

    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(u8::from(fin) << 7) | opcode as u8];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else if payload.len() <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        let start = out.len();
        out.extend_from_slice(payload);
        unmask_in_place(&mut out[start..], mask);
        out
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Inbound>, EndpointError> {
        let mut d = Decoder::default();
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            match d.decode(&bytes[at..], LIMITS)? {
                Decoded::Frame { consumed, inbound } => {
                    at += consumed;
                    out.extend(inbound);
                }
                Decoded::Incomplete { need } => panic!("incomplete, need {need}"),
            }
        }
        Ok(out)
    }

    #[test]
    fn unmask_matches_the_bytewise_definition() {
        let mask = [0xde, 0xad, 0xbe, 0xef];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            unmask_in_place(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "len {len}");
        }
    }

    #[test]
    fn every_length_form_round_trips() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let got = decode_all(&client_frame(true, OpCode::Binary, &payload)).unwrap();
            match &got[..] {
                [Inbound::Message(Message::Binary(b))] => assert_eq!(&b[..], &payload[..]),
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete_with_a_growing_need() {
        let frame = client_frame(true, OpCode::Text, "héllo wörld".as_bytes());
        for cut in 0..frame.len() {
            match Decoder::default().decode(&frame[..cut], LIMITS).unwrap() {
                Decoded::Incomplete { need } => assert!(need > cut && need <= frame.len() + 3),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn fragments_are_assembled_and_controls_may_interleave() {
        let mut bytes = client_frame(false, OpCode::Text, "a€".as_bytes()[..2].as_ref());
        bytes.extend(client_frame(true, OpCode::Ping, b"p"));
        bytes.extend(client_frame(
            true,
            OpCode::Continuation,
            &"a€".as_bytes()[2..],
        ));
        let got = decode_all(&bytes).unwrap();
        assert!(matches!(&got[0], Inbound::Ping(p) if &p[..] == b"p"));
        assert!(matches!(&got[1], Inbound::Message(Message::Text(t)) if t.as_str() == "a€"));
    }

    #[test]
    fn limits_are_decided_from_the_header() {
        let limits = DecodeLimits::whole(100, 150);
        let mut d = Decoder::default();
        // Only the header of a 101-byte frame: refused without its payload.
        let frame = client_frame(true, OpCode::Binary, &[0; 101]);
        assert!(matches!(
            d.decode(&frame[..8], limits),
            Err(EndpointError::TooBig {
                size: 101,
                max: 100
            })
        ));
        // Two fragments of 100 exceed the message limit at the second header.
        let mut d = Decoder::default();
        let first = client_frame(false, OpCode::Binary, &[0; 100]);
        assert!(matches!(
            d.decode(&first, limits),
            Ok(Decoded::Frame { inbound: None, .. })
        ));
        let second = client_frame(true, OpCode::Continuation, &[0; 100]);
        assert!(matches!(
            d.decode(&second[..4], limits),
            Err(EndpointError::TooBig {
                size: 200,
                max: 150
            })
        ));
    }

    /// Bytes of a frame arriving a few at a time: UTF-8 is checked as they come, each byte once,
    /// and a bad one fails before the frame is complete, also across a fragment boundary.
    #[test]
    fn text_fails_fast_before_its_frame_is_complete() {
        let mut payload = "héllo ".repeat(2000).into_bytes();
        let bad_at = payload.len();
        payload.extend_from_slice(&[0xff]);
        payload.extend(b"rest of a long frame ".repeat(100));
        let frame = client_frame(true, OpCode::Text, &payload);
        let mut d = Decoder::default();
        let mut checked = 0;
        let mut failed_at = None;
        for cut in (3..frame.len()).step_by(7) {
            match d.decode_checked(&frame[..cut], LIMITS, &mut checked, None) {
                Ok(Decoded::Incomplete { .. }) => assert!(checked <= bad_at),
                Err(EndpointError::InvalidUtf8) => {
                    failed_at = Some(cut);
                    break;
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let failed_at = failed_at.expect("the bad byte is found");
        // Within one step (7 bytes) of the bad byte's arrival (after a 4-byte header and mask),
        // long before the frame's 2,100 bytes that follow it.
        assert!(
            failed_at > bad_at && failed_at <= bad_at + 8 + 7,
            "found at {failed_at}, the bad byte at {bad_at} of {}",
            frame.len()
        );
        // Valid text in many pieces: accepted, progress never past what arrived.
        let good = client_frame(true, OpCode::Text, "a€b".repeat(3000).as_bytes());
        let (mut d, mut checked) = (Decoder::default(), 0);
        for cut in 2..good.len() {
            assert!(matches!(
                d.decode_checked(&good[..cut], LIMITS, &mut checked, None),
                Ok(Decoded::Incomplete { .. })
            ));
            assert!(checked <= cut);
        }
        assert!(matches!(
            d.decode_checked(&good, LIMITS, &mut checked, None),
            Ok(Decoded::Frame { .. })
        ));
        // A character cut between two fragments, then a byte that cannot continue it.
        let mut d = Decoder::default();
        let first = client_frame(false, OpCode::Text, &"x€".as_bytes()[..2]);
        assert!(matches!(
            d.decode(&first, LIMITS),
            Ok(Decoded::Frame { .. })
        ));
        let mut next = vec![b'y'];
        next.extend(std::iter::repeat_n(b'z', 500));
        let cont = client_frame(true, OpCode::Continuation, &next);
        let mut checked = 0;
        assert!(matches!(
            d.decode_checked(&cont[..20], LIMITS, &mut checked, None),
            Err(EndpointError::InvalidUtf8)
        ));
    }

    /// A message in parts: a large frame is delivered in pieces as its bytes arrive (each a
    /// valid text of whole characters, `last` only at the end), small frames whole; the pieces
    /// make the message, and its limit is its own.
    #[test]
    fn parts_come_in_pieces_of_large_frames_with_whole_characters() {
        let limits = DecodeLimits {
            frame: 1 << 20,
            message: 1000,
            parts: [Some(1 << 20), None],
            from_server: false,
        };
        let text = "a€ü".repeat(20_000);
        let mut bytes = client_frame(false, OpCode::Text, &text.as_bytes()[..100_001]);
        bytes.extend(client_frame(
            true,
            OpCode::Continuation,
            &text.as_bytes()[100_001..],
        ));
        let (mut d, mut checked, mut at, mut got, mut parts) =
            (Decoder::default(), 0, 0, String::new(), 0);
        let mut end = 0;
        let mut last_seen = false;
        while at < bytes.len() {
            // Bytes arrive 7,000 at a time.
            end = (end + 7000).min(bytes.len()).max(at + 1);
            match d
                .decode_checked(&bytes[at..end], limits, &mut checked, None)
                .unwrap()
            {
                Decoded::Frame { consumed, inbound } => {
                    at += consumed;
                    if let Some(Inbound::Part {
                        part: Message::Text(t),
                        last,
                    }) = inbound
                    {
                        assert!(!last_seen);
                        last_seen = last;
                        parts += 1;
                        got.push_str(t.as_str());
                    }
                }
                Decoded::Incomplete { need } => assert!(at + need > end),
            }
        }
        assert!(last_seen && !d.in_message());
        assert_eq!(got, text);
        assert!(parts > 10, "{parts} parts");
        // Binary is whole here (`parts: None`), under the whole-message limit.
        let big = client_frame(true, OpCode::Binary, &[0; 1001]);
        assert!(matches!(
            Decoder::default().decode_checked(&big, limits, &mut 0, None),
            Err(EndpointError::TooBig { .. })
        ));
    }

    #[test]
    fn malformed_close_payloads_get_the_right_answer() {
        let code = |payload: &[u8]| close_payload(payload).map(|r| r.code().as_u16());
        assert_eq!(code(b""), None);
        assert_eq!(code(&[3]), Some(1002));
        assert_eq!(code(&1005u16.to_be_bytes()), Some(1002));
        assert_eq!(code(&[0x03, 0xE8, 0xFF]), Some(1007));
        assert_eq!(code(&[0x0B, 0xB8, b'o', b'k']), Some(3000));
    }

    #[test]
    fn close_frames_encode_code_and_reason() {
        let mut out = Vec::new();
        encode_close(&mut out, Some(&CloseReason::new(1000u16, "bye")), None);
        assert_eq!(out, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
        out.clear();
        encode_close(
            &mut out,
            Some(&CloseReason::new(CloseCode::NO_STATUS, "")),
            None,
        );
        assert_eq!(out, [0x88, 0]);
    }

    #[test]
    fn a_client_takes_unmasked_frames_and_refuses_masked_ones() {
        let limits = DecodeLimits {
            from_server: true,
            ..LIMITS
        };
        let mut server_frame = Vec::new();
        encode_frame(&mut server_frame, OpCode::Text, b"hello");
        match Decoder::default().decode(&server_frame, limits) {
            Ok(Decoded::Frame {
                inbound: Some(Inbound::Message(Message::Text(t))),
                consumed,
            }) => {
                assert_eq!(t.as_str(), "hello");
                assert_eq!(consumed, server_frame.len());
            }
            other => panic!("{other:?}"),
        }
        let masked = client_frame(true, OpCode::Text, b"hello");
        let err = Decoder::default().decode(&masked, limits).unwrap_err();
        assert!(err.to_string().contains("server frame masked"), "{err}");
        // And what a client encodes, a server decodes.
        let mut out = Vec::new();
        encode_masked(
            &mut out,
            OpCode::Binary,
            false,
            true,
            b"\x00\x01\x02",
            [9, 8, 7, 6],
        );
        match Decoder::default().decode(&out, LIMITS) {
            Ok(Decoded::Frame {
                inbound: Some(Inbound::Message(Message::Binary(b))),
                ..
            }) => assert_eq!(&b[..], b"\x00\x01\x02"),
            other => panic!("{other:?}"),
        }
    }
}
