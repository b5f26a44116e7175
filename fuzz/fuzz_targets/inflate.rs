//! The runtime's permessage-deflate inflater (`deflate::Decompressor`, through the hidden
//! `endpoint_runtime::__fuzz::Inflater`) fed compressed messages cut into arbitrary frames.
//!
//! The input is a conversation (plaintexts the runtime's own compressor turns into messages,
//! with or without context takeover, any window and level; repeated bytes reach 2 MiB from a
//! few input bytes) and raw bytes, under a small limit or the default 1 MiB, with the frame
//! sizes the input chooses.
//!
//! Properties:
//! * no panic, no hang; memory follows the limit (libFuzzer's `-rss_limit_mb`);
//! * a message never puts more than the limit into its output, on success or error, and the
//!   output's capacity stays within the limit too;
//! * every error closes with 1007 or 1009; our own compression of a plaintext within the limit
//!   inflates back to it, however its payload is cut into frames, and one over the limit fails
//!   with 1009;
//! * without context takeover neither side holds zlib state between messages, and the thread's
//!   decompressor is reset after any message, a broken one included (RFC 7692's "Hello"
//!   inflates right after it);
//! * raw bytes have the same outcome (the output, or the error's code) in one frame as in the
//!   frames the input chooses.
#![no_main]

use arbitrary::Arbitrary;
use endpoint_runtime::__fuzz::{Deflater, Inflater};
use endpoint_runtime::{CloseCode, Limits};
use libfuzzer_sys::fuzz_target;

/// RFC 7692 section 7.2.3.1: "Hello".
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[derive(Arbitrary, Debug)]
enum Plain {
    Bytes(Vec<u8>),
    Text(String),
    /// A large message from a small input (up to 2 MiB, past the default limit).
    Repeat {
        byte: u8,
        len: u32,
    },
    /// A pattern repeated (up to 2 MiB), for matches at every distance.
    Pattern {
        seed: Vec<u8>,
        times: u16,
    },
}

/// The most a generated plaintext takes: twice the default limit, so that it is reached.
const PLAIN_MAX: usize = 2 << 20;

impl Plain {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Plain::Bytes(b) => b.clone(),
            Plain::Text(t) => t.as_bytes().to_vec(),
            Plain::Repeat { byte, len } => vec![*byte; (*len as usize) % PLAIN_MAX],
            Plain::Pattern { seed, times } => {
                seed.repeat(usize::from(*times).min(PLAIN_MAX / seed.len().max(1)))
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Context takeover on both sides of the conversation.
    takeover: bool,
    window_bits: u8,
    level: u8,
    /// `None`: `Limits::default().max_message_size` (1 MiB); else a small limit.
    limit: Option<u16>,
    /// Frame payload sizes, cycled (0 makes an empty frame).
    frames: Vec<u16>,
    conversation: Vec<Plain>,
    raw: Vec<u8>,
}

/// Cuts `payload` into frames of the sizes `sizes` gives; the last one may be empty.
fn cut<'a>(payload: &'a [u8], sizes: &mut impl Iterator<Item = usize>) -> Vec<&'a [u8]> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < payload.len() && frames.len() < 4096 {
        let n = sizes
            .next()
            .unwrap_or(payload.len())
            .min(payload.len() - at);
        frames.push(&payload[at..at + n]);
        at += n;
    }
    if at < payload.len() || frames.is_empty() {
        frames.push(&payload[at..]);
    }
    frames
}

/// Inflates one message's frames; checks the bound after every frame.
fn inflate(inflater: &mut Inflater, frames: &[&[u8]], limit: usize) -> Result<Vec<u8>, CloseCode> {
    let mut out = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let result = inflater.inflate(frame, i + 1 == frames.len(), limit, &mut out);
        assert!(out.len() <= limit, "{} bytes out, limit {limit}", out.len());
        assert!(
            out.capacity() <= limit,
            "capacity {}, limit {limit}",
            out.capacity()
        );
        if let Err((code, why)) = result {
            assert!(
                matches!(code, CloseCode::TOO_BIG | CloseCode::INVALID_PAYLOAD),
                "{why} closes with {code:?}"
            );
            return Err(code);
        }
    }
    Ok(out)
}

fuzz_target!(|input: Input| {
    let limit = match input.limit {
        None => Limits::default().max_message_size,
        Some(l) => usize::from(l),
    };
    let mut sizes = input
        .frames
        .iter()
        .map(|&n| usize::from(n))
        .collect::<Vec<_>>()
        .into_iter()
        .cycle();

    // The conversation: what the runtime compresses, it inflates back.
    let mut deflater = Deflater::new(input.takeover, input.window_bits, u32::from(input.level));
    let mut inflater = Inflater::new(input.takeover);
    for plain in input.conversation.iter().take(16) {
        let plain = plain.bytes();
        let mut compressed = Vec::new();
        deflater.compress(&plain, &mut compressed);
        // Without takeover nothing is held between messages (with it, from the first
        // message that is not empty).
        assert!(input.takeover || !deflater.holds_state());
        let frames = cut(&compressed, &mut sizes);
        match inflate(&mut inflater, &frames, limit) {
            Ok(out) => assert!(out == plain, "round trip of {} bytes", plain.len()),
            Err(code) => {
                assert!(
                    plain.len() > limit && code == CloseCode::TOO_BIG,
                    "{} bytes (limit {limit}) failed with {code:?}",
                    plain.len()
                );
                // The connection is over.
                break;
            }
        }
        assert!(input.takeover || !inflater.holds_state());
    }

    // Raw bytes: one outcome however they are cut.
    for takeover in [false, true] {
        let whole = inflate(&mut Inflater::new(takeover), &[&input.raw], limit);
        let frames = cut(&input.raw, &mut sizes);
        let mut inflater = Inflater::new(takeover);
        let chunked = inflate(&mut inflater, &frames, limit);
        assert_eq!(whole, chunked, "{} frames", frames.len());
        if !takeover {
            assert!(!inflater.holds_state());
            // The thread's decompressor was reset (or dropped), whatever the bytes were.
            let hello = inflate(&mut Inflater::new(false), &[&HELLO], 5);
            assert_eq!(hello.as_deref(), Ok(&b"Hello"[..]));
        }
    }
});
