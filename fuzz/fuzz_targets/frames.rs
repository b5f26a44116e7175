//! The runtime's own RFC 6455 frame decoder (`frame::Decoder`, through the hidden
//! `endpoint_runtime::__fuzz::FrameDecoder`) fed arbitrary client bytes in arbitrary reads.
//!
//! The input is a list of frames whose every header field may be wrong (FIN, RSV bits, opcode,
//! mask, a length that lies or uses a longer form than needed), followed by raw bytes, plus the
//! size limits (the defaults, or small ones so that 1009 is reachable) and the sizes of the
//! reads. Most generated frames are well formed, so inputs get past the first frame and reach
//! fragmentation, interleaved control frames, UTF-8 and close-frame handling.
//!
//! The bytes are decoded three ways: all at once (as from the thread's scratch buffer), in the
//! reads the input chooses, and one byte at a time. The chunked runs do what `ws.rs` does: keep
//! the bytes not consumed, append what the next read brings (at most the room `ws.rs` would
//! have given the read, from `need`), decode again.
//!
//! Properties:
//! * no panic, no hang; memory follows the bytes (libFuzzer's `-rss_limit_mb`);
//! * a frame consumes at least one byte and no more than the buffer holds;
//! * `Incomplete { need }` asks for more than the buffer holds, never for more than the frame
//!   then turns out to take, and never for more than a header plus the largest payload the
//!   limits allow: a header announcing more than the limits is refused before its payload is
//!   awaited;
//! * the outcome (events, then the error or the bytes left over) is the same for every
//!   chunking;
//! * every text or binary message is within the message limit, text is valid UTF-8, pings and
//!   pongs carry at most 125 bytes;
//! * every close delivered carries no code, or one a peer may send (which includes the 1002 and
//!   1007 the server answers malformed closes with), and a reason of at most 123 bytes;
//! * every error maps to 1002, 1007 or 1009 (`EndpointError::close_code`), 1009 exactly for a
//!   size over the limits.
#![no_main]

use arbitrary::Arbitrary;
use endpoint_runtime::__fuzz::{FrameDecoded, FrameDecoder, FrameEvent, MAX_FRAME_HEADER};
use endpoint_runtime::{EndpointError, Limits, Message};
use libfuzzer_sys::fuzz_target;

/// `ws.rs`: the per-thread scratch buffer, the most one read takes.
const READ_SCRATCH: usize = 128 * 1024;
/// `ws.rs`: the most a connection's own buffer for an incomplete frame grows by before a read.
const GROW_STEP: usize = 64 * 1024;
/// The opcodes RFC 6455 defines.
const OPCODES: [u8; 6] = [0x0, 0x1, 0x2, 0x8, 0x9, 0xA];

#[derive(Arbitrary, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Text(String),
    Close {
        code: u16,
        reason: String,
    },
    /// A large payload from a small input.
    Repeat {
        byte: u8,
        len: u16,
    },
}

#[derive(Arbitrary, Debug)]
enum Length {
    /// The payload's length in its shortest form.
    True,
    /// The payload's length in the 16-bit form (whatever it is).
    Form16,
    /// The payload's length in the 64-bit form.
    Form64,
    /// Off by a little.
    Delta(i8),
    /// Any length, in the form it needs.
    Any(u64),
    /// Any 64-bit length field, the high bit included.
    Raw64(u64),
}

#[derive(Arbitrary, Debug)]
struct RawFrame {
    /// Not final when set (so the zero default is a final frame).
    more: bool,
    /// RSV bits, set only when this is 0xF8 or more.
    rsv: u8,
    /// A defined opcode below 0xF0, any 4-bit opcode from there.
    opcode: u8,
    /// Unmasked only when 0xFF.
    unmasked: u8,
    mask: [u8; 4],
    length: Length,
    payload: Payload,
}

#[derive(Arbitrary, Debug)]
struct SmallLimits {
    frame: u16,
    message: u16,
    /// Right shifts of `frame` (low nibble) and `message` (high nibble).
    shift: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// `None`: `Limits::default()` (1 MiB frames and messages).
    limits: Option<SmallLimits>,
    /// Sizes of the reads of the chunked run, cycled (0 reads one byte).
    reads: Vec<u16>,
    frames: Vec<RawFrame>,
    tail: Vec<u8>,
}

