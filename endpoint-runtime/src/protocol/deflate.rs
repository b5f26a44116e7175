//! permessage-deflate (RFC 7692), the protocol core: negotiating the extension's parameters, and
//! compressing and inflating one message's payload. No I/O, nothing of sessions: the upgrade
//! (`server/upgrade.rs`) and the connection (`connection/`) wire it in.
//!
//! | item | what it does |
//! |---|---|
//! | [`DeflateConfig`] | the server's settings; defaults below |
//! | [`negotiate`] | the first acceptable offer of the client's `Sec-WebSocket-Extensions`: the [`Agreement`] ([`DeflateParams`] and the response header value), or `None` to go on uncompressed |
//! | [`Compressor`] | a connection's outgoing messages: its own zlib stream with server context takeover, nothing held without |
//! | [`SharedCompression`], [`compress_once`] | a message compressed once for every recipient without server context takeover (broadcasts) |
//! | [`Decompressor`] | a connection's incoming compressed messages, frame by frame, with a bound on what they inflate to |
//! | [`InflateError`] | over the bound (1009), or not deflate data (1007) |
//!
//! # Defaults ([`DeflateConfig::default`])
//!
//! | setting | default | why |
//! |---|---|---|
//! | `enabled` | `false` | compression costs CPU on every message, and a message mixing a secret with text an attacker chooses leaks the secret through its compressed length (the CRIME/BREACH kind): the application opts in, as with Node's `ws` and uWebSockets |
//! | `server_no_context_takeover` | `true` | no zlib state per connection for what the server sends (a compressor with its window is 371 KiB, below); what is compressed depends on the message only, so a broadcast is compressed once for all its recipients |
//! | `client_no_context_takeover` | `true` | no inflate state (46 KiB) held by an idle connection. RFC 7692 section 7.1.1.2 lets the server ask for it in answer to any offer, and browsers comply. The cost is the ratio of small client messages that resemble the previous ones |
//! | `server_max_window_bits` | 15 | the best ratio, and without context takeover the window is the thread's, not the connection's |
//! | `client_max_window_bits` | 15 | only the client's memory: we inflate with 32 KiB whatever is agreed (below) |
//! | `level` | 1 | measured (zlib-rs, JSON chat messages, `reset` + compress): 1 KiB in 9 µs to 48 % at level 1, in 22 µs to 36 % at 6; 4 KiB in 13 µs to 39 % against 42 µs to 26 %; levels 2 to 6 pay a fixed 10 µs or so per message |
//! | `min_size` | 1024 | smaller messages are sent uncompressed: a 64-byte message grew to 66 bytes, a 256-byte one shrank by 82 bytes for 6 µs of CPU |
//!
//! Browsers offer `permessage-deflate; client_max_window_bits` (Chrome) or plain
//! `permessage-deflate` (Firefox); with the defaults the answer is
//! `permessage-deflate; server_no_context_takeover; client_no_context_takeover` (plus
//! `client_max_window_bits=15` when the client offered that parameter).
//!
//! # Backend: zlib-rs
//!
//! flate2's default backend, miniz_oxide, has no `new_with_window_bits` (flate2 builds it only
//! with a zlib backend) and always compresses with a 32 KiB window: the server could only decline
//! every offer with `server_max_window_bits` below 15. flate2's `zlib-rs` feature is zlib
//! ported to Rust (no C compiler, no system library): windows of 9 to 15 bits, and in the
//! measurements above a reset plus compression of a small message took 4 to 9 µs against 18 to
//! 28 µs with miniz_oxide.
//!
//! # Window bits 8
//!
//! zlib (since 1.2.9), and zlib-rs after it, refuse a raw deflate window of 8 bits (flate2
//! asserts 9 to 15). zlib's compressor at 9 bits happens never to emit a distance over 250 bytes
//! (its window minus the 262-byte lookahead), which is why Node quietly turns 8 into 9; that is
//! an internal constant of the backend, not a promise it keeps. So:
//!
//! * an offer asking `server_max_window_bits=8` is declined (RFC 7692 section 7.1.2.1: a server
//!   declines a parameter it does not support), and the next offer is tried; browsers never ask
//!   for it. A configured `server_max_window_bits` of 8 means 9, and the answer says 9;
//! * inflating, the server keeps a 32 KiB window whatever was agreed (zlib-rs allocates 32 KiB
//!   for any window size), which decodes every window from 8 to 15 bits: a client's
//!   `client_max_window_bits=8` is accepted and echoed. The server never asks for 8 itself (a
//!   configured 8 means 9): zlib-based clients cannot compress with it (Bun's client, for one,
//!   closed with 1011 when told 8).
//!
//! # Errors
//!
//! A message inflating past the message limit fails with 1009, as a frame over the limits does
//! (`EndpointError::TooBig`); no more than the limit is ever written, whatever the ratio (up to
//! 1032:1 for deflate, so one 1 MiB frame can carry a 1 GiB message). Data that is not deflate
//! fails with 1007 (invalid payload: the data does not match what the frame's RSV1 bit says it
//! is), as Node's `ws` closes on a zlib error; RFC 7692 only says to fail the connection.
//!
//! # Memory
//!
//! Measured with a counting global allocator (flate2 1.1.11, zlib-rs 0.6.8; flate2 gives zlib
//! its default `memLevel` of 8, whose hash tables are most of a compressor):
//!
//! | zlib state | heap |
//! |---|---|
//! | compressor, window 15 (any level) | 380,032 B (371 KiB) |
//! | compressor, window 12 | 265,344 B |
//! | compressor, window 9 | 251,008 B |
//! | decompressor, any window | 47,552 B (46 KiB: the 32 KiB window, then zlib's tables) |
//!
//! A connection keeps what was agreed inline (12 bytes in `connection::io`'s `FrameIo`, and 12
//! bits in its request block for `Session::extensions`) and holds no heap while idle unless
//! context takeover was agreed: its [`Compressor`] and [`Decompressor`] are boxed only while
//! they hold zlib state — with server context takeover, a compressor
//! from its first compressed message on; with client context takeover, a decompressor from the
//! first compressed message on. Without takeover a message borrows the thread's state (one
//! decompressor, and one compressor per window size in use) and gives it back reset. A
//! fragmented compressed message holds a decompressor from its first frame to its last.
//! `cargo test -p endpoint-runtime --lib deflate::tests::resident_memory -- --ignored --nocapture`
//! prints what the states cost in resident memory. Idle, a connection that agreed
//! permessage-deflate without context takeover costs what one without it does, plus the
//! thread's shared states amortized (`bench/run --cases idle,idle-deflate --servers
//! endpoint,uws --duration 5`: 1.79 KiB per connection plain, 1.81 with compression, at 10,000
//! connections; uWebSockets.js 1.10 and 1.12).
//!
//! # What the connection does with it
//!
//! * Outgoing: a text or binary message of at least `min_size` bytes is compressed and sent
//!   with RSV1 set on its first frame only; control frames are never compressed. Without server
//!   context takeover the server may send the uncompressed message instead when compressing did
//!   not make it smaller; with it, it may not (the peer's window would miss the message).
//! * Incoming: RSV1 on the first frame of a text or binary message means compressed; RSV1 on a
//!   continuation or control frame, or without an agreement, stays a 1002. Each frame's
//!   unmasked payload goes through [`Decompressor::inflate`] with the message limit; the frame
//!   limit applies to the bytes on the wire; the UTF-8 of a text message is checked on the
//!   inflated bytes (1007).
//! * A broadcast groups its recipients by [`DeflateParams::shared_compression`]: a payload
//!   compressed with a window of N bits is valid for every recipient whose agreed server window
//!   is N or more.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{header, HeaderMap};

use crate::message::CloseCode;

/// The extension's token in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";
const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The smallest window zlib compresses with in raw deflate (see the module docs on 8).
const MIN_WINDOW_BITS: u8 = 9;
/// The largest window RFC 7692 allows, and deflate's.
const MAX_WINDOW_BITS: u8 = 15;

/// What a sync flush ends with, and what RFC 7692 section 7.2.1 takes off each message (and
/// section 7.2.2 puts back before inflating).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The least output room an inflate step is given (it grows with the message).
const MIN_CHUNK: usize = 4096;

