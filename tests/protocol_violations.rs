//! RFC 6455 protocol violations, written by hand on a raw TCP socket after a hand-made opening
//! handshake. Each case asserts the status code of the close frame the server sends, and that
//! the endpoint's `on_close` ran exactly once (with the same code).
//!
//! | violation | RFC 6455 | code |
//! |---|---|---|
//! | unmasked client frame | 5.1 | 1002 |
//! | RSV1/RSV2/RSV3 set without an extension | 5.2 | 1002 |
//! | unknown opcode (0x3 data, 0xB control) | 5.2 | 1002 |
//! | control frame with more than 125 bytes of payload | 5.5 | 1002 |
//! | fragmented control frame (ping, FIN=0) | 5.5 | 1002 |
//! | continuation frame without a message to continue | 5.4 | 1002 |
//! | new data message inside a fragmented one | 5.4 | 1002 |
//! | invalid UTF-8 in a text message (also split across fragments) | 8.1 | 1007 |
//! | length header claiming 2^40 bytes | 10.4 | 1009, at once |
//! | close frame with an invalid code (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000) | 7.4.1 | 1002 |
//! | close frame with a 1-byte payload | 5.5.1 | 1002 |
//! | close frame with an invalid UTF-8 reason | 5.5.1, 8.1 | 1007 |
//!
//! On the last row: RFC 6455 says the close reason is UTF-8 (5.5.1) and that an endpoint that
//! finds invalid UTF-8 where it must interpret UTF-8 fails the connection (8.1); 1007 is the code
//! for "data inconsistent with the type of the message" (7.4.1). Autobahn (case 7.5.1) accepts
//! 1002 or 1007. tungstenite reports it as `Error::Utf8`, which the driver maps to 1007; that is
//! what this suite pins.

mod raw;

use std::time::{Duration, Instant};

use endpoint::{CloseReason, Endpoint, EndpointConfig, HookResult, Message, Server, Session};
use raw::*;

/// Echoes text and binary; records `on_close` codes by session id.
struct Probe {
    closes: Closes,
}

impl Endpoint for Probe {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/probe")
    }

    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }

    async fn on_close(&mut self, session: &Session, reason: CloseReason) {
        self.closes
            .record(session.id().as_u64(), reason.code().as_u16());
    }
}

async fn probe_server() -> (Running, Closes) {
    let closes = Closes::default();
    let c = closes.clone();
    let server = Server::new()
        .limits(test_limits())
        .endpoint_with(move |_| Probe { closes: c.clone() });
    (start(server).await, closes)
}

/// Writes `frames` after a handshake; the server must close with `code`, and `on_close` must
/// run once with `code`.
async fn violation(what: &str, frames: &[Frame], code: u16) {
    let (server, closes) = probe_server().await;
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    ws.send(frames).await;
    let seen = ws.read_close().await;
    assert_eq!(
        seen,
        CloseSeen::Code(code),
        "{what}: close frame from the server"
    );
    ws.finish(code).await;
    let on_close = closes.one().await;
    assert_eq!(on_close, code, "{what}: code given to on_close");
    assert_eq!(
        server.open_sessions(),
        0,
        "{what}: session still counted open"
    );
}

#[tokio::test]
async fn a_well_formed_exchange_is_echoed() {
    let _serial = serial().await;
    // The baseline the other cases deviate from: masked, fragmented and control frames.
    let (server, closes) = probe_server().await;
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    ws.echo("hello").await;
    ws.send(&[
        Frame::text("frag").fin(false),
        Frame::new(PING, "in between"),
        Frame::new(CONT, "mented"),
    ])
    .await;
    let pong = ws.read_frame().await.expect("pong");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"in between"[..])
    );
    let echo = ws.read_frame().await.expect("echo");
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (TEXT, &b"fragmented"[..])
    );
    ws.send(&[Frame::close(1000, b"bye")]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1000));
    assert_eq!(closes.one().await, 1000);
}

#[tokio::test]
async fn unmasked_client_frame_is_1002() {
    let _serial = serial().await;
    violation("unmasked text", &[Frame::text("hi").unmasked()], 1002).await;
    violation("unmasked ping", &[Frame::new(PING, "hi").unmasked()], 1002).await;
}

