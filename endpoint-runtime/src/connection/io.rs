//! A WebSocket connection's byte handling: frames read from and written to the [`Transport`],
//! with no buffer of its own while the connection is idle.
//!
//! # Reads
//!
//! The socket is read in chunks of up to 128 KiB into a scratch buffer shared by all connections
//! of a thread, and frames are decoded straight out of it (each payload is copied once, unmasked,
//! into its message). Only what is left after the frame handed to the driver (a partial frame, or
//! pipelined frames behind it) is kept, in a per-connection buffer that is freed as soon as it is
//! consumed. A frame too large for one read is completed in that buffer, sized from its header
//! (which the decoder has already checked against the limits) but grown by at most 64 KiB per
//! read, so that memory follows the bytes that arrived.
//!
//! # Writes
//!
//! Frames are encoded into a per-thread scratch buffer and written with one system call per
//! batch; payloads of [`LARGE`] bytes or more are not copied but written from the message itself
//! with a vectored write. What the socket does not take is kept until it does, and nothing new is
//! encoded meanwhile: the session's byte-bounded queue then fills, which is the backpressure.
//!
//! An idle connection therefore holds: the stream (a plain TCP stream in the session's outbound
//! queue, where broadcasts can write to it directly: see `session::outbound`), the decoder (one
//! pointer, set only inside a fragmented message) and two empty pointers.
//!
//! Every call takes `home`, the outbound queue a plain TCP stream lives in (see
//! `transport.rs`); nothing here knows whose queue it is.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::ready;
use hyper::upgrade::Upgraded;

use super::transport::Transport;
use crate::error::EndpointError;
use crate::message::CloseReason;
use crate::protocol::coding::{OpCode, MAX_HEADER};
use crate::protocol::deflate::{Compressor, Decompressor, DeflateParams};
use crate::protocol::frame::{self, DecodeLimits, Decoded, Decoder, Inbound, Outgoing};
use crate::session::Outbound;

/// Size of the per-thread read scratch buffer: the most one `read` system call takes. 128 KiB
/// holds four 16 KiB frames with their headers: at 64 KiB the fourth one's last bytes took a
/// second `read` every time (0.49 reads per echoed message against uWebSockets.js's 0.24).
const READ_SCRATCH: usize = 128 * 1024;

/// How much a connection's own buffer for a frame that does not fit in one read grows by, at
/// most, before each read: memory follows the bytes that arrived, not the length a header claims.
const GROW_STEP: usize = 64 * 1024;

/// Payloads at least this large are written from the message, not copied.
pub(crate) const LARGE: usize = 8 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(Box::default());
    static WRITE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer broke the protocol or a limit (the error carries the close code).
    Protocol(EndpointError),
    /// The transport failed.
    Io(io::Error),
}

/// Bytes read but not decoded yet: `buf[start..end]`; `buf[end..]` is room for the next read.
#[derive(Debug)]
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload bytes of the incomplete text frame at `start` already checked as UTF-8.
    checked: usize,
}

/// Encoded bytes the socket has not taken yet.
#[derive(Debug)]
enum Pending {
    Bytes {
        buf: Vec<u8>,
        at: usize,
    },
    /// A large frame: its header, then its payload, written without copying.
    Large {
        head: [u8; MAX_HEADER],
        head_len: usize,
        payload: Bytes,
        /// Bytes of header and payload written so far.
        written: usize,
    },
}

impl Pending {
    /// What the socket has not taken yet, in order, in at most two pieces (the rest of a large
    /// frame's header, then its payload).
    fn unwritten(&self) -> [&[u8]; 2] {
        match self {
            Pending::Bytes { buf, at } => [&buf[*at..], &[]],
            Pending::Large {
                head,
                head_len,
                payload,
                written,
            } => match written.checked_sub(*head_len) {
                None => [&head[*written..*head_len], payload],
                Some(into_payload) => [&[], &payload[into_payload..]],
            },
        }
    }

    /// `n` more bytes were written.
    fn advance(&mut self, n: usize) {
        match self {
            Pending::Bytes { at, .. } => *at += n,
            Pending::Large { written, .. } => *written += n,
        }
    }