/// The server's permessage-deflate settings. See the [module docs](self) for the defaults and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeflateConfig {
    /// Accept the extension at all.
    pub(crate) enabled: bool,
    /// Compress each outgoing message on its own (a client's `server_no_context_takeover` is
    /// honoured whatever this says).
    pub(crate) server_no_context_takeover: bool,
    /// Ask the client to compress each message on its own (an offered
    /// `client_no_context_takeover` is taken up whatever this says: the client does so anyway).
    pub(crate) client_no_context_takeover: bool,
    /// The largest window the server compresses with, 8 to 15 (8 means 9); a client asking for
    /// less gets less.
    pub(crate) server_max_window_bits: u8,
    /// The largest window the server asks the client to compress with, 8 to 15 (8 means 9);
    /// only a client that offered `client_max_window_bits` can be asked (RFC 7692 7.1.2.2).
    pub(crate) client_max_window_bits: u8,
    /// zlib's compression level, 0 (stored) to 9 (more is 9).
    pub(crate) level: u32,
    /// Messages smaller than this many bytes are sent uncompressed.
    pub(crate) min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: false,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            level: 1,
            min_size: 1024,
        }
    }
}

/// What was agreed with one client: what each side compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeflateParams {
    /// The server compresses each message on its own.
    pub(crate) server_no_context_takeover: bool,
    /// The client compresses each message on its own, so the server inflates each afresh.
    pub(crate) client_no_context_takeover: bool,
    /// The window the server compresses with, 9 to 15.
    pub(crate) server_max_window_bits: u8,
    /// The largest window the client compresses with, 8 to 15 (the server inflates with 15).
    pub(crate) client_max_window_bits: u8,
    /// zlib's level, 0 to 9.
    pub(crate) level: u8,
    /// Messages smaller than this are sent uncompressed (a configured size past `u32::MAX`
    /// is `u32::MAX`: 4 GiB messages are compressed either way). Both fields are small so
    /// that the whole agreement fits in 12 bytes, kept inline by every connection that has one.
    pub(crate) min_size: u32,
}

impl DeflateParams {
    /// Whether an outgoing message of `len` bytes is compressed.
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len as u64 >= u64::from(self.min_size)
    }

    /// How the server's messages are compressed when that does not depend on the connection
    /// (no server context takeover); `None` with takeover, where each connection compresses
    /// its own.
    pub(crate) fn shared_compression(&self) -> Option<SharedCompression> {
        self.server_no_context_takeover
            .then_some(SharedCompression {
                level: u32::from(self.level.min(9)),
                window_bits: self
                    .server_max_window_bits
                    .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
            })
    }
}

/// An accepted offer: the parameters, and the `Sec-WebSocket-Extensions` value of the `101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Agreement {
    pub(crate) params: DeflateParams,
    /// E.g. `permessage-deflate; server_no_context_takeover; client_no_context_takeover`.
    pub(crate) response: String,
    /// The answer in 12 bits, kept by the session for `Session::extensions` (the text would
    /// cost every idle connection its length): see [`Agreement::pack`].
    pub(crate) packed: u16,
}

impl Agreement {
    /// Bit 0: server_no_context_takeover; 1: client_no_context_takeover; 2-5: the server's
    /// window; 6-9: the client's; 10: the server's window is named in the answer; 11: the
    /// client's is.
    fn pack(params: &DeflateParams, server_named: bool, client_named: bool) -> u16 {
        u16::from(params.server_no_context_takeover)
            | u16::from(params.client_no_context_takeover) << 1
            | u16::from(params.server_max_window_bits & 0xF) << 2
            | u16::from(params.client_max_window_bits & 0xF) << 6
            | u16::from(server_named) << 10
            | u16::from(client_named) << 11
    }
}