#[tokio::test]
async fn reserved_bits_are_1002() {
    let _serial = serial().await;
    for (name, rsv) in [
        ("RSV1", 0b100),
        ("RSV2", 0b010),
        ("RSV3", 0b001),
        ("all", 0b111),
    ] {
        violation(name, &[Frame::text("hi").rsv(rsv)], 1002).await;
    }
    violation("RSV1 on a ping", &[Frame::new(PING, "").rsv(0b100)], 1002).await;
}

#[tokio::test]
async fn unknown_opcodes_are_1002() {
    let _serial = serial().await;
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        violation(
            &format!("opcode {opcode:#x}"),
            &[Frame::new(opcode, "x")],
            1002,
        )
        .await;
    }
}

#[tokio::test]
async fn control_frame_over_125_bytes_is_1002() {
    let _serial = serial().await;
    violation(
        "ping of 126 bytes",
        &[Frame::new(PING, vec![b'p'; 126])],
        1002,
    )
    .await;
    violation(
        "pong of 200 bytes",
        &[Frame::new(PONG, vec![b'p'; 200])],
        1002,
    )
    .await;
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(&[b'r'; 124]);
    violation("close of 126 bytes", &[Frame::new(CLOSE, close)], 1002).await;
}

#[tokio::test]
async fn fragmented_control_frame_is_1002() {
    let _serial = serial().await;
    violation("ping with FIN=0", &[Frame::new(PING, "a").fin(false)], 1002).await;
    violation(
        "close with FIN=0",
        &[Frame::close(1000, b"").fin(false)],
        1002,
    )
    .await;
}

#[tokio::test]
async fn continuation_without_start_is_1002() {
    let _serial = serial().await;
    violation("lone final continuation", &[Frame::new(CONT, "x")], 1002).await;
    violation(
        "lone continuation, FIN=0",
        &[Frame::new(CONT, "x").fin(false)],
        1002,
    )
    .await;
    // A complete message, then a continuation of nothing.
    violation(
        "continuation after a complete message",
        &[Frame::text("done"), Frame::new(CONT, "x")],
        1002,
    )
    .await;
}

