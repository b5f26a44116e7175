//! permessage-deflate (RFC 7692) over real sockets, with a hand-driven client that compresses
//! with flate2 (zlib-rs, raw deflate) and reads the RSV1 bit itself:
//!
//! * negotiation: the `101`'s `Sec-WebSocket-Extensions` for each kind of offer, declined
//!   offers, off by default, on or off per endpoint;
//! * compressed messages both ways, fragmented ones, small ones sent plain, context takeover
//!   across messages;
//! * bombs: a small compressed message inflating far past the limit closes with 1009, and RSV1
//!   where it may not be closes with 1002, invalid deflate data with 1007;
//! * a broadcast to plain, shared-compression and context-takeover recipients: each gets a
//!   frame it can read;
//! * memory: 1,000 idle connections that agreed compression cost what 1,000 plain ones do.
//!
//! The tests run one at a time (`raw::serial`): two of them measure this process's memory.

mod raw;

use std::time::Duration;

use endpoint::{
    Compression, Endpoint, EndpointConfig, HookResult, Limits, Message, Server, Session,
};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use raw::{bounded, rss_kib, start, test_limits, Running, KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Echoes messages; "broadcast:<text>" sends `<text>` to every session of the endpoint.
#[derive(Default)]
struct Echo;

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/echo")
    }
    async fn on_message(&mut self, session: &Session, message: Message) -> HookResult {
        if message.as_text() == Some("extensions?") {
            let agreed = session.extensions().unwrap_or_else(|| "none".to_owned());
            return Ok(Some(Message::text(agreed)));
        }
        if let Some(rest) = message.as_text().and_then(|t| t.strip_prefix("broadcast:")) {
            let _ = session.broadcast(rest.to_owned())?;
            return Ok(None);
        }
        Ok(Some(message))
    }
}

/// The same echo, never compressing whatever the server says.
#[derive(Default)]
struct Plain;

impl Endpoint for Plain {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/plain").compression(false)
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
}

/// Compressing on its own, on a server without compression.
#[derive(Default)]
struct Packed;

impl Endpoint for Packed {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/packed").compression(true)
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
}

fn limits(compression: Compression) -> Limits {
    let mut limits = test_limits();
    limits.max_message_size = 1 << 20;
    limits.max_frame_size = 1 << 20;
    limits.compression = compression;
    limits
}

async fn server(compression: Compression) -> Running {
    start(
        Server::new()
            .limits(limits(compression))
            .endpoint::<Echo>()
            .endpoint::<Plain>()
            .endpoint::<Packed>(),
    )
    .await
}

/// A frame from the server.
#[derive(Debug)]
struct Got {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A client speaking permessage-deflate by hand.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The `Sec-WebSocket-Extensions` of the `101`, if any.
    extensions: Option<String>,
    /// Made on first use: a zlib compressor is some 300 KiB, and most clients here never
    /// compress (the memory test counts this process's RSS).
    deflate: Option<Compress>,
    inflate: Option<Decompress>,
    /// Whether each side keeps its window across messages.
    client_takeover: bool,
    server_takeover: bool,
}