/// The `Sec-WebSocket-Extensions` value of the `101` for an answer [`Agreement::pack`]ed.
pub(crate) fn response_of(packed: u16) -> String {
    let mut response = String::from(NAME);
    if packed & 1 != 0 {
        response.push_str("; ");
        response.push_str(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if packed & 2 != 0 {
        response.push_str("; ");
        response.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    if packed & (1 << 10) != 0 {
        let _ = write!(
            response,
            "; {SERVER_MAX_WINDOW_BITS}={}",
            (packed >> 2) & 0xF
        );
    }
    if packed & (1 << 11) != 0 {
        let _ = write!(
            response,
            "; {CLIENT_MAX_WINDOW_BITS}={}",
            (packed >> 6) & 0xF
        );
    }
    response
}

/// Picks the first acceptable permessage-deflate offer among the request's
/// `Sec-WebSocket-Extensions` headers (RFC 7692 section 5: the client lists offers by
/// preference). `None` when compression is disabled or no offer is acceptable: the connection
/// goes on uncompressed, and the `101` names no extension.
pub(crate) fn negotiate(config: &DeflateConfig, headers: &HeaderMap) -> Option<Agreement> {
    negotiate_values(
        config,
        headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// [`negotiate`] over the header values themselves, in order.
pub(crate) fn negotiate_values<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Agreement> {
    if !config.enabled {
        return None;
    }
    values
        .into_iter()
        .flat_map(|value| Elements { s: value, at: 0 })
        .find_map(|element| match element {
            Element::Deflate(Ok(offer)) => accept(config, &offer).ok(),
            Element::Deflate(Err(_)) | Element::Other => None,
        })
}

/// Why an offer was declined (RFC 7692 section 7: the server declines, and tries the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decline {
    /// Not `name *( ";" param [ "=" ( token / quoted-string ) ] )` (RFC 6455 section 9.1).
    Malformed,
    /// A parameter RFC 7692 does not define.
    Unknown,
    /// A parameter given twice.
    Duplicate(&'static str),
    /// A value where none belongs, none where one must be, or not a window size from 8 to 15.
    Invalid(&'static str),
    /// `server_max_window_bits=8`, which zlib cannot compress with.
    Unsupported,
}

/// One permessage-deflate offer's parameters, each checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// Present, with its value (it must have one).
    server_max_window_bits: Option<u8>,
    /// Present, with its value if it has one.
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// Records one parameter; the first unknown, duplicate or invalid one declines the offer.
    fn set(&mut self, name: &[u8], value: Option<&[u8]>) -> Result<(), Decline> {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        fn flag(seen: &mut bool, value: Option<&[u8]>, name: &'static str) -> Result<(), Decline> {
            if *seen {
                return Err(Decline::Duplicate(name));
            }
            if value.is_some() {
                return Err(Decline::Invalid(name));
            }
            *seen = true;
            Ok(())
        }
        if is(SERVER_NO_CONTEXT_TAKEOVER) {
            flag(
                &mut self.server_no_context_takeover,
                value,
                SERVER_NO_CONTEXT_TAKEOVER,
            )
        } else if is(CLIENT_NO_CONTEXT_TAKEOVER) {
            flag(
                &mut self.client_no_context_takeover,
                value,
                CLIENT_NO_CONTEXT_TAKEOVER,
            )
        } else if is(SERVER_MAX_WINDOW_BITS) {
            if self.server_max_window_bits.is_some() {
                return Err(Decline::Duplicate(SERVER_MAX_WINDOW_BITS));
            }
            let bits = value
                .and_then(window_bits)
                .ok_or(Decline::Invalid(SERVER_MAX_WINDOW_BITS))?;
            self.server_max_window_bits = Some(bits);
            Ok(())
        } else if is(CLIENT_MAX_WINDOW_BITS) {
            if self.client_max_window_bits.is_some() {
                return Err(Decline::Duplicate(CLIENT_MAX_WINDOW_BITS));
            }
            let bits = match value {
                None => None,
                Some(v) => Some(window_bits(v).ok_or(Decline::Invalid(CLIENT_MAX_WINDOW_BITS))?),
            };
            self.client_max_window_bits = Some(bits);
            Ok(())
        } else {
            Err(Decline::Unknown)
        }
    }
}

/// A window size: a decimal integer from 8 to 15 without leading zeroes (RFC 7692 7.1.2).
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// The answer to an acceptable offer (RFC 7692 section 7.1).
fn accept(config: &DeflateConfig, offer: &Offer) -> Result<Agreement, Decline> {
    let server_cap = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // 7.1.2.1: the server uses no more than the client asked for, and says so.
    let server_bits = match offer.server_max_window_bits {
        Some(asked) if asked < MIN_WINDOW_BITS => return Err(Decline::Unsupported),
        Some(asked) => server_cap.min(asked),
        None => server_cap,
    };
    let client_cap = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // 7.1.2.2: a client that did not offer the parameter may use any window and must not be
    // sent one; one that did may be told any window up to the value it gave.
    let client_bits = match offer.client_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(None) => client_cap,
        Some(Some(offered)) => client_cap.min(offered),
    };
    let params = DeflateParams {
        // 7.1.1.1: an offered server_no_context_takeover must be accepted; the server may
        // add it to any answer.
        server_no_context_takeover: config.server_no_context_takeover
            || offer.server_no_context_takeover,
        // 7.1.1.2: the server may add it to any answer; offered, it costs nothing to take up.
        client_no_context_takeover: config.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        level: config.level.min(9) as u8,
        min_size: u32::try_from(config.min_size).unwrap_or(u32::MAX),
    };
    // 7.1.2.1: the server may name its window even when the client did not ask.
    let server_named = offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS;
    let client_named = offer.client_max_window_bits.is_some();
    let packed = Agreement::pack(&params, server_named, client_named);
    Ok(Agreement {
        params,
        response: response_of(packed),
        packed,
    })
}

/// The client's offer (RFC 7692 section 5, the client side) for its settings: asks the server
/// not to keep context when `server_no_context_takeover` is set, says the client keeps none
/// when `client_no_context_takeover` is, names the server's window when it is below 15, and
/// always offers `client_max_window_bits`, so the server may choose the client's window.
///
/// A client that keeps context (either side's) offers a second offer after the first, with
/// neither side keeping any: a server that only accepts offers without context (it may decline
/// any other, RFC 7692 section 5) then still compresses. An answer with
/// `server_no_context_takeover` may be to that second offer, whose `client_no_context_takeover`
/// binds the client (7.1.1.2), so the client then keeps no context either ([`client_accept`]).
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let first = client_offer_with(
        config,
        config.server_no_context_takeover,
        config.client_no_context_takeover,
    );
    if config.server_no_context_takeover && config.client_no_context_takeover {
        return first;
    }
    format!("{first}, {}", client_offer_with(config, true, true))
}

fn client_offer_with(
    config: &DeflateConfig,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
) -> String {
    let mut offer = String::from(NAME);
    if server_no_context_takeover {
        let _ = write!(offer, "; {SERVER_NO_CONTEXT_TAKEOVER}");
    }
    if client_no_context_takeover {
        let _ = write!(offer, "; {CLIENT_NO_CONTEXT_TAKEOVER}");
    }
    let server_bits = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if server_bits < MAX_WINDOW_BITS {
        let _ = write!(offer, "; {SERVER_MAX_WINDOW_BITS}={server_bits}");
    }
    let _ = write!(offer, "; {CLIENT_MAX_WINDOW_BITS}");
    offer
}

/// Checks the server's `Sec-WebSocket-Extensions` answer to [`client_offer`] (RFC 7692 section
/// 7.1, the client side: anything not offered, or not allowed by the offer, fails the
/// connection). `Ok(None)`: the server declined, the connection goes on uncompressed.
///
/// `Ok(Some((params, packed)))`: the parameters as the client's connection uses them, whose
/// code names what it sends `server_*` (its compressor) and what it receives `client_*`: so
/// `server_*` here are the answer's `client_*`, and the other way round. `packed` is the
/// answer as [`Agreement::pack`] keeps it, for `Session::extensions`. A client told to use a
/// window of 8 bits, which zlib cannot compress with, sends every message uncompressed (RFC
/// 7692 lets each message choose).
pub(crate) fn client_accept<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<(DeflateParams, u16)>, String> {
    let mut answer = None;
    for element in values
        .into_iter()
        .flat_map(|value| Elements { s: value, at: 0 })
    {
        match element {
            Element::Other => {
                return Err("the server answered with an extension that was not offered".into())
            }
            Element::Deflate(Err(why)) => {
                return Err(format!(
                    "the server's permessage-deflate answer is invalid ({why:?})"
                ))
            }
            Element::Deflate(Ok(_)) if answer.is_some() => {
                return Err("the server answered permessage-deflate twice".into())
            }
            Element::Deflate(Ok(offer)) => answer = Some(offer),
        }
    }
    let Some(answer) = answer else {
        return Ok(None);
    };
    if !config.enabled {
        return Err("the server answered permessage-deflate, which was not offered".into());
    }
    let client_bits = match answer.client_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(Some(bits)) => bits,
        Some(None) => {
            return Err("the server's client_max_window_bits has no value".into());
        }
    };
    let offered_server_bits = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    let server_bits = answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    if server_bits > offered_server_bits {
        return Err(format!(
            "the server's server_max_window_bits={server_bits} is over the {offered_server_bits} offered"
        ));
    }
    if config.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err("the server did not accept the offered server_no_context_takeover".into());
    }
    let level = config.level.min(9) as u8;
    let min_size = u32::try_from(config.min_size).unwrap_or(u32::MAX);
    let wire = DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        level,
        min_size,
    };
    let packed = Agreement::pack(
        &wire,
        answer.server_max_window_bits.is_some(),
        answer.client_max_window_bits.is_some(),
    );
    // Which offer an answer with server_no_context_takeover took is not said: the second
    // (see `client_offer`) binds the client to keep no context, so it keeps none.
    let second_offer = answer.server_no_context_takeover
        && !(config.server_no_context_takeover && config.client_no_context_takeover);
    let ours = DeflateParams {
        server_no_context_takeover: answer.client_no_context_takeover
            || config.client_no_context_takeover
            || second_offer,
        client_no_context_takeover: answer.server_no_context_takeover,
        server_max_window_bits: client_bits.max(MIN_WINDOW_BITS),
        client_max_window_bits: server_bits,
        level,
        min_size: if client_bits < MIN_WINDOW_BITS {
            u32::MAX
        } else {
            min_size
        },
    };
    Ok(Some((ours, packed)))
}

/// One element of an extension list.
#[derive(Debug, PartialEq, Eq)]
enum Element {
    /// A permessage-deflate offer, or why it is declined.
    Deflate(Result<Offer, Decline>),
    /// Another extension, or an element without a name.
    Other,
}

/// The elements of one `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
/// `1#( name *( ";" param [ "=" ( token / quoted-string ) ] ) )`, with optional whitespace
/// around the separators. Commas inside quoted strings do not end an element; empty elements
/// are skipped; a malformed element runs to the next comma and is declined.
struct Elements<'a> {
    s: &'a [u8],
    at: usize,
}

impl Iterator for Elements<'_> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        loop {
            self.ows();
            match self.peek() {
                None => return None,
                Some(b',') => self.at += 1,
                Some(_) => break,
            }
        }
        let element = match self.element() {
            Ok(element) => element,
            Err(deflate) => {
                self.skip_element();
                if deflate {
                    Element::Deflate(Err(Decline::Malformed))
                } else {
                    Element::Other
                }
            }
        };
        Some(element)
    }
}

impl<'a> Elements<'a> {
    /// One element, up to and including its comma; `Err(is permessage-deflate)` when
    /// malformed.
    fn element(&mut self) -> Result<Element, bool> {
        let name = self.token().ok_or(false)?;
        let deflate = name.eq_ignore_ascii_case(NAME.as_bytes());
        let mut offer = Ok(Offer::default());
        loop {
            self.ows();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.at += 1;
                    break;
                }
                Some(b';') => self.at += 1,
                Some(_) => return Err(deflate),
            }
            self.ows();
            let param = self.token().ok_or(deflate)?;
            self.ows();
            let value = if self.peek() == Some(b'=') {
                self.at += 1;
                self.ows();
                Some(if self.peek() == Some(b'"') {
                    let unquoted = self.quoted().ok_or(deflate)?;
                    // RFC 6455 9.1: once unescaped, a quoted value must be a token.
                    if !is_token(&unquoted) {
                        return Err(deflate);
                    }
                    unquoted
                } else {
                    self.token().ok_or(deflate)?.to_vec()
                })
            } else {
                None
            };
            if let (true, Ok(o)) = (deflate, &mut offer) {
                if let Err(why) = o.set(param, value.as_deref()) {
                    offer = Err(why);
                }
            }
        }
        Ok(if deflate {
            Element::Deflate(offer)
        } else {
            Element::Other
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| &self.s[start..self.at])
    }

    /// A quoted string, unescaped; `None` when it does not end.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    out.push(self.peek()?);
                    self.at += 1;
                }
                c => out.push(c),
            }
        }
    }

    /// Skips past the next comma outside a quoted string (or to the end).
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                b'\\' if quoted => self.at += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => return,
                _ => {}
            }
        }
    }
}