#[tokio::test]
async fn new_message_inside_a_fragmented_one_is_1002() {
    let _serial = serial().await;
    violation(
        "text inside text",
        &[Frame::text("a").fin(false), Frame::text("b")],
        1002,
    )
    .await;
    violation(
        "binary inside text",
        &[Frame::text("a").fin(false), Frame::binary("b")],
        1002,
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_text_is_1007() {
    let _serial = serial().await;
    violation("0xFF", &[Frame::text(vec![b'a', 0xFF, b'b'])], 1007).await;
    violation("overlong '/'", &[Frame::text(vec![0xC0, 0xAF])], 1007).await;
    violation("surrogate", &[Frame::text(vec![0xED, 0xA0, 0x80])], 1007).await;
    violation(
        "truncated at the end",
        &[Frame::text(vec![b'a', 0xE2, 0x82])],
        1007,
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_across_fragments_is_1007() {
    let _serial = serial().await;
    // A 4-byte sequence started in one fragment and broken in the next.
    violation(
        "broken sequence",
        &[
            Frame::text(vec![b'a', 0xF0, 0x9F]).fin(false),
            Frame::new(CONT, vec![0x41, b'z']),
        ],
        1007,
    )
    .await;
    // Each fragment valid on its own boundary, the second holding an invalid byte.
    violation(
        "invalid byte in a continuation",
        &[
            Frame::text("ok").fin(false),
            Frame::new(CONT, "fine").fin(false),
            Frame::new(CONT, vec![0xFE]),
        ],
        1007,
    )
    .await;
    // The message ends in the middle of a character.
    violation(
        "ends mid-character",
        &[
            Frame::text("ab").fin(false),
            Frame::new(CONT, vec![0xE2, 0x82]),
        ],
        1007,
    )
    .await;
}

#[tokio::test]
async fn valid_multibyte_char_split_across_fragments_is_accepted() {
    let _serial = serial().await;
    let (server, closes) = probe_server().await;
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    let text = "a€b😀c"; // 1 + 3 + 1 + 4 + 1 bytes
    let bytes = text.as_bytes();
    // Split inside the euro sign and inside the emoji (one byte per fragment there).
    ws.send(&[
        Frame::text(bytes[..2].to_vec()).fin(false),
        Frame::new(CONT, bytes[2..6].to_vec()).fin(false),
        Frame::new(CONT, bytes[6..7].to_vec()).fin(false),
        Frame::new(CONT, bytes[7..8].to_vec()).fin(false),
        Frame::new(CONT, bytes[8..].to_vec()),
    ])
    .await;
    let echo = ws.read_frame().await.expect("echo");
    assert_eq!(echo.opcode, TEXT);
    assert_eq!(String::from_utf8(echo.payload).unwrap(), text);
    ws.send(&[Frame::close(1000, b"")]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1000));
    assert_eq!(closes.one().await, 1000);
}

#[tokio::test]
async fn length_header_of_2_pow_40_is_1009_at_once() {
    let _serial = serial().await;
    let (server, closes) = probe_server().await;
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    ws.echo("warm").await;
    let rss_before = rss_kib();
    // Only the header and a few payload bytes: the server must not wait for (or allocate)
    // the terabyte the header announces.
    let frame = Frame::binary(b"tiny".to_vec()).claim_len(1 << 40);
    let t0 = Instant::now();
    ws.send(&[frame]).await;
    let seen = within(
        Duration::from_secs(1),
        "close after a 2^40 header",
        ws.read_close(),
    )
    .await;
    let elapsed = t0.elapsed();
    let rss_after = rss_kib();
    println!(
        "2^40 header: close {seen:?} after {elapsed:?}; RSS {rss_before} KiB -> {rss_after} KiB"
    );
    assert_eq!(seen, CloseSeen::Code(1009));
    assert!(
        elapsed < Duration::from_millis(500),
        "the close took {elapsed:?}"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS jumped from {rss_before} KiB to {rss_after} KiB"
    );
    ws.finish(1009).await;
    assert_eq!(closes.one().await, 1009);

    // The same for a text frame and for the 16-bit length form over the frame limit.
    violation(
        "text claiming 2^40",
        &[Frame::text("x").claim_len(1 << 40)],
        1009,
    )
    .await;
    violation(
        "continuation claiming 2^40",
        &[
            Frame::text("x").fin(false),
            Frame::new(CONT, "y").claim_len(1 << 40),
        ],
        1009,
    )
    .await;
}

#[tokio::test]
async fn close_with_an_invalid_code_is_1002() {
    let _serial = serial().await;
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
        violation(
            &format!("close code {code}"),
            &[Frame::close(code, b"")],
            1002,
        )
        .await;
    }
}

#[tokio::test]
async fn close_with_a_valid_code_is_echoed() {
    let _serial = serial().await;
    // The counterpart: codes a peer may send are answered with the same code.
    for code in [1000, 1001, 1003, 1007, 1011, 3000, 3999, 4000, 4999] {
        let (server, closes) = probe_server().await;
        let mut ws = RawWs::connect(server.addr, "/probe").await;
        ws.send(&[Frame::close(code, b"reason")]).await;
        assert_eq!(ws.read_close().await, CloseSeen::Code(code), "code {code}");
        assert_eq!(closes.one().await, code, "on_close for code {code}");
    }
    // An empty close frame is answered with an empty one; on_close sees 1005 (no status).
    let (server, closes) = probe_server().await;
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    ws.send(&[Frame::new(CLOSE, Vec::new())]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Empty);
    assert_eq!(closes.one().await, 1005);
}

#[tokio::test]
async fn close_with_a_1_byte_payload_is_1002() {
    let _serial = serial().await;
    violation("1-byte close", &[Frame::new(CLOSE, vec![0x03])], 1002).await;
}

#[tokio::test]
async fn close_with_an_invalid_utf8_reason_is_1007() {
    let _serial = serial().await;
    violation("0xFF in reason", &[Frame::close(1000, &[b'a', 0xFF])], 1007).await;
    violation(
        "truncated char in reason",
        &[Frame::close(1000, &[0xE2, 0x82])],
        1007,
    )
    .await;
}

#[tokio::test]
async fn a_violation_does_not_disturb_other_sessions() {
    let _serial = serial().await;
    let (server, closes) = probe_server().await;
    let mut good = RawWs::connect(server.addr, "/probe").await;
    good.echo("before").await;
    for frames in [
        vec![Frame::text("x").unmasked()],
        vec![Frame::text(vec![0xFF])],
        vec![Frame::binary("x").claim_len(1 << 40)],
    ] {
        let mut bad = RawWs::connect(server.addr, "/probe").await;
        bad.send(&frames).await;
        assert!(matches!(bad.read_close().await, CloseSeen::Code(_)));
        good.echo("still here").await;
    }
    closes.wait_sessions(3, TIMEOUT).await;
    assert_eq!(server.open_sessions(), 1);
    good.echo("after").await;
}