    /// Appends what the socket has not taken of this write to `buf`, behind what is there.
    fn append_rest(&self, buf: &mut Vec<u8>) {
        for piece in self.unwritten() {
            buf.extend_from_slice(piece);
        }
    }
}

/// A connection's frames over its transport; see the module docs.
#[derive(Debug)]
pub(crate) struct FrameIo {
    io: Transport,
    decoder: Decoder,
    input: Option<Box<Input>>,
    pending: Option<Box<Pending>>,
    /// The smallest buffer a partial frame is kept in (`Limits::read_buffer_size`, at most
    /// 4 GiB: the two sizes are `u32` so that they share a word with the flags and `deflate`).
    min_input: u32,
    /// Bytes encoded per write system call, at most (`Limits::write_buffer_size`).
    write_max: u32,
    /// Set once a read failed: nothing more is decoded.
    failed: bool,
    /// Set once our side of the stream was shut (`poll_linger`).
    write_shut: bool,
    /// This is a client: frames go out masked, and come in unmasked.
    client: bool,
    /// What permessage-deflate agreed, if it was (12 bytes, inline).
    deflate: Option<DeflateParams>,
    /// The zlib state the connection holds between frames: with context takeover, from the
    /// first message on; without, only inside a fragmented compressed message. `None` the rest
    /// of the time, so an idle connection that agreed no takeover holds nothing more than one
    /// that agreed nothing (each message borrows the thread's streams; `protocol::deflate`).
    streams: Option<Box<Streams>>,
}

/// The answers to the peer's pings, not written yet: boxed when there are any and freed once
/// they are taken to be written, so that a connection's future holds 8 bytes for them rather
/// than a `VecDeque`'s 32 (most connections never see a ping).
#[derive(Default)]
// The box is the point: 8 bytes inline instead of 32, for state most connections never have.
#[allow(clippy::box_collection)]
pub(crate) struct Pongs(Option<Box<VecDeque<Bytes>>>);

impl Pongs {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push_back(&mut self, payload: Bytes) {
        self.0.get_or_insert_with(Box::default).push_back(payload);
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    /// All of them, in order; none are left.
    fn take_all(&mut self) -> impl Iterator<Item = Bytes> {
        self.0.take().into_iter().flat_map(|q| q.into_iter())
    }
}

/// The zlib streams of one connection, while it holds any.
#[derive(Debug)]
struct Streams {
    compressor: Compressor,
    decompressor: Decompressor,
}

impl Streams {
    fn holds_state(&self) -> bool {
        self.compressor.holds_state() || self.decompressor.holds_state()
    }
}

/// The streams `params` call for, kept only while they hold state: `f` gets the connection's
/// own (boxed in `streams`), or fresh ones that hold nothing (and allocate nothing) until then.
fn with_streams<R>(
    params: &DeflateParams,
    streams: &mut Option<Box<Streams>>,
    f: impl FnOnce(&mut Streams) -> R,
) -> R {
    if let Some(held) = streams {
        let r = f(held);
        if !held.holds_state() {
            *streams = None;
        }
        return r;
    }
    let mut fresh = Streams {
        compressor: Compressor::new(params),
        decompressor: Decompressor::new(params),
    };
    let r = f(&mut fresh);
    if fresh.holds_state() {
        *streams = Some(Box::new(fresh));
    }
    r
}

impl FrameIo {
    /// The frames over an upgraded connection, starting with the bytes hyper read past the
    /// request; a plain TCP stream goes into `home`.
    pub(crate) fn new(
        upgraded: Upgraded,
        home: &Outbound,
        min_input: usize,
        write_max: usize,
        deflate: Option<DeflateParams>,
        client: bool,
    ) -> Self {
        let (io, read_ahead) = Transport::from_upgraded(upgraded, home, client);
        let mut ws = FrameIo {
            io,
            decoder: Decoder::default(),
            input: None,
            pending: None,
            min_input: min_input.clamp(MAX_HEADER, u32::MAX as usize) as u32,
            write_max: write_max.clamp(MAX_HEADER, 1 << 20) as u32,
            failed: false,
            write_shut: false,
            client,
            deflate,
            streams: None,
        };
        if !read_ahead.is_empty() {
            let end = read_ahead.len();
            ws.input = Some(Box::new(Input {
                buf: read_ahead,
                start: 0,
                end,
                checked: 0,
            }));
        }
        ws
    }