/// RFC 7230's `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().copied().all(is_tchar)
}

/// The outgoing compression of connections without server context takeover: equal values
/// compress alike, and a payload compressed with a window of N bits suits every recipient
/// whose agreed server window is N or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SharedCompression {
    level: u32,
    window_bits: u8,
}

impl SharedCompression {
    /// Appends the RFC 7692 payload of one message to `out`, compressed on its own with the
    /// thread's compressor (reset first: nothing of another message, maybe another
    /// connection's, can be referenced).
    pub(crate) fn compress(self, payload: &[u8], out: &mut Vec<u8>) {
        if payload.is_empty() {
            return out.push(0x00);
        }
        with_pooled_compressor(self, |c| deflate_message(c, payload, out));
    }

    /// The RFC 7692 payload of one message, compressed once for every recipient.
    pub(crate) fn compress_once(self, payload: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(deflate_bound(payload.len()));
        self.compress(payload, &mut out);
        // The bound is for incompressible data; do not keep the room a good ratio left over.
        if out.capacity() - out.len() > out.len() / 4 + 64 {
            out.shrink_to_fit();
        }
        Bytes::from(out)
    }
}

/// A message compressed once for every recipient that shares `params` (a broadcast); `None`
/// with server context takeover, where each connection must compress it with its own stream.
/// (The fan-out goes through [`Sharing`], packed per session; this is the same, unpacked.)
#[cfg(test)]
pub(crate) fn compress_once(params: &DeflateParams, payload: &[u8]) -> Option<Bytes> {
    params
        .shared_compression()
        .map(|shared| shared.compress_once(payload))
}

/// A connection's outgoing compression. Without server context takeover it holds no zlib
/// state (each message borrows the thread's); with it, the connection's own stream, from its
/// first compressed message on.
#[derive(Debug)]
pub(crate) struct Compressor {
    shared: SharedCompression,
    takeover: bool,
    stream: Option<Box<Compress>>,
}

impl Compressor {
    /// The compressor for what was agreed; allocates nothing.
    pub(crate) fn new(params: &DeflateParams) -> Compressor {
        let shared = SharedCompression {
            level: u32::from(params.level.min(9)),
            window_bits: params
                .server_max_window_bits
                .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
        };
        Compressor {
            shared,
            takeover: !params.server_no_context_takeover,
            stream: None,
        }
    }

    /// Appends the RFC 7692 payload of one message to `out`: deflate ended with a sync flush,
    /// its `00 00 ff ff` taken off. With context takeover the message may refer to the ones
    /// this compressor compressed before, so every compressed message of the connection must
    /// go through it, in the order they are sent.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if !self.takeover {
            return self.shared.compress(payload, out);
        }
        if payload.is_empty() {
            // The stream is byte-aligned after the last flush: `00` and the peer's `00 00 ff ff`
            // make an empty stored block (RFC 7692 7.2.3.6), and the window does not change.
            return out.push(0x00);
        }
        let shared = self.shared;
        if self.stream.is_none() {
            HELD_COMPRESSORS.fetch_add(1, Ordering::Relaxed);
        }
        let stream = self
            .stream
            .get_or_insert_with(|| Box::new(new_compress(shared)));
        deflate_message(stream, payload, out);
    }

    /// Whether zlib state is held (only with context takeover, once a message was compressed).
    pub(crate) fn holds_state(&self) -> bool {
        self.stream.is_some()
    }
}

/// A compressor in the thread's pool.
#[derive(Debug)]
struct Pooled {
    level: u32,
    compress: Compress,
}

thread_local! {
    /// The thread's compressors, by window size (9 to 15), for messages compressed on their own.
    static COMPRESSORS: [Cell<Option<Box<Pooled>>>; 7] = const { [const { Cell::new(None) }; 7] };
    /// The thread's decompressor (32 KiB window), for messages inflated on their own.
    static DECOMPRESSOR: Cell<Option<Box<Decompress>>> = const { Cell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// zlib states made on this thread (compressors, decompressors), for the tests of reuse.
    static MADE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

fn new_compress(shared: SharedCompression) -> Compress {
    #[cfg(test)]
    MADE.with(|m| m.set((m.get().0 + 1, m.get().1)));
    Compress::new_with_window_bits(Compression::new(shared.level), false, shared.window_bits)
}

fn new_decompress() -> Decompress {
    #[cfg(test)]
    MADE.with(|m| m.set((m.get().0, m.get().1 + 1)));
    Decompress::new_with_window_bits(false, MAX_WINDOW_BITS)
}

/// Runs `f` with the thread's compressor for `shared`, reset (or a new one), and puts it back.
fn with_pooled_compressor<R>(shared: SharedCompression, f: impl FnOnce(&mut Compress) -> R) -> R {
    let slot = usize::from(shared.window_bits - MIN_WINDOW_BITS);
    let pooled = COMPRESSORS
        .try_with(|slots| slots[slot].take())
        .ok()
        .flatten();
    let mut pooled = match pooled {
        Some(mut p) => {
            p.compress.reset();
            if p.level != shared.level
                && p.compress
                    .set_level(Compression::new(shared.level))
                    .is_err()
            {
                p.compress = new_compress(shared);
            }
            p.level = shared.level;
            p
        }
        None => Box::new(Pooled {
            level: shared.level,
            compress: new_compress(shared),
        }),
    };
    let r = f(&mut pooled.compress);
    // During the thread's teardown there is no pool: the compressor is dropped.
    let _ = COMPRESSORS.try_with(|slots| slots[slot].set(Some(pooled)));
    r
}

/// Room enough for deflate's output of `n` bytes with a sync flush in most cases (stored
/// blocks cost 5 bytes each; the loop in [`deflate_message`] grows it otherwise).
fn deflate_bound(n: usize) -> usize {
    n + (n >> 12) + (n >> 14) + 32
}

/// Compresses `payload` (not empty) into `out` with a sync flush, and takes the flush's
/// `00 00 ff ff` off (RFC 7692 section 7.2.1).
fn deflate_message(c: &mut Compress, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let in_start = c.total_in();
    out.reserve(deflate_bound(payload.len()));
    loop {
        let done = (c.total_in() - in_start) as usize;
        let spare = out.capacity() - out.len();
        let before = out.len();
        // Errors are for a misused stream (zlib's Z_STREAM_ERROR); a full output is `Ok`.
        c.compress_vec(&payload[done..], out, FlushCompress::Sync)
            .expect("deflate into memory does not fail");
        let consumed = (c.total_in() - in_start) as usize - done;
        let made = out.len() - before;
        // The flush is complete once all input is in and the output was not filled.
        if done + consumed == payload.len() && made < spare {
            break;
        }
        if consumed == 0 && made == 0 && spare > 0 {
            debug_assert!(false, "deflate made no progress");
            break;
        }
        out.reserve((out.len() - start).max(1024));
    }
    debug_assert!(
        out[start..].ends_with(&TAIL),
        "a sync flush ends the output"
    );
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The message inflates to more than `max` bytes (closed with 1009). `size` is what it had
    /// reached when inflating stopped, one byte past the limit or more.
    TooBig { size: usize, max: usize },
    /// Not valid deflate data (closed with 1007), with zlib's words for it.
    Invalid(String),
}

impl InflateError {
    /// The code the connection closes with: 1009 over the limit (as `EndpointError::TooBig`),
    /// 1007 for data that is not deflate (see the module docs).
    pub(crate) fn close_code(&self) -> CloseCode {
        match self {
            InflateError::TooBig { .. } => CloseCode::TOO_BIG,
            InflateError::Invalid(_) => CloseCode::INVALID_PAYLOAD,
        }
    }
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::TooBig { size, max } => write!(
                f,
                "compressed message inflates past {size} bytes, over the limit of {max} bytes"
            ),
            InflateError::Invalid(why) => write!(f, "invalid compressed message: {why}"),
        }
    }
}

impl std::error::Error for InflateError {}

/// A connection's inflation of compressed messages, frame by frame. With client context
/// takeover it keeps its zlib stream (and the window) from the first compressed message on;
/// without, it holds one only from the first frame of a message to its last, borrowed from
/// the thread and given back reset.
#[derive(Debug)]
pub(crate) struct Decompressor {
    takeover: bool,
    stream: Option<Box<Decompress>>,
    /// Bytes the current message inflated to so far.
    produced: usize,
    /// The message's deflate data ended with a final block (BFINAL); the rest is ignored.
    ended: bool,
}

