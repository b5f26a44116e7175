//! The runtime's own RFC 6455 framing (`frame.rs`, `ws.rs`, the close paths of
//! `connection.rs`), pinned byte by byte over real loopback sockets with the hand-driven client
//! of `raw/`:
//!
//! * frames written one byte per TCP write (headers with a pause after every byte) are
//!   reassembled: small, 16-bit and 64-bit lengths, a fragmented text cut inside a character, a
//!   ping between its fragments, an empty frame;
//! * 1,000 frames pipelined in one write are echoed in order; batches larger than the 128 KiB
//!   read scratch, with the 128 KiB cut inside a frame's header or mask, come back intact;
//! * large messages (1 MiB binary, ~200 KiB multi-byte text) echo intact, and every server frame
//!   uses the minimal length form (RFC 6455 5.2): 7-bit below 126, 16-bit up to 65,535, 64-bit
//!   above;
//! * a client that stops reading while the server sends it large messages (`Session::send`, and
//!   `Session::try_send` retried on `Full`), then resumes: every message intact and in order;
//!   with small socket buffers on both sides, the socket takes part of a frame again and again
//!   and the rest waits in `pending` (vectored writes for payloads of 8 KiB or more);
//! * broadcasts to a subscriber that stops reading, then resumes: every message intact and in
//!   order, whether the broadcast wrote it to the idle subscriber's socket itself (in part, the
//!   rest written by the connection task first) or queued it; broadcasts written that way count
//!   as traffic for the subscriber's idle timeout;
//! * a ping inside a fragmented message is answered at once with its payload; of pings sent back
//!   to back, at least the last is answered (the server keeps only the latest pong due, as
//!   tungstenite does: RFC 6455 5.5.3 allows answering only the most recent ping);
//! * close: data and a close frame in one write get their echoes before the close answer, which
//!   carries the client's code, then the TCP end; a close from a handler sends its code and
//!   reason after what was queued, waits for the client's answer, then ends the TCP connection.

mod raw;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use endpoint::prelude::*;
use endpoint::SendError;
use raw::*;

// ---------------------------------------------------------------------------------------------
// Endpoints

/// Echoes text and binary; records `on_close` codes.
struct Echo {
    closes: Closes,
}

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }

    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        self.closes
            .record(session.id().as_u64(), reason.code().as_u16());
    }
}

/// On `send N` or `try N`, sends the `N` messages of [`flood_payload`] with `Session::send` or
/// `Session::try_send` (retried on `Full`, each retry counted), then the text `done`.
struct Flood {
    full: Arc<AtomicUsize>,
}

/// Retries of one `try_send` before the flood gives up (1 ms apart).
const MAX_RETRIES: usize = 20_000;

#[server_endpoint("/flood")]
impl Flood {
    #[on_message]
    async fn text(&mut self, session: Session, command: String) {
        let (mode, n) = command.split_once(' ').expect("`send N` or `try N`");
        let n: usize = n.parse().expect("a count");
        for i in 0..n {
            let payload = Bytes::from(flood_payload(i));
            if mode == "send" {
                if session.send(payload).await.is_err() {
                    return;
                }
                continue;
            }
            let mut retries = 0;
            loop {
                match session.try_send(payload.clone()) {
                    Ok(()) => break,
                    Err(SendError::Full) if retries < MAX_RETRIES => {
                        retries += 1;
                        self.full.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(_) => return,
                }
            }
        }
        let _ = session.send("done").await;
    }
}

/// On `bye CODE`, queues the text `before close`, then closes with `CODE` and `server says bye`.
struct Closer {
    closes: Closes,
}

#[server_endpoint("/closer")]
impl Closer {
    #[on_message]
    fn text(&mut self, session: &Session, text: String) {
        let code: u16 = text
            .strip_prefix("bye ")
            .and_then(|c| c.parse().ok())
            .expect("`bye CODE`");
        session.try_send("before close").expect("queue has room");
        session
            .close(CloseReason::new(code, "server says bye"))
            .expect("a sendable code");
    }

    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        self.closes
            .record(session.id().as_u64(), reason.code().as_u16());
    }
}

/// `/hub?sub`: joins the room `all`. `/hub`: on `pub N`, broadcasts the `N` messages of
/// [`hub_payload`] to `all`, then answers `published`.
struct Hub;