impl Client {
    async fn connect(server: &Running, path: &str, offer: Option<&str>) -> Client {
        bounded("handshake", async {
            let mut stream = TcpStream::connect(server.addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut req = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n"
            );
            if let Some(offer) = offer {
                req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
            }
            req.push_str("\r\n");
            stream.write_all(req.as_bytes()).await.expect("write");
            let (status, head, rest) = raw::read_response_head(&mut stream)
                .await
                .expect("response");
            assert_eq!(status, 101, "{head}");
            let extensions = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("sec-websocket-extensions")
                    .then(|| v.trim().to_owned())
            });
            let agreed = extensions.clone().unwrap_or_default();
            Client {
                stream,
                buf: rest,
                client_takeover: !agreed.contains("client_no_context_takeover"),
                server_takeover: !agreed.contains("server_no_context_takeover"),
                extensions,
                deflate: None,
                inflate: None,
            }
        })
        .await
    }

    /// Compresses one message (RFC 7692 7.2.1: sync flush, tail removed).
    fn deflater(&mut self) -> &mut Compress {
        self.deflate
            .get_or_insert_with(|| Compress::new(flate2::Compression::default(), false))
    }

    fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let takeover = self.client_takeover;
        let deflate = self.deflater();
        if !takeover {
            deflate.reset();
        }
        let mut out = Vec::with_capacity(payload.len() + 64);
        let start = deflate.total_in();
        loop {
            let done = (deflate.total_in() - start) as usize;
            deflate
                .compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
                .unwrap();
            if (deflate.total_in() - start) as usize == payload.len() && out.len() < out.capacity()
            {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    /// Inflates a message the server compressed.
    fn inflate(&mut self, compressed: &[u8]) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(input.len() * 8 + 1024);
        let takeover = self.server_takeover;
        let inflate = self.inflate.get_or_insert_with(|| Decompress::new(false));
        let start = inflate.total_in();
        loop {
            let done = (inflate.total_in() - start) as usize;
            inflate
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
                .expect("the server's deflate data");
            if (inflate.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        if !takeover {
            inflate.reset(false);
        }
        out
    }

    async fn write_frame(&mut self, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
        let mut f = raw::Frame::new(opcode, payload.to_vec()).fin(fin);
        if rsv1 {
            f = f.rsv(0b100);
        }
        let bytes = f.encode();
        let _ = bounded("write", self.stream.write_all(&bytes)).await;
    }

    /// Sends a message, compressed (RSV1) or not.
    async fn send(&mut self, opcode: u8, payload: &[u8], compressed: bool) {
        if compressed {
            let data = self.compress(payload);
            self.write_frame(true, true, opcode, &data).await;
        } else {
            self.write_frame(true, false, opcode, payload).await;
        }
    }

    /// The next frame, skipping pings and pongs; `None` at the end of the stream.
    async fn frame(&mut self) -> Option<Got> {
        bounded("a frame", async {
            loop {
                if let Some((got, used)) = parse(&self.buf) {
                    self.buf.drain(..used);
                    if matches!(got.opcode, PING | PONG) {
                        continue;
                    }
                    return Some(got);
                }
                let mut chunk = [0u8; 16384];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
    }

    /// The next data message, inflated when it came compressed: (opcode, compressed, payload).
    async fn message(&mut self) -> (u8, bool, Vec<u8>) {
        let first = self.frame().await.expect("a message");
        assert!(
            first.fin,
            "the server sends messages in one frame: {first:?}"
        );
        assert!(matches!(first.opcode, TEXT | BINARY), "{first:?}");
        if first.rsv1 {
            let data = self.inflate(&first.payload);
            (first.opcode, true, data)
        } else {
            (first.opcode, false, first.payload)
        }
    }

    async fn close_code(&mut self) -> Option<u16> {
        while let Some(f) = self.frame().await {
            if f.opcode == CLOSE {
                return (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
            }
        }
        None
    }
}

fn parse(buf: &[u8]) -> Option<(Got, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    assert_eq!(buf[0] & 0x30, 0, "RSV2 and RSV3 are never set");
    let (len, at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (usize::from(n), 2),
    };
    if buf.len() < at + len {
        return None;
    }
    let got = Got {
        fin: buf[0] & 0x80 != 0,
        rsv1: buf[0] & 0x40 != 0,
        opcode: buf[0] & 0x0F,
        payload: buf[at..at + len].to_vec(),
    };
    Some((got, at + len))
}

/// Words in a pseudo-random order, `n` bytes: compresses to about half, and a repeat of it,
/// with the window kept, to a few bytes.
fn words(n: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "room", "lobby", "hello", "ada", "grace", "linus", "message", "today", "rust", "java",
        "socket", "frame", "close", "ping", "window", "deflate",
    ];
    let mut x: u32 = 0x2545_f491;
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(n);
    out
}

/// Text that compresses well, `n` bytes.
fn chat(n: usize) -> Vec<u8> {
    let line = br#"{"room":"lobby","user":"ada","text":"hello, how is everyone today?"}"#;
    line.iter().copied().cycle().take(n).collect()
}

#[tokio::test]
async fn negotiation_answers_each_kind_of_offer() {
    let _serial = raw::serial().await;
    let on = server(Compression::enabled()).await;
    let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let table: &[(Option<&str>, Option<String>)] = &[
        (None, None),
        // Firefox, Chrome, Node's ws, Python's websockets.
        (Some("permessage-deflate"), Some(both.into())),
        (
            Some("permessage-deflate; client_max_window_bits"),
            Some(format!("{both}; client_max_window_bits=15")),
        ),
        (
            Some("permessage-deflate; client_max_window_bits=12"),
            Some(format!("{both}; client_max_window_bits=12")),
        ),
        (
            Some("permessage-deflate; server_max_window_bits=10"),
            Some(format!("{both}; server_max_window_bits=10")),
        ),
        // Declined offers: unknown parameter, duplicate, bad value, window 8 (zlib cannot).
        (Some("permessage-deflate; foo"), None),
        (Some("permessage-deflate; server_no_context_takeover; server_no_context_takeover"), None),
        (Some("permessage-deflate; client_max_window_bits=16"), None),
        (Some("permessage-deflate; server_max_window_bits=8"), None),
        (Some("x-webkit-deflate-frame"), None),
        // The first acceptable of several offers.
        (
            Some("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11"),
            Some(format!("{both}; server_max_window_bits=11")),
        ),
    ];
    for (offer, want) in table {
        let client = Client::connect(&on, "/echo", *offer).await;
        assert_eq!(&client.extensions, want, "offer {offer:?}");
    }
    // The session knows what was agreed (Jakarta's getNegotiatedExtensions()).
    let mut c = Client::connect(&on, "/echo", Some("permessage-deflate")).await;
    c.send(TEXT, b"extensions?", false).await;
    assert_eq!(c.message().await, (TEXT, false, both.as_bytes().to_vec()));
    let mut c = Client::connect(&on, "/echo", None).await;
    c.send(TEXT, b"extensions?", false).await;
    assert_eq!(c.message().await, (TEXT, false, b"none".to_vec()));
    // Off for one endpoint of a compressing server, on for one of a plain server, off by default.
    let plain = Client::connect(&on, "/plain", Some("permessage-deflate")).await;
    assert_eq!(plain.extensions, None);
    let off = server(Compression::disabled()).await;
    assert_eq!(
        Client::connect(&off, "/echo", Some("permessage-deflate"))
            .await
            .extensions,
        None
    );
    assert_eq!(
        Client::connect(&off, "/packed", Some("permessage-deflate"))
            .await
            .extensions
            .as_deref(),
        Some(both)
    );
    assert_eq!(Limits::default().compression, Compression::disabled());
}

#[tokio::test]
async fn compressed_messages_both_ways_fragmented_and_small() {
    let _serial = raw::serial().await;
    let server = server(Compression::enabled()).await;
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    for n in [1024, 5000, 70_000, 300_000] {
        let text = chat(n);
        c.send(TEXT, &text, true).await;
        let (op, compressed, got) = c.message().await;
        assert_eq!((op, compressed), (TEXT, true), "{n} bytes");
        assert_eq!(got, text, "{n} bytes");
    }
    // A small message goes plain (under min_size), whichever way it came.
    c.send(BINARY, b"tiny", true).await;
    assert_eq!(c.message().await, (BINARY, false, b"tiny".to_vec()));
    c.send(TEXT, b"tiny too", false).await;
    assert_eq!(c.message().await, (TEXT, false, b"tiny too".to_vec()));
    // A compressed message in four frames: RSV1 on the first only.
    let text = chat(40_000);
    let data = c.compress(&text);
    let parts: Vec<&[u8]> = data.chunks(data.len() / 4 + 1).collect();
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONT };
        c.write_frame(i == parts.len() - 1, i == 0, opcode, part)
            .await;
    }
    let (_, _, got) = c.message().await;
    assert_eq!(got, text);
}

/// The queue counts a message by its own bytes, and releases the same when it leaves
/// compressed: many compressed echoes through a 64 KiB queue never run out of room (they did,
/// once: what was released was the compressed size, and the queue filled by the difference).
#[tokio::test]
async fn many_compressed_messages_through_a_small_queue_all_come_back() {
    let _serial = raw::serial().await;
    let mut limits = limits(Compression::enabled());
    limits.outbound_queue_bytes = 64 * 1024;
    let server = start(Server::new().limits(limits).endpoint::<Echo>()).await;
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    let text = words(8 * 1024);
    for i in 0..200 {
        c.send(TEXT, &text, true).await;
        let (op, compressed, got) = c.message().await;
        assert!(op == TEXT && compressed && got == text, "message {i}");
    }
    // And through a broadcast (shared compression), counted the same way.
    for i in 0..200 {
        let mut msg = b"broadcast:".to_vec();
        msg.extend_from_slice(&text);
        c.send(TEXT, &msg, true).await;
        let (_, compressed, got) = c.message().await;
        assert!(compressed && got == text, "broadcast {i}");
    }
}

#[tokio::test]
async fn context_takeover_keeps_both_windows_across_messages() {
    let _serial = raw::serial().await;
    // Level 9: zlib's fast levels do not look back far enough to find the repeat.
    let server = server(Compression::enabled().context_takeover(true, true).level(9)).await;
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    assert_eq!(c.extensions.as_deref(), Some("permessage-deflate"));
    assert!(c.client_takeover && c.server_takeover);
    let text = words(4000);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        // The same message again: with the window kept, it compresses to a few bytes.
        let data = c.compress(&text);
        sizes.push(data.len());
        c.write_frame(true, true, TEXT, &data).await;
        let first = c.frame().await.expect("echo");
        assert!(first.rsv1);
        sizes.push(first.payload.len());
        assert_eq!(c.inflate(&first.payload), text);
    }
    // The connection holds a compressor and a decompressor, and says so.
    let stats = server.handle.stats();
    assert!(
        stats.compressors_held >= 1 && stats.decompressors_held >= 1,
        "{stats:?}"
    );
    assert!(
        sizes[2] < sizes[0] / 10 && sizes[3] < sizes[1] / 10,
        "the second message reuses the window: {sizes:?}"
    );
}

#[tokio::test]
async fn a_compression_bomb_closes_with_1009_without_inflating_it() {
    let _serial = raw::serial().await;
    let server = server(Compression::enabled()).await;
    let before = rss_kib();
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    // 256 MiB of zeros compress to about 256 KiB: a frame within the 1 MiB frame limit.
    let zeros = vec![0u8; 1 << 20];
    let mut data = Vec::new();
    for _ in 0..255 {
        c.deflater()
            .compress_vec(&zeros, &mut data, FlushCompress::None)
            .unwrap();
        data.reserve(1 << 16);
    }
    let tail = c.compress(&zeros);
    data.extend_from_slice(&tail);
    assert!(data.len() < 1 << 20, "{} compressed bytes", data.len());
    c.write_frame(true, true, BINARY, &data).await;
    assert_eq!(c.close_code().await, Some(1009));
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test]
async fn rsv1_where_it_may_not_be_is_1002_and_bad_deflate_data_1007() {
    let _serial = raw::serial().await;
    let server = server(Compression::enabled()).await;
    // On a continuation frame.
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    c.write_frame(false, false, TEXT, b"part").await;
    c.write_frame(true, true, CONT, b"rest").await;
    assert_eq!(c.close_code().await, Some(1002));
    // On a control frame.
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    c.write_frame(true, true, PING, b"").await;
    assert_eq!(c.close_code().await, Some(1002));
    // Without an agreement.
    let mut c = Client::connect(&server, "/echo", None).await;
    c.write_frame(
        true,
        true,
        TEXT,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    )
    .await;
    assert_eq!(c.close_code().await, Some(1002));
    // Not deflate data.
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    c.write_frame(true, true, TEXT, &[0xff; 40]).await;
    assert_eq!(c.close_code().await, Some(1007));
    // The RFC 7692 example ("Hello", compressed) is understood.
    let mut c = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    c.write_frame(
        true,
        true,
        TEXT,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    )
    .await;
    assert_eq!(c.message().await, (TEXT, false, b"Hello".to_vec()));
}

#[tokio::test]
async fn a_broadcast_reaches_plain_shared_and_takeover_recipients_each_readably() {
    let _serial = raw::serial().await;
    let server = server(Compression::enabled().context_takeover(true, true)).await;
    let mut plain = Client::connect(&server, "/echo", None).await;
    let mut shared = Client::connect(
        &server,
        "/echo",
        Some("permessage-deflate; server_no_context_takeover"),
    )
    .await;
    let mut own = Client::connect(&server, "/echo", Some("permessage-deflate")).await;
    assert!(!shared.server_takeover && own.server_takeover);
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let mut t = chat(3000);
            t.extend_from_slice(format!(" #{i}").as_bytes());
            t
        })
        .collect();
    for t in &texts {
        let mut msg = b"broadcast:".to_vec();
        msg.extend_from_slice(t);
        plain.send(TEXT, &msg, false).await;
        for (who, c, compressed) in [
            ("plain", &mut plain, false),
            ("shared", &mut shared, true),
            ("takeover", &mut own, true),
        ] {
            let (op, was_compressed, got) = c.message().await;
            assert_eq!((op, was_compressed), (TEXT, compressed), "{who}");
            assert_eq!(&got, t, "{who}");
        }
    }
}