impl Decompressor {
    /// The decompressor for what was agreed; allocates nothing.
    pub(crate) fn new(params: &DeflateParams) -> Decompressor {
        Decompressor {
            takeover: !params.client_no_context_takeover,
            stream: None,
            produced: 0,
            ended: false,
        }
    }

    /// Inflates one frame's payload of a compressed message (after unmasking), appending it
    /// to `out`; `fin` ends the message (RFC 7692 7.2.2: `00 00 ff ff` is added before it is
    /// inflated). Frames of a fragmented message come in order; `max_output` bounds the whole
    /// message, and no more than that is ever written to `out`: inflation stops at the first
    /// byte past it, however small the input. After an error the connection must fail; the
    /// decompressor keeps nothing of the message.
    pub(crate) fn inflate(
        &mut self,
        compressed: &[u8],
        fin: bool,
        max_output: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let mut stream = match self.stream.take() {
            Some(stream) => {
                HELD_DECOMPRESSORS.fetch_sub(1, Ordering::Relaxed);
                stream
            }
            None if self.takeover => Box::new(new_decompress()),
            None => DECOMPRESSOR
                .try_with(Cell::take)
                .ok()
                .flatten()
                .unwrap_or_else(|| Box::new(new_decompress())),
        };
        let mut result = self.feed(&mut stream, compressed, max_output, out);
        if result.is_ok() && fin {
            result = self.feed(&mut stream, &TAIL, max_output, out);
        }
        if let Err(e) = result {
            self.produced = 0;
            self.ended = false;
            return Err(e);
        }
        if !fin {
            HELD_DECOMPRESSORS.fetch_add(1, Ordering::Relaxed);
            self.stream = Some(stream);
            return Ok(());
        }
        let ended = std::mem::take(&mut self.ended);
        self.produced = 0;
        if self.takeover {
            // zlib takes nothing after a final block: the next message starts afresh (a client
            // that ends messages with BFINAL cannot also refer back to them).
            if ended {
                stream.reset(false);
            }
            HELD_DECOMPRESSORS.fetch_add(1, Ordering::Relaxed);
            self.stream = Some(stream);
        } else {
            stream.reset(false);
            // During the thread's teardown there is no pool: the state is dropped.
            let _ = DECOMPRESSOR.try_with(|slot| slot.set(Some(stream)));
        }
        Ok(())
    }

    /// Whether zlib state is held: with context takeover once a message was inflated, without
    /// only while a fragmented message is being inflated.
    pub(crate) fn holds_state(&self) -> bool {
        self.stream.is_some()
    }

    /// Inflates `input` into `out`, never past `max` bytes for the message.
    fn feed(
        &mut self,
        d: &mut Decompress,
        mut input: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        loop {
            if self.ended {
                // RFC 7692 7.2.3.4: after a final block comes an empty one we need not read.
                return Ok(());
            }
            let room = max.saturating_sub(self.produced);
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let (status, space) = if room == 0 {
                // At the limit: any more output is too much, and goes to a 1-byte probe.
                let mut probe = [0u8; 1];
                (d.decompress(input, &mut probe, FlushDecompress::None), 1)
            } else {
                // Grows with the message (so reallocations stay few) and never past the limit.
                let want = room.min(
                    MIN_CHUNK
                        .max(self.produced)
                        .max(input.len().saturating_mul(4)),
                );
                let spare = out.capacity() - out.len();
                if spare < want {
                    out.reserve_exact(want - spare);
                }
                let spare = out.capacity() - out.len();
                if spare <= room {
                    (d.decompress_vec(input, out, FlushDecompress::None), spare)
                } else {
                    // `out` came with more room than the limit leaves: bound the write.
                    let len = out.len();
                    out.resize(len + want, 0);
                    let status = d.decompress(input, &mut out[len..], FlushDecompress::None);
                    let made = (d.total_out() - out_before) as usize;
                    out.truncate(len + made);
                    (status, want)
                }
            };
            let consumed = (d.total_in() - in_before) as usize;
            let made = (d.total_out() - out_before) as usize;
            input = &input[consumed..];
            self.produced += made;
            if self.produced > max {
                return Err(InflateError::TooBig {
                    size: self.produced,
                    max,
                });
            }
            match status {
                Err(e) => return Err(InflateError::Invalid(invalid(&e))),
                Ok(Status::StreamEnd) => {
                    self.ended = true;
                    return Ok(());
                }
                Ok(Status::Ok | Status::BufError) => {}
            }
            if made < space && input.is_empty() {
                return Ok(());
            }
            if consumed == 0 && made == 0 {
                if input.is_empty() {
                    return Ok(());
                }
                return Err(InflateError::Invalid("inflate made no progress".to_owned()));
            }
        }
    }
}

/// zlib streams held by connections, process-wide: compressors (server context takeover, from
/// a connection's first compressed message on) and decompressors (client context takeover, or
/// a fragmented compressed message being inflated). Shown in [`Stats`](crate::Stats).
static HELD_COMPRESSORS: AtomicUsize = AtomicUsize::new(0);
static HELD_DECOMPRESSORS: AtomicUsize = AtomicUsize::new(0);

/// How many zlib compressors and decompressors connections hold now (process-wide).
pub(crate) fn held_streams() -> (usize, usize) {
    (
        HELD_COMPRESSORS.load(Ordering::Relaxed),
        HELD_DECOMPRESSORS.load(Ordering::Relaxed),
    )
}