    /// The next frame that means something to the driver; `Ready(Ok(None))` when the stream
    /// ended (with or without a partial frame).
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        mut limits: DecodeLimits,
    ) -> Poll<Result<Option<Inbound>, ReadError>> {
        limits.from_server = self.client;
        if self.failed {
            return Poll::Ready(Err(ReadError::Protocol(EndpointError::Protocol(
                "the connection already failed".into(),
            ))));
        }
        let result = self.read(cx, home, limits);
        if let Poll::Ready(Err(_)) = &result {
            self.failed = true;
            self.input = None;
        }
        result
    }

    fn read(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        limits: DecodeLimits,
    ) -> Poll<Result<Option<Inbound>, ReadError>> {
        loop {
            if let Some(input) = &mut self.input {
                let decoded = decode(
                    &mut self.decoder,
                    self.deflate.as_ref(),
                    &mut self.streams,
                    &input.buf[input.start..input.end],
                    limits,
                    &mut input.checked,
                )
                .map_err(ReadError::Protocol)?;
                match decoded {
                    Decoded::Frame { consumed, inbound } => {
                        input.start += consumed;
                        if input.start == input.end {
                            self.input = None;
                        }
                        if let Some(inbound) = inbound {
                            return Poll::Ready(Ok(Some(inbound)));
                        }
                    }
                    Decoded::Incomplete { need } => {
                        let have = input.end - input.start;
                        if input.start > 0 {
                            input.buf.copy_within(input.start..input.end, 0);
                            input.start = 0;
                            input.end = have;
                        }
                        // Room for the rest of the frame (its size passed the limits), grown by
                        // at most one scratch buffer per read: memory follows the bytes that
                        // arrived, not the length a header claims.
                        let want = need
                            .min(have + GROW_STEP)
                            .max(have + self.min_input as usize);
                        if input.buf.len() < want {
                            input.buf.resize(want, 0);
                        }
                        let n = ready!(self.io.poll_read(cx, home, &mut input.buf[input.end..]))
                            .map_err(ReadError::Io)?;
                        if n == 0 {
                            return Poll::Ready(Ok(None));
                        }
                        input.end += n;
                    }
                }
                continue;
            }
            // Nothing kept: read into the thread's scratch and decode from there.
            let step = READ_BUF.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                if scratch.len() < READ_SCRATCH {
                    *scratch = vec![0; READ_SCRATCH].into_boxed_slice();
                }
                let n =
                    ready!(self.io.poll_read(cx, home, &mut scratch[..])).map_err(ReadError::Io)?;
                if n == 0 {
                    return Poll::Ready(Ok(Some(None)));
                }
                let mut at = 0;
                while at < n {
                    let mut checked = 0;
                    let decoded = decode(
                        &mut self.decoder,
                        self.deflate.as_ref(),
                        &mut self.streams,
                        &scratch[at..n],
                        limits,
                        &mut checked,
                    )
                    .map_err(ReadError::Protocol)?;
                    match decoded {
                        Decoded::Frame { consumed, inbound } => {
                            at += consumed;
                            if let Some(inbound) = inbound {
                                self.keep(&scratch[at..n], 0);
                                return Poll::Ready(Ok(Some(Some(inbound))));
                            }
                        }
                        Decoded::Incomplete { .. } => {
                            self.keep(&scratch[at..n], checked);
                            break;
                        }
                    }
                }
                // Only partial or continuation frames: read on.
                Poll::Ready(Ok(None))
            });
            match ready!(step)? {
                Some(Some(inbound)) => return Poll::Ready(Ok(Some(inbound))),
                Some(None) => return Poll::Ready(Ok(None)),
                None => {}
            }
        }
    }

    /// Whether the decoder is inside a fragmented message (see `Decoder::in_message`).
    pub(crate) fn in_message(&self) -> bool {
        self.decoder.in_message()
    }

    /// Drops the rest of the message being delivered in parts (see `Decoder::discard_message`).
    pub(crate) fn discard_message(&mut self) {
        self.decoder.discard_message();
    }

    /// Keeps bytes read past the frame being handed out.
    fn keep(&mut self, rest: &[u8], checked: usize) {
        if rest.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(rest.len().max(self.min_input as usize));
        buf.extend_from_slice(rest);
        let end = buf.len();
        self.input = Some(Box::new(Input {
            buf,
            start: 0,
            end,
            checked,
        }));
    }

    /// Writes `pongs` (in order) and `batch`, coalesced, then flushes. `Ready(Ok)` once all of it
    /// is written; `sent` is called for each message as it leaves the batch, with the bytes the
    /// outbound queue counted it as (`Outgoing::len`: a message's own bytes, also when it goes
    /// out compressed).
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        pongs: &mut Pongs,
        batch: &mut VecDeque<Outgoing>,
        mut sent: impl FnMut(usize, OpCode),
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_pending(cx, home))?;
            if pongs.is_empty() && batch.is_empty() {
                return self.io.poll_flush(cx, home);
            }
            let write_max = self.write_max as usize;
            let client = self.client;
            let result = WRITE_BUF.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                scratch.clear();
                for payload in pongs.take_all() {
                    if client {
                        let mask = crate::client::mask();
                        frame::encode_masked(
                            &mut scratch,
                            OpCode::Pong,
                            false,
                            true,
                            &payload,
                            mask,
                        );
                    } else {
                        frame::encode_frame(&mut scratch, OpCode::Pong, &payload);
                    }
                }
                while let Some(item) = batch.pop_front() {
                    // What the queue counted it as (the message's bytes, before compression):
                    // what is released when it leaves.
                    let counted = item.len();
                    let (opcode, compressed, fin, payload) = match item {
                        Outgoing::Message(msg) => {
                            let (opcode, payload) = frame::opcode_and_payload(msg);
                            match &self.deflate {
                                Some(params) if opcode.is_data() => {
                                    let (opcode, compressed, payload) =
                                        compress(params, &mut self.streams, opcode, payload);
                                    (opcode, compressed, true, payload)
                                }
                                _ => (opcode, false, true, payload),
                            }
                        }
                        Outgoing::Deflated { opcode, payload } => (opcode, true, true, payload),
                        Outgoing::Part { opcode, payload } => (opcode, false, false, payload),
                        Outgoing::LastPart { opcode, payload } => (opcode, false, true, payload),
                    };
                    if client {
                        // Masking copies the payload anyway: no write from the message.
                        let mask = crate::client::mask();
                        frame::encode_masked(&mut scratch, opcode, compressed, fin, &payload, mask);
                        sent(counted, opcode);
                        if scratch.len() >= write_max {
                            break;
                        }
                        continue;
                    }
                    if payload.len() >= LARGE {
                        let mut head = [0; MAX_HEADER];
                        let head_len = frame::encode_header_fin(
                            &mut head,
                            opcode,
                            compressed,
                            fin,
                            payload.len(),
                        );
                        sent(counted, opcode);
                        // Behind what is already encoded; the scratch goes first.
                        self.pending = Some(Box::new(Pending::Large {
                            head,
                            head_len,
                            payload,
                            written: 0,
                        }));
                        break;
                    }
                    if fin {
                        frame::encode_frame_for(&mut scratch, opcode, compressed, &payload);
                    } else {
                        frame::encode_part(&mut scratch, opcode, false, &payload);
                    }
                    sent(counted, opcode);
                    if scratch.len() >= write_max {
                        break;
                    }
                }
                self.write_scratch(cx, home, &scratch)
            });
            result?;
        }
    }

    /// Writes the encoded `scratch`, now or later: what the socket does not take now is kept
    /// (in front of a large frame that may already be pending).
    fn write_scratch(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        scratch: &[u8],
    ) -> io::Result<()> {
        let mut at = 0;
        while at < scratch.len() {
            match self.io.poll_write(cx, home, &scratch[at..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => at += n,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        if at < scratch.len() {
            let rest = Box::new(Pending::Bytes {
                buf: scratch[at..].to_vec(),
                at: 0,
            });
            // A large frame encoded after these bytes waits behind them.
            if let Some(large) = self.pending.replace(rest) {
                let Pending::Bytes { buf, .. } = self.pending.as_deref_mut().expect("just set")
                else {
                    unreachable!()
                };
                large.append_rest(buf);
            }
        }
        Ok(())
    }

    /// Writes what an earlier write left; `Ready(Ok)` when nothing is left.
    fn poll_pending(&mut self, cx: &mut Context<'_>, home: &Outbound) -> Poll<io::Result<()>> {
        while let Some(pending) = self.pending.as_deref_mut() {
            loop {
                let n = match pending.unwritten() {
                    [[], []] => break,
                    [[], rest] | [rest, []] => ready!(self.io.poll_write(cx, home, rest))?,
                    [head, payload] => ready!(self.io.poll_write_vectored(
                        cx,
                        home,
                        &[IoSlice::new(head), IoSlice::new(payload)]
                    ))?,
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                pending.advance(n);
            }
            self.pending = None;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues the rest of a frame a broadcast wrote in part (`session::outbound`): it goes out
    /// before anything else. The connection was idle then, so nothing else is pending.
    pub(crate) fn push_raw(&mut self, raw: Box<[u8]>) {
        let raw = Pending::Bytes {
            buf: raw.into_vec(),
            at: 0,
        };
        match self.pending.as_deref_mut() {
            None => self.pending = Some(Box::new(raw)),
            // Not expected (see above); kept in order all the same.
            Some(pending) => {
                let behind = std::mem::replace(pending, raw);
                let Pending::Bytes { buf, .. } = pending else {
                    unreachable!()
                };
                behind.append_rest(buf);
            }
        }
    }

    /// Whether a read failed: the stream is out of step, nothing more is decoded.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// After our close frame, on a stream that cannot be decoded any more: ends our side of it
    /// (a FIN, or TLS's close_notify), then reads and discards what the peer still sends until
    /// its end, at most `budget` bytes. Closing with unread input would make the kernel answer
    /// with a reset, and a peer that is still writing would then lose our close frame with it.
    /// `Ready(Ok)` at the peer's end or once the budget is spent.
    pub(crate) fn poll_linger(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        budget: &mut usize,
    ) -> Poll<io::Result<()>> {
        self.input = None;
        if !self.write_shut {
            ready!(self.io.poll_shutdown(cx, home))?;
            self.write_shut = true;
        }
        READ_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            if scratch.len() < READ_SCRATCH {
                *scratch = vec![0; READ_SCRATCH].into_boxed_slice();
            }
            loop {
                let n = ready!(self.io.poll_read(cx, home, &mut scratch[..]))?;
                *budget = budget.saturating_sub(n);
                if n == 0 || *budget == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
        })
    }

    /// Writes a close frame (after anything pending) and flushes.
    pub(crate) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        reason: &mut Option<Option<CloseReason>>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx, home))?;
        if let Some(reason) = reason.take() {
            let mut buf = Vec::with_capacity(MAX_HEADER + 125);
            let mask = self.client.then(crate::client::mask);
            frame::encode_close(&mut buf, reason.as_ref(), mask);
            self.pending = Some(Box::new(Pending::Bytes { buf, at: 0 }));
            ready!(self.poll_pending(cx, home))?;
        }
        self.io.poll_flush(cx, home)
    }
}

/// The frame at the start of `buf`, inflated with the connection's streams when compression
/// was agreed (see [`with_streams`]).
fn decode(
    decoder: &mut Decoder,
    deflate: Option<&DeflateParams>,
    streams: &mut Option<Box<Streams>>,
    buf: &[u8],
    limits: DecodeLimits,
    checked: &mut usize,
) -> Result<Decoded, EndpointError> {
    match deflate {
        None => decoder.decode_checked(buf, limits, checked, None),
        Some(params) => with_streams(params, streams, |s| {
            decoder.decode_checked(buf, limits, checked, Some(&mut s.decompressor))
        }),
    }
}

/// A data message's opcode, whether it goes compressed, and its payload on the wire: the
/// compressed payload for a message of at least `min_size` bytes, unless (without context
/// takeover, where the peer keeps no window of it) compressing did not make it smaller.
fn compress(
    params: &DeflateParams,
    streams: &mut Option<Box<Streams>>,
    opcode: OpCode,
    payload: Bytes,
) -> (OpCode, bool, Bytes) {
    if !params.compresses(payload.len()) {
        return (opcode, false, payload);
    }
    let mut out = Vec::new();
    with_streams(params, streams, |s| {
        s.compressor.compress(&payload, &mut out)
    });
    if out.len() >= payload.len() && params.server_no_context_takeover {
        return (opcode, false, payload);
    }
    (opcode, true, Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection carries a `FrameIo` for its whole life: what compression agreed is
    /// inline (12 bytes) and its zlib state boxed only while held, so a connection that agreed
    /// permessage-deflate without context takeover costs an idle server no more than one that
    /// did not (`bench/run --cases idle,idle-deflate`).
    #[test]
    fn frame_io_size() {
        let size = std::mem::size_of::<FrameIo>();
        eprintln!(
            "FrameIo: {size} bytes, agreement: {} bytes",
            std::mem::size_of::<Option<DeflateParams>>()
        );
        assert!(std::mem::size_of::<Option<DeflateParams>>() <= 12);
        // With the `tls` feature the transport has two boxed variants and no niche left for
        // its tag: 8 bytes more.
        let bound = if cfg!(feature = "tls") { 72 } else { 64 };
        assert!(size <= bound, "FrameIo grew to {size} bytes");
    }

    /// Without takeover on either side, the streams a fragmented compressed message needs are
    /// held for it and let go when it ends.
    #[test]
    fn streams_held_only_inside_a_fragmented_message() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            min_size: 0,
        };
        let mut compressed = Vec::new();
        Compressor::new(&params).compress(b"Hello, Hello, Hello", &mut compressed);
        let (first, second) = compressed.split_at(compressed.len() / 2);
        let frame = |fin: bool, opcode: u8, payload: &[u8]| {
            let mut f = vec![(u8::from(fin) << 7) | opcode, 0x80 | payload.len() as u8];
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(payload);
            f
        };
        let limits = DecodeLimits::whole(1 << 20, 1 << 20);
        let mut decoder = Decoder::default();
        let mut streams = None;
        // RSV1 on the first frame: compressed.
        let head = frame(false, 0x1 | 0x40, first);
        let decoded = decode(
            &mut decoder,
            Some(&params),
            &mut streams,
            &head,
            limits,
            &mut 0,
        );
        assert!(matches!(decoded, Ok(Decoded::Frame { inbound: None, .. })));
        assert!(
            streams.is_some(),
            "the message's stream is held between its frames"
        );
        let tail = frame(true, 0x0, second);
        let decoded = decode(
            &mut decoder,
            Some(&params),
            &mut streams,
            &tail,
            limits,
            &mut 0,
        );
        match decoded {
            Ok(Decoded::Frame {
                inbound: Some(Inbound::Message(crate::Message::Text(t))),
                ..
            }) => assert_eq!(t.as_str(), "Hello, Hello, Hello"),
            other => panic!("{other:?}"),
        }
        assert!(streams.is_none(), "nothing held once the message ended");
        // A message compressed outward holds nothing either.
        let (_, on_wire, _) = compress(
            &params,
            &mut streams,
            OpCode::Text,
            Bytes::from(vec![b'a'; 2048]),
        );
        assert!(on_wire);
        assert!(streams.is_none());
        // With the client's context takeover, the window stays after the message.
        let takeover = DeflateParams {
            client_no_context_takeover: false,
            ..params
        };
        let whole = frame(true, 0x1 | 0x40, &compressed);
        let decoded = decode(
            &mut decoder,
            Some(&takeover),
            &mut streams,
            &whole,
            limits,
            &mut 0,
        );
        assert!(matches!(
            decoded,
            Ok(Decoded::Frame {
                inbound: Some(_),
                ..
            })
        ));
        assert!(streams.is_some());
    }
}