#[tokio::test]
async fn idle_connections_that_agreed_compression_cost_what_plain_ones_do() {
    let _serial = raw::serial().await;
    let server = server(Compression::enabled()).await;
    async fn open(server: &Running, offer: Option<&str>, n: usize) -> (Vec<Client>, u64) {
        let before = rss_kib();
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(Client::connect(server, "/echo", offer).await);
        }
        // Every connection is up and idle once each has answered a round trip.
        for c in clients.iter_mut().step_by(100) {
            c.send(TEXT, b"x", false).await;
            c.message().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        (clients, rss_kib().saturating_sub(before))
    }
    // A first batch warms the process up (scratch buffers, the runtime's slabs), then 1,000
    // plain, 1,000 compressing and 1,000 plain again, all kept open: the test process holds
    // both ends of 4,000 connections, 8,000 descriptors.
    let (warm, _) = open(&server, None, 1000).await;
    let (plain, plain_kib) = open(&server, None, 1000).await;
    let (deflate, deflate_kib) = open(&server, Some("permessage-deflate"), 1000).await;
    let (plain_again, again_kib) = open(&server, None, 1000).await;
    assert!(deflate.iter().all(|c| c.extensions.is_some()));
    // No takeover: no zlib state held by any of them.
    let stats = server.handle.stats();
    assert_eq!((stats.compressors_held, stats.decompressors_held), (0, 0));
    eprintln!(
        "1,000 idle connections: plain {plain_kib} KiB, compressing {deflate_kib} KiB, \
         plain again {again_kib} KiB"
    );
    // Within 256 B per connection of the plain ones (the runtime holds no zlib state for them).
    assert!(
        deflate_kib <= plain_kib.max(again_kib) + 250,
        "compressing connections: {deflate_kib} KiB for 1,000, plain: {plain_kib} and \
         {again_kib} KiB"
    );
    drop((warm, plain, deflate, plain_again));
}