impl RawFrame {
    fn encode(&self, out: &mut Vec<u8>) {
        let payload: Vec<u8> = match &self.payload {
            Payload::Bytes(b) => b.clone(),
            Payload::Text(t) => t.as_bytes().to_vec(),
            Payload::Close { code, reason } => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                p
            }
            Payload::Repeat { byte, len } => vec![*byte; usize::from(*len)],
        };
        let opcode = if self.opcode < 0xF0 {
            OPCODES[usize::from(self.opcode) % OPCODES.len()]
        } else {
            self.opcode & 0xF
        };
        let rsv = if self.rsv >= 0xF8 {
            self.rsv & 0b111
        } else {
            0
        };
        out.push((u8::from(!self.more) << 7) | (rsv << 4) | opcode);
        let masked = self.unmasked != 0xFF;
        let mask_bit = if masked { 0x80 } else { 0 };
        let true_len = payload.len() as u64;
        let shortest = |out: &mut Vec<u8>, len: u64| {
            if len < 126 {
                out.push(mask_bit | len as u8);
            } else if len <= u64::from(u16::MAX) {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        };
        match self.length {
            Length::True => shortest(out, true_len),
            Length::Form16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(true_len as u16).to_be_bytes());
            }
            Length::Form64 => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&true_len.to_be_bytes());
            }
            Length::Delta(d) => shortest(out, true_len.saturating_add_signed(i64::from(d))),
            Length::Any(len) => shortest(out, len & (u64::MAX >> 1)),
            Length::Raw64(len) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&self.mask);
            out.extend(
                payload
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ self.mask[i % 4]),
            );
        } else {
            out.extend_from_slice(&payload);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    frame: usize,
    message: usize,
}

/// How the bytes ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// All consumed, or this many bytes left of a frame that never completed.
    Incomplete(usize),
    /// The error's close code and text.
    Error(u16, String),
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<FrameEvent>,
    end: End,
}

/// Checks an event against the properties and records it.
fn event(events: &mut Vec<FrameEvent>, event: Option<FrameEvent>, sizes: Sizes) {
    let Some(event) = event else { return };
    match &event {
        FrameEvent::Message(Message::Text(t)) => {
            assert!(t.len() <= sizes.message, "text of {} bytes", t.len());
            assert!(std::str::from_utf8(t.as_str().as_bytes()).is_ok());
        }
        FrameEvent::Message(Message::Binary(b)) => {
            assert!(b.len() <= sizes.message, "binary of {} bytes", b.len());
        }
        FrameEvent::Message(Message::Pong(p)) | FrameEvent::Ping(p) => {
            assert!(p.len() <= 125, "control payload of {} bytes", p.len());
        }
        FrameEvent::Message(Message::Ping(_)) => panic!("a ping delivered as a message"),
        FrameEvent::Close(Some(reason)) => {
            let code = reason.code().as_u16();
            assert!(
                matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999),
                "close code {code} delivered"
            );
            assert!(reason.reason().len() <= 123);
        }
        FrameEvent::Close(None) => {}
        FrameEvent::Part { part, .. } => {
            // Only decoders built with `parts` deliver parts; each one is within the frame's
            // bytes and a text part is valid UTF-8 by itself.
            assert!(part.len() <= sizes.message.max(3), "part of {} bytes", part.len());
        }
    }
    events.push(event);
}

fn error(e: EndpointError) -> End {
    let code = e.close_code().map(|c| c.as_u16());
    assert!(
        matches!(code, Some(1002 | 1007 | 1009)),
        "error {e} closes with {code:?}"
    );
    assert_eq!(
        code == Some(1009),
        matches!(e, EndpointError::TooBig { .. })
    );
    End::Error(code.unwrap_or_default(), e.to_string())
}

/// The largest `need` a frame within the limits can have.
fn need_bound(sizes: Sizes) -> usize {
    MAX_FRAME_HEADER + sizes.frame.min(sizes.message).max(125)
}