impl Drop for Compressor {
    fn drop(&mut self) {
        if self.stream.is_some() {
            HELD_COMPRESSORS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        if self.stream.is_some() {
            HELD_DECOMPRESSORS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What a broadcast may share with one recipient, packed in 16 bits (kept in the session: a
/// fan-out reads it for every recipient, and it costs no room there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// No compression agreed: the plain frame.
    Plain,
    /// No server context takeover: the payload compressed once with these settings.
    Shared(SharedCompression),
    /// Server context takeover: the connection compresses with its own stream; nothing shared.
    Own,
}

impl Sharing {
    /// What a connection that agreed `params` (or nothing) may share.
    pub(crate) fn of(params: Option<&DeflateParams>) -> Sharing {
        match params {
            None => Sharing::Plain,
            Some(p) => p.shared_compression().map_or(Sharing::Own, Sharing::Shared),
        }
    }

    /// Bits 0-1: the kind; 2-5: the window; 6-9: the level.
    pub(crate) fn pack(self) -> u16 {
        match self {
            Sharing::Plain => 0,
            Sharing::Own => 2,
            Sharing::Shared(s) => 1 | u16::from(s.window_bits) << 2 | (s.level as u16) << 6,
        }
    }

    pub(crate) fn unpack(bits: u16) -> Sharing {
        match bits & 3 {
            1 => Sharing::Shared(SharedCompression {
                window_bits: ((bits >> 2) & 0xF) as u8,
                level: u32::from((bits >> 6) & 0xF),
            }),
            2 => Sharing::Own,
            _ => Sharing::Plain,
        }
    }
}

/// zlib's message without flate2's prefix.
fn invalid(e: &flate2::DecompressError) -> String {
    let text = e.to_string();
    match text.strip_prefix("deflate decompression error: ") {
        Some(why) => why.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: DeflateConfig = DeflateConfig {
        enabled: true,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        level: 1,
        min_size: 1024,
    };

    fn answer(config: &DeflateConfig, values: &[&str]) -> Option<String> {
        negotiate_values(config, values.iter().map(|v| v.as_bytes())).map(|a| {
            // What a session spells out again from the packed answer is the same.
            assert_eq!(response_of(a.packed), a.response);
            a.response
        })
    }

    fn offers(value: &str) -> Vec<Element> {
        Elements {
            s: value.as_bytes(),
            at: 0,
        }
        .collect()
    }

    #[test]
    fn the_default_is_off_and_its_settings_are_the_documented_ones() {
        let d = DeflateConfig::default();
        assert!(!d.enabled);
        assert_eq!(
            DeflateConfig {
                enabled: true,
                ..d.clone()
            },
            ON
        );
        assert_eq!(answer(&d, &["permessage-deflate"]), None);
    }

    #[test]
    fn negotiation_table() {
        let no_takeover = DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            ..ON
        };
        let small = DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 11,
            ..ON
        };
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        #[rustfmt::skip]
        let table: &[(&DeflateConfig, &[&str], Option<&str>)] = &[
            // Firefox.
            (&ON, &["permessage-deflate"], Some(both)),
            // Chrome.
            (&ON, &["permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // Node's ws client.
            (&ON, &["permessage-deflate; client_max_window_bits=15"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // RFC 7692's example (7.1.3): two offers, the first is acceptable.
            (&ON, &["permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; server_max_window_bits=10; client_max_window_bits=15"))),
            // A server allowing context takeover gives what is asked.
            (&no_takeover, &["permessage-deflate; server_no_context_takeover"],
                Some("permessage-deflate; server_no_context_takeover")),
            (&no_takeover, &["permessage-deflate; client_no_context_takeover"],
                Some("permessage-deflate; client_no_context_takeover")),
            (&no_takeover, &["permessage-deflate"], Some("permessage-deflate")),
            (&no_takeover, &["permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"],
                Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10")),
            // The server's own windows.
            (&small, &["permessage-deflate"], Some(&format!("{both}; server_max_window_bits=10"))),
            (&small, &["permessage-deflate; server_max_window_bits=12; client_max_window_bits"],
                Some(&format!("{both}; server_max_window_bits=10; client_max_window_bits=11"))),
            (&small, &["permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"],
                Some(&format!("{both}; server_max_window_bits=9; client_max_window_bits=9"))),
            // A client may promise a window of 8: we inflate with 15 anyway.
            (&ON, &["permessage-deflate; client_max_window_bits=8"],
                Some(&format!("{both}; client_max_window_bits=8"))),
            // zlib cannot compress with 8 bits: declined, the next offer is taken.
            (&ON, &["permessage-deflate; server_max_window_bits=8"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // Unknown, duplicate and invalid parameters decline their offer only.
            (&ON, &["permessage-deflate; foo"], None),
            (&ON, &["permessage-deflate; foo=1, permessage-deflate"], Some(both)),
            (&ON, &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], None),
            (&ON, &["permessage-deflate; client_max_window_bits; client_max_window_bits=10"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"], None),
            (&ON, &["permessage-deflate; client_no_context_takeover=1"], None),
            (&ON, &["permessage-deflate; server_no_context_takeover=\"\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=16"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=7"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=010"], None),
            (&ON, &["permessage-deflate; client_max_window_bits=08"], None),
            (&ON, &["permessage-deflate; client_max_window_bits=abc"], None),
            (&ON, &["permessage-deflate; client_max_window_bits="], None),
            (&ON, &["permessage-deflate; client_max_window_bits=-9"], None),
            // Quoted values: allowed, unescaped, and then a token.
            (&ON, &["permessage-deflate; server_max_window_bits=\"10\""],
                Some(&format!("{both}; server_max_window_bits=10"))),
            (&ON, &["permessage-deflate; server_max_window_bits=\"1\\0\""],
                Some(&format!("{both}; server_max_window_bits=10"))),
            (&ON, &["permessage-deflate; server_max_window_bits=\"1 0\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits=\"10"], None),
            // Other extensions are skipped, quoted commas and all.
            (&ON, &["x-webkit-deflate-frame"], None),
            (&ON, &["x-webkit-deflate-frame, permessage-deflate"], Some(both)),
            (&ON, &["foo; bar=\"a,b;c\", permessage-deflate"], Some(both)),
            (&ON, &["foo; bar=\"a,\\\"b\", permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            (&ON, &["permessage-foo, deflate-frame"], None),
            // Several header lines, in order; case and whitespace.
            (&ON, &["foo", "permessage-deflate; server_max_window_bits=11"],
                Some(&format!("{both}; server_max_window_bits=11"))),
            (&ON, &["Permessage-Deflate;Client_Max_Window_Bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            (&ON, &["  permessage-deflate \t;  server_max_window_bits = 12 ,"],
                Some(&format!("{both}; server_max_window_bits=12"))),
            (&ON, &[",, ,permessage-deflate"], Some(both)),
            // Malformed elements.
            (&ON, &["permessage-deflate;"], None),
            (&ON, &["permessage-deflate; ;server_no_context_takeover"], None),
            (&ON, &["permessage-deflate server_no_context_takeover"], None),
            (&ON, &["permessage-deflate; \"x\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits==10"], None),
            (&ON, &["permessage-deflate; x=\"a, permessage-deflate"], None),
            (&ON, &["permessage-deflate; x=y z, permessage-deflate"], Some(both)),
            (&ON, &["; permessage-deflate"], None),
            (&ON, &["=, permessage-deflate"], Some(both)),
            (&ON, &[""], None),
            (&ON, &[], None),
        ];
        for (config, values, expected) in table {
            assert_eq!(
                answer(config, values).as_deref(),
                *expected,
                "offer {values:?}"
            );
        }
    }

    #[test]
    fn declines_say_why() {
        let declined = |v: &str| match &offers(v)[..] {
            [Element::Deflate(Err(why))] => *why,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(declined("permessage-deflate; foo"), Decline::Unknown);
        assert_eq!(
            declined("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            Decline::Duplicate(CLIENT_NO_CONTEXT_TAKEOVER)
        );
        assert_eq!(
            declined("permessage-deflate; server_max_window_bits"),
            Decline::Invalid(SERVER_MAX_WINDOW_BITS)
        );
        assert_eq!(
            declined("permessage-deflate; server_no_context_takeover=x"),
            Decline::Invalid(SERVER_NO_CONTEXT_TAKEOVER)
        );
        assert_eq!(declined("permessage-deflate; a b"), Decline::Malformed);
        let eight = match &offers("permessage-deflate; server_max_window_bits=8")[..] {
            [Element::Deflate(Ok(offer))] => *offer,
            other => panic!("{other:?}"),
        };
        assert_eq!(accept(&ON, &eight), Err(Decline::Unsupported));
    }

    #[test]
    fn agreed_parameters_follow_the_answer() {
        let a = negotiate_values(
            &DeflateConfig {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 8,
                client_max_window_bits: 8,
                level: 42,
                ..ON
            },
            [b"permessage-deflate; client_max_window_bits".as_slice()],
        )
        .unwrap();
        assert_eq!(
            a.response,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"
        );
        assert_eq!(
            a.params,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 9,
                client_max_window_bits: 9,
                level: 9,
                min_size: 1024,
            }
        );
        assert!(a.params.shared_compression().is_none());
        assert!(!a.params.compresses(1023) && a.params.compresses(1024));
        // From an `http::HeaderMap`, several lines.
        let mut h = HeaderMap::new();
        h.append(header::SEC_WEBSOCKET_EXTENSIONS, "foo".parse().unwrap());
        h.append(
            header::SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflate; server_max_window_bits=12"
                .parse()
                .unwrap(),
        );
        let a = negotiate(&ON, &h).unwrap();
        assert_eq!(a.params.server_max_window_bits, 12);
        assert_eq!(
            a.params.shared_compression(),
            Some(SharedCompression {
                level: 1,
                window_bits: 12
            })
        );
    }

    #[test]
    fn garbage_headers_never_panic() {
        let alphabet = b"permessage-deflate;,=\"\\ \t_client_max_window_bits0123456789\xff";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (x % 48) as usize;
            let value: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Some(a) = negotiate_values(&ON, [value.as_slice()]) {
                // Whatever is accepted answers with a well-formed, acceptable offer.
                let back = offers(&a.response);
                assert!(matches!(&back[..], [Element::Deflate(Ok(_))]), "{value:?}");
            }
        }
    }

    fn params(server_takeover: bool, client_takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: !server_takeover,
            client_no_context_takeover: !client_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            min_size: 0,
        }
    }

    fn compress(c: &mut Compressor, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(payload, &mut out);
        out
    }

    fn inflate(
        d: &mut Decompressor,
        frames: &[&[u8]],
        max: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            d.inflate(f, i + 1 == frames.len(), max, &mut out)?;
        }
        Ok(out)
    }

    /// Messages that look alike, as a chat's do.
    fn chat(i: usize) -> Vec<u8> {
        format!(
            "{{\"room\":\"lobby\",\"user\":\"user{}\",\"text\":\"message number {i} of the test, {}\"}}",
            i % 7,
            "with some words ".repeat(i % 5)
        )
        .into_bytes()
    }

    #[test]
    fn rfc_7692_examples() {
        let mut d = Decompressor::new(&params(true, true));
        // 7.2.3.1: "Hello", in one frame and in two.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&mut d, &[&hello], 100).unwrap(), b"Hello");
        let mut d = Decompressor::new(&params(true, true));
        assert_eq!(
            inflate(&mut d, &[&hello[..3], &hello[3..]], 100).unwrap(),
            b"Hello"
        );
        // 7.2.3.2: the second "Hello" refers to the first.
        assert_eq!(
            inflate(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 100).unwrap(),
            b"Hello"
        );
        // 7.2.3.3: a stored block; 7.2.3.4: BFINAL set; 7.2.3.5: two blocks.
        for payload in [
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ][..],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ] {
            for takeover in [false, true] {
                let mut d = Decompressor::new(&params(true, takeover));
                assert_eq!(inflate(&mut d, &[payload], 100).unwrap(), b"Hello");
                // And the decompressor is ready for the next message.
                assert_eq!(inflate(&mut d, &[&hello], 100).unwrap(), b"Hello");
            }
        }
        // 7.2.3.6: an empty fragment, or message, is one byte.
        let mut d = Decompressor::new(&params(true, true));
        assert_eq!(inflate(&mut d, &[&[0x00]], 100).unwrap(), b"");
        // What we produce: the same bytes.
        for takeover in [false, true] {
            for level in [1, 6, 9] {
                let mut c = Compressor::new(&DeflateParams {
                    level,
                    ..params(takeover, true)
                });
                assert_eq!(compress(&mut c, b"Hello"), hello, "level {level}");
                assert_eq!(compress(&mut c, b""), [0x00]);
            }
        }
        let mut c = Compressor::new(&params(true, true));
        compress(&mut c, b"Hello");
        assert_eq!(compress(&mut c, b"Hello"), [0xf2, 0x00, 0x11, 0x00, 0x00]);
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for takeover in [false, true] {
            let p = params(takeover, takeover);
            let mut c = Compressor::new(&p);
            let mut d = Decompressor::new(&p);
            let mut sizes = Vec::new();
            for i in 0..50 {
                let msg = chat(i);
                let z = compress(&mut c, &msg);
                sizes.push(z.len());
                assert_eq!(inflate(&mut d, &[&z], 1 << 20).unwrap(), msg, "message {i}");
                assert_eq!(c.holds_state(), takeover);
                assert_eq!(d.holds_state(), takeover);
            }
            // An empty message, a large one, and one that does not compress, in between.
            let big: Vec<u8> = (0..300_000u32)
                .flat_map(|i| (i / 7).to_le_bytes())
                .collect();
            let noise: Vec<u8> = (0..70_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            for msg in [&b""[..], &big, &noise, &chat(3)] {
                let z = compress(&mut c, msg);
                assert_eq!(inflate(&mut d, &[&z], 2 << 20).unwrap(), msg);
            }
            let total: usize = sizes.iter().sum();
            eprintln!("takeover {takeover}: 50 chat messages in {total} bytes");
            if takeover {
                // Later messages refer to earlier ones.
                assert!(sizes[40..].iter().all(|&n| n < 30), "{sizes:?}");
            }
        }
    }

    #[test]
    fn without_takeover_every_message_stands_alone() {
        let p = params(false, false);
        let mut c = Compressor::new(&p);
        let messages: Vec<Vec<u8>> = (0..10).map(chat).collect();
        let compressed: Vec<Vec<u8>> = messages.iter().map(|m| compress(&mut c, m)).collect();
        // Any order, any decompressor: nothing refers to another message.
        for (m, z) in messages.iter().zip(&compressed).rev() {
            let mut d = Decompressor::new(&p);
            assert_eq!(&inflate(&mut d, &[z], 1 << 20).unwrap(), m);
        }
        // And compressed once for all, the same bytes.
        let shared = p.shared_compression().unwrap();
        assert_eq!(&shared.compress_once(&messages[4])[..], &compressed[4][..]);
        assert_eq!(compress_once(&p, &messages[4]).unwrap(), compressed[4]);
        assert_eq!(compress_once(&params(true, false), &messages[4]), None);
    }

    #[test]
    fn fragmented_messages_inflate_frame_by_frame() {
        for takeover in [false, true] {
            let p = params(takeover, takeover);
            let mut c = Compressor::new(&p);
            let mut d = Decompressor::new(&p);
            for i in 0..20 {
                let msg: Vec<u8> = chat(i).repeat(1 + i * 40);
                let z = compress(&mut c, &msg);
                // Frames of every size from 0 (an empty final frame included) up.
                let step = 1 + i * i * 7;
                let mut frames: Vec<&[u8]> = z.chunks(step).collect();
                if i % 3 == 0 {
                    frames.push(&[]);
                }
                if i % 4 == 0 {
                    frames.insert(0, &[]);
                }
                let mut out = Vec::new();
                for (n, f) in frames.iter().enumerate() {
                    let fin = n + 1 == frames.len();
                    d.inflate(f, fin, 1 << 20, &mut out).unwrap();
                    if !fin {
                        assert!(d.holds_state(), "a message in progress holds its state");
                    }
                }
                assert_eq!(out, msg, "message {i}");
                assert_eq!(d.holds_state(), takeover);
            }
        }
    }

    #[test]
    fn the_thread_state_is_reused_not_remade() {
        let before = MADE.with(Cell::get);
        let p = params(false, false);
        let mut c = Compressor::new(&p);
        let mut d = Decompressor::new(&p);
        for i in 0..100 {
            let msg = chat(i).repeat(30);
            let z = compress(&mut c, &msg);
            assert_eq!(
                inflate(&mut d, &[&z[..z.len() / 2], &z[z.len() / 2..]], 1 << 20).unwrap(),
                msg
            );
            // Other connections of the thread, with other parameters.
            let mut other = Compressor::new(&DeflateParams {
                level: 9,
                server_max_window_bits: 10,
                ..p
            });
            compress(&mut other, &msg);
        }
        let after = MADE.with(Cell::get);
        // One compressor per window size in use, one decompressor.
        assert_eq!((after.0 - before.0, after.1 - before.1), (2, 1));
        assert!(!c.holds_state() && !d.holds_state());
        assert!(std::mem::size_of::<Compressor>() <= 24);
        assert!(std::mem::size_of::<Decompressor>() <= 24);
    }

    /// `n` MiB of zeros from about `n` KiB: one block of zeros, then the same block of
    /// references to the window again and again (deflate's best ratio is about 1032:1).
    fn bomb(mib: usize) -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let mut c = Compress::new_with_window_bits(Compression::best(), false, 15);
        let mut first = Vec::with_capacity(8192);
        c.compress_vec(&zeros, &mut first, FlushCompress::Sync)
            .unwrap();
        let mut again = Vec::with_capacity(8192);
        c.compress_vec(&zeros, &mut again, FlushCompress::Sync)
            .unwrap();
        assert!(first.ends_with(&TAIL) && again.ends_with(&TAIL) && again.len() < 2048);
        let mut out = first;
        for _ in 1..mib {
            out.extend_from_slice(&again);
        }
        out.truncate(out.len() - TAIL.len());
        out
    }

    #[test]
    fn a_bomb_is_cut_at_the_limit() {
        // The construction is right: 4 MiB of zeros.
        let mut d = Decompressor::new(&params(false, false));
        let small = bomb(4);
        let out = inflate(&mut d, &[&small], usize::MAX).unwrap();
        assert!(out.len() == 4 << 20 && out.iter().all(|&b| b == 0));

        // About 1 MiB (one frame at the default limits) that would inflate to 1 GiB.
        let big = bomb(1024);
        assert!(big.len() < 1100 * 1024, "{} bytes", big.len());
        for takeover in [false, true] {
            for frames in [1, 7, 1000] {
                let limit = 1 << 20;
                let started = std::time::Instant::now();
                let mut d = Decompressor::new(&params(false, takeover));
                let mut out = Vec::new();
                let step = big.len().div_ceil(frames);
                let mut result = Ok(());
                for (n, f) in big.chunks(step).enumerate() {
                    result = d.inflate(f, (n + 1) * step >= big.len(), limit, &mut out);
                    if result.is_err() {
                        break;
                    }
                }
                let e = result.unwrap_err();
                assert_eq!(
                    e,
                    InflateError::TooBig {
                        size: limit + 1,
                        max: limit
                    }
                );
                assert_eq!(e.close_code(), CloseCode::TOO_BIG);
                // Never more than the limit, in length or in memory.
                assert_eq!(out.len(), limit);
                assert!(out.capacity() <= limit, "capacity {}", out.capacity());
                assert!(!d.holds_state());
                let took = started.elapsed();
                eprintln!("1 GiB bomb in {frames} frames cut at 1 MiB in {took:?}");
                assert!(took < std::time::Duration::from_secs(5));
            }
        }
        // A limit of zero takes an empty message only.
        let mut d = Decompressor::new(&params(false, false));
        assert_eq!(inflate(&mut d, &[&[0x00]], 0).unwrap(), b"");
        assert!(matches!(
            inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 0),
            Err(InflateError::TooBig { size: 1, max: 0 })
        ));
        // Exactly at the limit is fine.
        assert_eq!(
            inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 5).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn the_limit_holds_whatever_room_the_output_has() {
        let msg = chat(1).repeat(100);
        let z = compress(&mut Compressor::new(&params(false, false)), &msg);
        for limit in [0, 1, 100, msg.len() - 1] {
            let mut d = Decompressor::new(&params(false, false));
            // A buffer with more room than the limit leaves, and bytes already in it.
            let mut out = Vec::with_capacity(1 << 20);
            out.extend_from_slice(b"kept");
            let e = d.inflate(&z, true, limit, &mut out).unwrap_err();
            assert!(matches!(e, InflateError::TooBig { max, .. } if max == limit));
            assert_eq!(&out[..4], b"kept");
            assert_eq!(out.len(), 4 + limit);
            assert_eq!(&out[4..], &msg[..limit]);
        }
    }

    #[test]
    fn corrupt_data_is_an_error() {
        for (payload, takeover) in [
            // Block type 3 is reserved.
            (&[0x06, 0x00][..], false),
            (&[0xff, 0xff, 0xff, 0xff], true),
            // A stored block whose length and its complement disagree.
            (&[0x00, 0x05, 0x00, 0x00, 0x00, b'H'], false),
            // A reference before the start of the window.
            (&[0x02, 0x02, 0x00], false),
        ] {
            let mut d = Decompressor::new(&params(false, takeover));
            let e = inflate(&mut d, &[payload], 1 << 20).unwrap_err();
            assert!(matches!(e, InflateError::Invalid(_)), "{payload:?}: {e:?}");
            assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
            assert!(!d.holds_state());
            eprintln!("{payload:x?}: {e}");
        }
        // A later reference to another message without takeover is corrupt too.
        let mut d = Decompressor::new(&params(true, false));
        inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 100).unwrap();
        assert!(inflate(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 100).is_err());
        // And after an error, the thread's decompressor is fine.
        let mut d = Decompressor::new(&params(false, false));
        assert_eq!(
            inflate(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 100).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn what_we_send_decodes_with_plain_flate2_and_back() {
        use std::io::Read as _;
        for takeover in [false, true] {
            for bits in [9, 12, 15] {
                let p = DeflateParams {
                    server_max_window_bits: bits,
                    ..params(takeover, takeover)
                };
                let mut c = Compressor::new(&p);
                // The peer: its own inflater, with the window agreed, and RFC 7692's tail.
                let mut peer = Decompress::new_with_window_bits(false, bits);
                for i in 0..30 {
                    let msg = chat(i).repeat(1 + i * 13);
                    let mut z = compress(&mut c, &msg);
                    z.extend_from_slice(&TAIL);
                    if !takeover {
                        peer.reset(false);
                        // One message alone also decodes with flate2's reader.
                        let mut read = Vec::new();
                        flate2::read::DeflateDecoder::new(&z[..])
                            .read_to_end(&mut read)
                            .unwrap_or_default();
                        assert_eq!(read, msg);
                    }
                    let mut out = Vec::with_capacity(msg.len() + 64);
                    peer.decompress_vec(&z, &mut out, FlushDecompress::Sync)
                        .unwrap();
                    assert_eq!(out, msg, "takeover {takeover}, {bits} bits, message {i}");
                }
            }
        }
        // The other way: what a zlib client sends (another level, window, flush), inflated.
        for takeover in [false, true] {
            let mut client = Compress::new_with_window_bits(Compression::best(), false, 10);
            let mut d = Decompressor::new(&params(false, takeover));
            for i in 0..30 {
                let msg = chat(i).repeat(1 + i);
                if !takeover {
                    client.reset();
                }
                let mut z = Vec::with_capacity(msg.len() + 64);
                client
                    .compress_vec(&msg, &mut z, FlushCompress::Sync)
                    .unwrap();
                assert!(z.ends_with(&TAIL));
                z.truncate(z.len() - 4);
                let half = z.len() / 2;
                assert_eq!(
                    inflate(&mut d, &[&z[..half], &z[half..]], 1 << 20).unwrap(),
                    msg
                );
            }
        }
    }

    /// What the states cost in resident memory (Linux): run alone, with `--ignored --nocapture`.
    #[test]
    #[ignore = "measures the process's resident memory; run alone"]
    fn resident_memory() {
        fn rss_kib() -> usize {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        const N: usize = 200;
        let msg = chat(1).repeat(2000);
        for bits in [9, 12, 15] {
            let p = DeflateParams {
                server_max_window_bits: bits,
                ..params(true, true)
            };
            let before = rss_kib();
            let mut held: Vec<Compressor> = (0..N).map(|_| Compressor::new(&p)).collect();
            for c in &mut held {
                compress(c, &msg);
            }
            let per = (rss_kib() - before) as f64 / N as f64;
            println!("compressor with context takeover, window {bits}: {per:.0} KiB resident");
        }
        let z = compress(&mut Compressor::new(&params(false, false)), &msg);
        let before = rss_kib();
        let mut held: Vec<Decompressor> = (0..N)
            .map(|_| Decompressor::new(&params(true, true)))
            .collect();
        for d in &mut held {
            let mut out = Vec::new();
            d.inflate(&z, true, 1 << 20, &mut out).unwrap();
        }
        let per = (rss_kib() - before) as f64 / N as f64;
        println!("decompressor with context takeover: {per:.0} KiB resident");
        let before = rss_kib();
        let idle: Vec<(Compressor, Decompressor)> = (0..N)
            .map(|_| {
                (
                    Compressor::new(&params(false, false)),
                    Decompressor::new(&params(false, false)),
                )
            })
            .collect();
        println!(
            "idle connection without takeover: {} + {} bytes inline, {:.1} KiB resident each",
            std::mem::size_of::<Compressor>(),
            std::mem::size_of::<Decompressor>(),
            (rss_kib() - before) as f64 / N as f64
        );
        drop(idle);
    }

    #[test]
    fn the_client_offers_and_checks_the_answer() {
        let config = DeflateConfig {
            enabled: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            client_offer(&config),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
        );
        let takeover = DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            ..config.clone()
        };
        assert_eq!(
            client_offer(&takeover),
            "permessage-deflate; client_max_window_bits, permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
        );
        // An answer that may be to the second offer: the client keeps no context.
        let (ours, _) = client_accept(
            &takeover,
            [&b"permessage-deflate; server_no_context_takeover"[..]],
        )
        .unwrap()
        .unwrap();
        assert!(ours.server_no_context_takeover);
        let (ours, _) = client_accept(&takeover, [&b"permessage-deflate"[..]])
            .unwrap()
            .unwrap();
        assert!(
            !ours.server_no_context_takeover,
            "the first offer: the client keeps its context"
        );
        let answer = |c: &DeflateConfig, v: &str| client_accept(c, [v.as_bytes()]);
        // Mirrored: what the client compresses with is the answer's client_*.
        let (ours, packed) = answer(
            &config,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        )
        .unwrap()
        .unwrap();
        assert_eq!(ours.server_max_window_bits, 10);
        assert!(ours.server_no_context_takeover, "we said we keep none");
        assert!(ours.client_no_context_takeover, "the server keeps none");
        assert_eq!(
            response_of(packed),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
        );
        // A window of 8 for us: every message goes uncompressed.
        let (ours, _) = answer(
            &config,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=8",
        )
        .unwrap()
        .unwrap();
        assert!(!ours.compresses(64 << 20));
        // What breaks the handshake.
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; foo=1",
            "permessage-deflate",
        ] {
            assert!(answer(&config, bad).is_err(), "{bad}");
        }
        assert!(answer(&takeover, "permessage-deflate").unwrap().is_some());
        assert!(
            answer(&DeflateConfig::default(), "permessage-deflate").is_err(),
            "not offered"
        );
        assert_eq!(answer(&config, "").unwrap(), None);
    }
}