#[server_endpoint("/hub")]
impl Hub {
    #[on_open]
    fn open(&mut self, session: &Session) {
        if session.query() == Some("sub") {
            session.join("all");
        }
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> String {
        let n: usize = text
            .strip_prefix("pub ")
            .and_then(|n| n.parse().ok())
            .expect("`pub N`");
        let room = session.room("all");
        for i in 0..n {
            let delivery = room
                .broadcast(Bytes::from(hub_payload(i)))
                .expect("broadcast");
            assert_eq!(
                delivery.overflowed, 0,
                "a subscriber overflowed at message {i}"
            );
        }
        "published".into()
    }
}

/// Sizes of the hub's messages, cycled: written directly to an idle socket (up to 64 KiB) or
/// queued (larger), on both sides of the 16-bit length form.
const HUB_SIZES: [usize; 8] = [100, 3_000, 16_384, 200, 70_000, 20_000, 125, 9_000];

/// Message `i` of the hub: its index (big endian), then [`pattern`].
fn hub_payload(i: usize) -> Vec<u8> {
    let mut p = pattern(i as u64 + 7000, HUB_SIZES[i % HUB_SIZES.len()]);
    p[..8].copy_from_slice(&(i as u64).to_be_bytes());
    p
}

/// A server with the three endpoints; messages up to 4 MiB, `close_timeout` 3 s (long enough to
/// tell "dropped after the answer" from "dropped at the timeout").
async fn server() -> (Running, Closes) {
    let (server, closes) = echo_server();
    (start(server).await, closes)
}

/// The server of [`server`], not started yet.
fn echo_server() -> (Server, Closes) {
    let closes = Closes::default();
    let mut limits = test_limits();
    limits.max_message_size = 4 << 20;
    limits.max_frame_size = 4 << 20;
    limits.close_timeout = Duration::from_secs(3);
    let (c1, c2) = (closes.clone(), closes.clone());
    let server = Server::new()
        .limits(limits)
        .endpoint_with(move |_| Echo { closes: c1.clone() })
        .endpoint_with(move |_| Closer { closes: c2.clone() })
        .endpoint_with(|_| Flood {
            full: Arc::default(),
        });
    (server, closes)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `len` deterministic bytes, different for each `seed` and without a short period (a torn or
/// shifted frame does not compare equal by accident).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Sizes of the flood's messages, cycled: below, at and above `LARGE` (8 KiB), both sides of
/// the 16-bit/64-bit boundary, and larger than the 128 KiB scratch.
const FLOOD_SIZES: [usize; 10] = [
    100, 7_000, 9_000, 8_191, 8_192, 3_000, 20_000, 65_535, 65_536, 150_000,
];

/// Message `i` of a flood: its index (big endian), then [`pattern`].
fn flood_payload(i: usize) -> Vec<u8> {
    let mut p = pattern(i as u64 + 1000, FLOOD_SIZES[i % FLOOD_SIZES.len()]);
    p[..8].copy_from_slice(&(i as u64).to_be_bytes());
    p
}

/// The header of an unmasked, final server frame: the minimal length form (RFC 6455 5.2).
fn server_header(opcode: u8, len: usize) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    if len < 126 {
        h.push(len as u8);
    } else if len <= 0xFFFF {
        h.push(126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h
}

/// Asserts `got == want`, reporting lengths and the first differing offset instead of dumping
/// megabytes.
fn same(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: bytes differ from offset {at}: got {:?}, want {:?}",
            &got[at..(at + 16).min(got.len())],
            &want[at..(at + 16).min(want.len())]
        );
    }
}

/// Reads the next data frame (skipping pongs, which are collected into `pongs`) and checks it:
/// final, `opcode`, the minimal length form, the payload.
async fn expect_data(
    ws: &mut RawWs,
    what: &str,
    opcode: u8,
    payload: &[u8],
    pongs: &mut Vec<Vec<u8>>,
) {
    loop {
        let (header, frame) = ws
            .read_frame_with_header()
            .await
            .unwrap_or_else(|| panic!("{what}: connection ended"));
        if frame.opcode == PONG {
            pongs.push(frame.payload);
            continue;
        }
        assert_eq!(
            (frame.fin, frame.opcode),
            (true, opcode),
            "{what}: frame {frame:?}"
        );
        assert_eq!(
            header,
            server_header(opcode, payload.len()),
            "{what}: header"
        );
        same(what, &frame.payload, payload);
        return;
    }
}

/// Closes normally from the client side and checks the answer.
async fn close_normally(ws: &mut RawWs) {
    ws.send(&[Frame::close(1000, b"")]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1000));
}

/// A text of at least `len` bytes made of one- to four-byte characters.
fn multibyte_text(len: usize) -> String {
    let unit = "aé€🎉 ñø日本語 ";
    let mut s = String::with_capacity(len + unit.len());
    while s.len() < len {
        s.push_str(unit);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// 1. One byte per write

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_written_one_byte_per_write_are_reassembled_in_order() {
    let (server, closes) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;

    let medium = multibyte_text(300); // 16-bit length
    let big = pattern(1, 70_000); // 64-bit length
    let fragmented = "fragmented 🎉 text";
    let cut = fragmented.find('🎉').unwrap() + 2; // inside the four bytes of 🎉
    let (head, tail) = fragmented.as_bytes().split_at(cut);
    let frames = [
        Frame::text("hi"),
        Frame::text(medium.as_bytes()),
        Frame::binary(big.clone()),
        Frame::text(head).fin(false),
        Frame::new(PING, "trickled ping"),
        Frame::new(CONT, tail),
        Frame::binary(Vec::new()),
    ];
    within(Duration::from_secs(60), "trickling the frames", async {
        for frame in &frames {
            let bytes = frame.encode();
            let header = bytes.len() - frame.payload.len();
            // Every cut of the header (lengths, mask) is seen by the server on its own.
            ws.write_chunks(&bytes[..header], 1, 1, Duration::from_millis(1))
                .await;
            ws.write_chunks(&bytes[header..], 1, 256, Duration::from_millis(1))
                .await;
        }
    })
    .await;

    let mut pongs = Vec::new();
    let expected: [(&str, u8, &[u8]); 5] = [
        ("2-byte form", TEXT, b"hi"),
        ("16-bit form", TEXT, medium.as_bytes()),
        ("64-bit form", BINARY, &big),
        ("fragmented", TEXT, fragmented.as_bytes()),
        ("empty", BINARY, b""),
    ];
    for (what, opcode, payload) in expected {
        expect_data(&mut ws, what, opcode, payload, &mut pongs).await;
    }
    assert_eq!(pongs, [b"trickled ping".to_vec()], "the pong");
    close_normally(&mut ws).await;
    assert_eq!(closes.one().await, 1000);
}

// ---------------------------------------------------------------------------------------------
// 2. Pipelined frames

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_frames_in_one_write_are_echoed_in_order() {
    let (server, _) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let texts: Vec<String> = (0..1000)
        .map(|i| format!("pipelined frame {i:04}"))
        .collect();
    assert!(texts.iter().all(|t| t.len() == 20));
    let frames: Vec<Frame> = texts.iter().map(|t| Frame::text(t.as_bytes())).collect();
    ws.send(&frames).await; // one write_all of 26,000 bytes
    let mut pongs = Vec::new();
    within(Duration::from_secs(20), "1,000 echoes", async {
        for (i, text) in texts.iter().enumerate() {
            expect_data(
                &mut ws,
                &format!("echo #{i}"),
                TEXT,
                text.as_bytes(),
                &mut pongs,
            )
            .await;
        }
    })
    .await;
    assert!(pongs.is_empty());
    close_normally(&mut ws).await;
}

/// A current-thread runtime: the server does not run while the client writes, and its socket's
/// receive buffer (1 MiB, set) holds a whole batch, so its first read of each batch is exactly
/// the 128 KiB scratch (`ws.rs`) and the cuts below land where they are meant to (an
/// instrumented run read 131,072 bytes first for every batch). Correctness is asserted either
/// way.
#[tokio::test]
async fn batches_larger_than_the_read_scratch_are_echoed_intact() {
    let (server, _) = echo_server();
    let server = start_with_receive_buffer(server, 1 << 20).await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let mut pongs = Vec::new();
    const SCRATCH: usize = 128 * 1024;

    // Three 50,000-byte frames in one write: the third straddles the first read.
    let payloads: Vec<Vec<u8>> = (0..3).map(|i| pattern(10 + i, 50_000)).collect();
    let frames: Vec<Frame> = payloads.iter().map(|p| Frame::binary(p.clone())).collect();
    ws.send(&frames).await;
    for (i, p) in payloads.iter().enumerate() {
        expect_data(&mut ws, &format!("50,000 #{i}"), BINARY, p, &mut pongs).await;
    }

    // A first frame that ends `k` bytes before 128 KiB, so the second frame's header (14 bytes for
    // a 64-bit length, 8 for a 16-bit one: length bytes, then mask) is cut after `k` bytes; then a
    // small frame behind it.
    for (k, second_len) in [
        (1, 70_000),
        (2, 70_000),
        (5, 70_000),
        (10, 70_000),
        (13, 70_000),
        (3, 1_000),
        (6, 1_000),
        (7, 1_000),
    ] {
        let first = pattern(100 + k as u64, SCRATCH - k - 14); // 64-bit form: 14 header bytes
        let second = pattern(200 + k as u64, second_len);
        let third = format!("behind the cut at {k}");
        let batch = [
            Frame::binary(first.clone()),
            Frame::binary(second.clone()),
            Frame::text(third.as_bytes()),
        ];
        assert_eq!(batch[0].encode().len(), SCRATCH - k);
        ws.send(&batch).await;
        let what = |n| format!("cut at {k} of a {second_len}-byte frame: frame {n}");
        expect_data(&mut ws, &what(1), BINARY, &first, &mut pongs).await;
        expect_data(&mut ws, &what(2), BINARY, &second, &mut pongs).await;
        expect_data(&mut ws, &what(3), TEXT, third.as_bytes(), &mut pongs).await;
    }
    assert!(pongs.is_empty());
    close_normally(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Large messages and length forms

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_echo_intact_with_the_minimal_length_form() {
    let (server, _) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let mut pongs = Vec::new();

    // Every boundary of the length forms, and of `LARGE` (written from the message itself).
    for len in [
        0,
        1,
        125,
        126,
        127,
        8_191,
        8_192,
        65_535,
        65_536,
        65_537,
        1 << 20,
    ] {
        let payload = pattern(len as u64, len);
        ws.send(&[Frame::binary(payload.clone())]).await;
        let what = format!("binary of {len}");
        expect_data(&mut ws, &what, BINARY, &payload, &mut pongs).await;
    }
    for len in [125, 126, 65_535, 65_536] {
        let text = "t".repeat(len);
        ws.send(&[Frame::text(text.as_bytes())]).await;
        let what = format!("text of {len}");
        expect_data(&mut ws, &what, TEXT, text.as_bytes(), &mut pongs).await;
    }

    // ~200 KiB of one- to four-byte characters and 1 MiB of binary, back to back in one write.
    let text = multibyte_text(200 * 1024);
    let binary = pattern(7, 1 << 20);
    ws.send(&[Frame::text(text.as_bytes()), Frame::binary(binary.clone())])
        .await;
    expect_data(&mut ws, "200 KiB text", TEXT, text.as_bytes(), &mut pongs).await;
    expect_data(&mut ws, "1 MiB binary", BINARY, &binary, &mut pongs).await;
    assert!(pongs.is_empty());
    close_normally(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// 4. A client that stops reading

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_then_resumes_gets_every_message_intact_in_order() {
    let full = Arc::new(AtomicUsize::new(0));
    let f = full.clone();
    let server = start_with_send_buffer(
        Server::new()
            .limits(test_limits())
            .endpoint_with(move |_| Flood { full: f.clone() }),
        SNDBUF,
    )
    .await;
    // About 4 MB per run: more than the outbound queue (1 MiB) and, with the small socket
    // buffers below, many times what the sockets hold. In an instrumented run, the server's
    // writes were cut inside a frame hundreds of times: inside a vectored write (~120), inside a
    // large payload (~550), and inside a batch of small frames with a large one behind (~20).
    const N: usize = 120;
    /// The server's send buffer: small, so its writes stop part-way through frames often.
    const SNDBUF: u32 = 16 * 1024;
    /// The client's receive buffer: small, so the server's writes stop and restart in small steps.
    const RCVBUF: u32 = 4096;
    for mode in ["send", "try"] {
        let mut ws = RawWs::connect_with_recv_buffer(server.addr, "/flood", Some(RCVBUF)).await;
        let full_before = full.load(Ordering::SeqCst);
        ws.send(&[Frame::text(format!("{mode} {N}"))]).await;
        // Not reading: the socket fills, frames are left half written.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut pongs = Vec::new();
        within(Duration::from_secs(60), "reading the flood", async {
            for i in 0..N {
                let what = format!("{mode}: message {i}");
                expect_data(&mut ws, &what, BINARY, &flood_payload(i), &mut pongs).await;
                // Resume in bursts, so the writer stalls and restarts again.
                if i % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            expect_data(&mut ws, "done", TEXT, b"done", &mut pongs).await;
        })
        .await;
        assert!(pongs.is_empty(), "{mode}: unexpected pongs");
        if mode == "try" {
            // The queue filled: the socket stopped taking bytes while the client did not read,
            // so the writes really went through `pending`.
            assert!(
                full.load(Ordering::SeqCst) > full_before,
                "try_send never saw a full queue: the test did not stall the writer"
            );
        }
        close_normally(&mut ws).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Pings

#[tokio::test]
async fn a_ping_inside_a_fragmented_message_is_answered_at_once() {
    let (server, _) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let text = multibyte_text(20_000); // the echo is written from the message (>= 8 KiB)
    let bytes = text.as_bytes();
    let (a, b, c) = (&bytes[..1001], &bytes[1001..12_003], &bytes[12_003..]);

    // The message is incomplete: the pong cannot wait for it.
    ws.send(&[Frame::text(a).fin(false), Frame::new(PING, "first ping")])
        .await;
    let (header, pong) = ws.read_frame_with_header().await.expect("first pong");
    assert_eq!((pong.opcode, &pong.payload[..]), (PONG, &b"first ping"[..]));
    assert_eq!(header, server_header(PONG, 10));

    // A ping between the last two fragments, all in one write: the pong is written before the
    // batch holding the echo.
    ws.send(&[
        Frame::new(CONT, b).fin(false),
        Frame::new(PING, "second ping"),
        Frame::new(CONT, c),
    ])
    .await;
    let pong = ws.read_frame().await.expect("second pong");
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (PONG, &b"second ping"[..])
    );
    let mut pongs = Vec::new();
    expect_data(&mut ws, "fragmented text", TEXT, bytes, &mut pongs).await;
    assert!(pongs.is_empty());

    // An empty ping gets an empty pong.
    ws.send(&[Frame::new(PING, "")]).await;
    let (header, pong) = ws.read_frame_with_header().await.expect("empty pong");
    assert_eq!((pong.opcode, pong.payload.len()), (PONG, 0));
    assert_eq!(header, [0x8A, 0]);
    close_normally(&mut ws).await;
}

/// The server keeps one pong due, the latest (like tungstenite; RFC 6455 5.5.3: "an endpoint MAY
/// elect to send a Pong frame for only the most recently processed Ping frame"): of pings read
/// together only the last is answered, and each answer carries its ping's payload.
#[tokio::test]
async fn of_pings_sent_back_to_back_at_least_the_last_is_answered() {
    let (server, _) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let pings: Vec<Vec<u8>> = (0..10).map(|i| format!("ping {i}").into_bytes()).collect();
    let mut frames: Vec<Frame> = pings.iter().map(|p| Frame::new(PING, p.clone())).collect();
    frames.push(Frame::text("after the pings"));
    ws.send(&frames).await;

    let mut pongs = Vec::new();
    expect_data(&mut ws, "text", TEXT, b"after the pings", &mut pongs).await;
    assert!(!pongs.is_empty(), "no pong at all");
    assert_eq!(
        pongs.last(),
        pings.last(),
        "the last ping's pong: {pongs:?}"
    );
    // Answers, if several, are for distinct pings, in the order sent.
    let indices: Vec<usize> = pongs
        .iter()
        .map(|p| {
            pings
                .iter()
                .position(|q| q == p)
                .unwrap_or_else(|| panic!("a pong for no ping: {p:?}"))
        })
        .collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    close_normally(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Close

#[tokio::test]
async fn data_and_close_in_one_write_are_echoed_before_the_close_answer() {
    let (server, closes) = server().await;
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let binary = pattern(3, 20_000); // written from the message (>= 8 KiB)
    ws.send(&[
        Frame::text("last words"),
        Frame::binary(binary.clone()),
        Frame::close(4001, b"client done"),
    ])
    .await;
    let mut pongs = Vec::new();
    expect_data(&mut ws, "text echo", TEXT, b"last words", &mut pongs).await;
    expect_data(&mut ws, "binary echo", BINARY, &binary, &mut pongs).await;
    let close = ws.read_frame().await.expect("the close answer");
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(4001), "the client's code echoed");
    assert!(
        ws.ended_within(Duration::from_secs(2)).await,
        "the server keeps the TCP connection after the close handshake"
    );
    assert_eq!(closes.one().await, 4001);
}

#[tokio::test]
async fn a_close_from_a_handler_sends_code_and_reason_then_ends_after_the_answer() {
    let (server, closes) = server().await;
    let mut ws = RawWs::connect(server.addr, "/closer").await;
    ws.send(&[Frame::text("bye 4002")]).await;
    let mut pongs = Vec::new();
    expect_data(&mut ws, "queued first", TEXT, b"before close", &mut pongs).await;
    let (header, close) = ws.read_frame_with_header().await.expect("the close frame");
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(4002));
    assert_eq!(&close.payload[2..], b"server says bye");
    assert_eq!(header, server_header(CLOSE, 2 + 15));

    // The server waits for the answer (close_timeout is 3 s)...
    assert!(
        !ws.ended_within(Duration::from_millis(300)).await,
        "the server dropped the connection without waiting for the close answer"
    );
    // ...and ends the TCP connection once it has it, well before the timeout.
    ws.send(&[Frame::close(4002, b"")]).await;
    let t0 = Instant::now();
    assert!(
        ws.ended_within(Duration::from_millis(1500)).await,
        "the server kept the connection after the close answer"
    );
    assert!(t0.elapsed() < Duration::from_millis(1500));
    assert_eq!(closes.one().await, 4002);
}

// ---------------------------------------------------------------------------------------------
// Broadcasts written to the subscriber's socket by the publisher

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_to_a_subscriber_that_stops_reading_arrive_intact_in_order() {
    /// Small on both sides (as in the flood test above), so that direct writes are cut.
    const SNDBUF: u32 = 16 * 1024;
    const RCVBUF: u32 = 4096;
    /// About 690 KB per round: within the subscriber's 1 MiB queue, many times the sockets.
    const N: usize = 48;
    let server = start_with_send_buffer(
        Server::new().limits(test_limits()).endpoint_with(|_| Hub),
        SNDBUF,
    )
    .await;
    let mut sub = RawWs::connect_with_recv_buffer(server.addr, "/hub?sub", Some(RCVBUF)).await;
    let mut publisher = RawWs::connect(server.addr, "/hub").await;
    let mut pongs = Vec::new();
    for round in 0..3 {
        // Published while the subscriber reads nothing: the first messages go to its idle
        // socket directly, until the socket takes only part of one; the rest is queued.
        publisher.send(&[Frame::text(format!("pub {N}"))]).await;
        expect_data(&mut publisher, "published", TEXT, b"published", &mut pongs).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        within(Duration::from_secs(60), "reading the broadcasts", async {
            for i in 0..N {
                let what = format!("round {round}: message {i}");
                expect_data(&mut sub, &what, BINARY, &hub_payload(i), &mut pongs).await;
                if i % 16 == 15 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
        .await;
        // Read up: the subscriber is idle again, and the next round starts with direct writes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pongs.is_empty(), "unexpected pongs");
    close_normally(&mut sub).await;
    close_normally(&mut publisher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_written_directly_count_as_traffic_for_the_idle_timeout() {
    let mut limits = test_limits();
    limits.idle_timeout = Some(Duration::from_millis(400));
    let server = start(Server::new().limits(limits).endpoint_with(|_| Hub)).await;
    let mut sub = RawWs::connect(server.addr, "/hub?sub").await;
    let mut publisher = RawWs::connect(server.addr, "/hub").await;
    let mut pongs = Vec::new();
    // One small broadcast every 100 ms for 1.2 s: the subscriber, which sends nothing, reads
    // each one as it comes (so its socket is idle, and each is written directly).
    for i in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publisher.send(&[Frame::text("pub 1")]).await;
        expect_data(&mut publisher, "published", TEXT, b"published", &mut pongs).await;
        let what = format!("broadcast {i}");
        expect_data(&mut sub, &what, BINARY, &hub_payload(0), &mut pongs).await;
    }
    // Then silence: the idle timeout closes it (1001).
    let t0 = Instant::now();
    let seen = within(Duration::from_secs(5), "the idle close", sub.read_close()).await;
    assert_eq!(seen, CloseSeen::Code(1001), "idle timeout close");
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(3),
        "idle close after {elapsed:?}"
    );
}