/// Decodes `bytes` straight out of one buffer, as `ws.rs` does from its scratch buffer.
fn whole(bytes: &[u8], sizes: Sizes) -> Outcome {
    let mut decoder = FrameDecoder::new(sizes.frame, sizes.message);
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        match decoder.decode(rest) {
            Err(e) => {
                return Outcome {
                    events,
                    end: error(e),
                }
            }
            Ok(FrameDecoded::Frame { consumed, event: e }) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "consumed {consumed}"
                );
                at += consumed;
                event(&mut events, e, sizes);
            }
            Ok(FrameDecoded::Incomplete { need }) => {
                assert!(
                    need > rest.len() && need <= need_bound(sizes),
                    "need {need}"
                );
                break;
            }
        }
    }
    Outcome {
        events,
        end: End::Incomplete(bytes.len() - at),
    }
}

/// Decodes `bytes` arriving in reads of the sizes `read` gives, capped by the room `ws.rs`
/// gives a read (`need`, grown by at most one scratch buffer, at least `min_input`).
fn chunked(
    bytes: &[u8],
    sizes: Sizes,
    min_input: usize,
    mut read: impl FnMut() -> usize,
) -> Outcome {
    let mut decoder = FrameDecoder::new(sizes.frame, sizes.message);
    let mut events = Vec::new();
    let mut kept: Vec<u8> = Vec::new();
    let mut at = 0;
    // The `need` of the frame at the start of `kept`, once it was reported incomplete.
    let mut waiting: Option<usize> = None;
    loop {
        while !kept.is_empty() {
            match decoder.decode(&kept) {
                Err(e) => {
                    return Outcome {
                        events,
                        end: error(e),
                    }
                }
                Ok(FrameDecoded::Frame { consumed, event: e }) => {
                    assert!(
                        consumed > 0 && consumed <= kept.len(),
                        "consumed {consumed}"
                    );
                    if let Some(need) = waiting.take() {
                        assert!(
                            need <= consumed,
                            "needed {need} for a {consumed}-byte frame"
                        );
                    }
                    kept.drain(..consumed);
                    event(&mut events, e, sizes);
                }
                Ok(FrameDecoded::Incomplete { need }) => {
                    assert!(
                        need > kept.len() && need <= need_bound(sizes),
                        "need {need}"
                    );
                    waiting = Some(need);
                    break;
                }
            }
        }
        if at == bytes.len() {
            return Outcome {
                events,
                end: End::Incomplete(kept.len()),
            };
        }
        let room = match waiting {
            _ if kept.is_empty() => READ_SCRATCH,
            Some(need) => {
                let have = kept.len();
                need.min(have + GROW_STEP).max(have + min_input) - have
            }
            None => unreachable!("bytes are kept only behind an incomplete frame"),
        };
        let n = read().max(1).min(room).min(bytes.len() - at);
        kept.extend_from_slice(&bytes[at..at + n]);
        at += n;
    }
}

fuzz_target!(|input: Input| {
    let sizes = match &input.limits {
        None => {
            let limits = Limits::default();
            Sizes {
                frame: limits.max_frame_size,
                message: limits.max_message_size,
            }
        }
        Some(l) => Sizes {
            frame: usize::from(l.frame) >> (l.shift & 0xF),
            message: usize::from(l.message) >> (l.shift >> 4),
        },
    };
    let mut bytes = Vec::new();
    for f in input.frames.iter().take(64) {
        f.encode(&mut bytes);
    }
    bytes.extend_from_slice(&input.tail);

    let reference = whole(&bytes, sizes);

    // `ws.rs` keeps a partial frame in at least `max(read_buffer_size, MAX_HEADER)` bytes.
    let min_input = Limits::default().read_buffer_size.max(MAX_FRAME_HEADER);
    let mut reads = input.reads.iter().cycle().map(|&r| usize::from(r));
    let mut next = || reads.next().unwrap_or(READ_SCRATCH);
    assert_eq!(
        chunked(&bytes, sizes, min_input, &mut next),
        reference,
        "reads {:?}",
        input.reads
    );
    // The smallest room `ws.rs` could give, too.
    let mut next = || reads.next().unwrap_or(READ_SCRATCH);
    assert_eq!(chunked(&bytes, sizes, 1, &mut next), reference);
    if bytes.len() <= 1 << 16 {
        assert_eq!(
            chunked(&bytes, sizes, 1, || 1),
            reference,
            "one byte at a time"
        );
    }
});