/// Text in parts: each part's answer is its length, a `|`, and whether it was the last.
#[derive(Default)]
struct InParts;

impl Endpoint for InParts {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/parts").compression(true)
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
    async fn on_part(&mut self, _: &Session, part: Message, last: bool) -> HookResult {
        let text = part
            .as_text()
            .expect("a text part is valid UTF-8 by itself");
        Ok(Some(Message::text(format!("{}|{last}|{text}", text.len()))))
    }
    fn message_mode(kind: endpoint::PayloadKind) -> endpoint::MessageMode {
        match kind {
            endpoint::PayloadKind::Text => endpoint::MessageMode::Parts,
            _ => endpoint::MessageMode::Whole,
        }
    }
}

/// A compressed message in parts is inflated frame by frame: each frame's part is answered
/// before the next frame is sent, the parts hold whole characters, and together they are the
/// message.
#[tokio::test]
async fn a_compressed_message_in_parts_is_delivered_frame_by_frame() {
    let _serial = raw::serial().await;
    let server = start(
        Server::new()
            .limits(limits(Compression::disabled()))
            .endpoint::<InParts>(),
    )
    .await;
    let mut c = Client::connect(&server, "/parts", Some("permessage-deflate")).await;
    assert!(c.extensions.is_some());
    let text: Vec<u8> = "grüße, €uro! ".repeat(3000).into_bytes();
    let data = c.compress(&text);
    let pieces: Vec<&[u8]> = data.chunks(data.len() / 5 + 1).collect();
    let mut got = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i == pieces.len() - 1;
        c.write_frame(last, i == 0, if i == 0 { TEXT } else { CONT }, piece)
            .await;
        let (_, _, answer) = c.message().await;
        let answer = String::from_utf8(answer).unwrap();
        let mut fields = answer.splitn(3, '|');
        let (len, was_last, part) = (
            fields.next().unwrap().parse::<usize>().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        assert_eq!(len, part.len());
        assert_eq!(was_last, last.to_string(), "part {i}");
        got.extend_from_slice(part.as_bytes());
    }
    assert_eq!(got, text);
}
