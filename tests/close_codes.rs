//! Protocol faults close with the contract's codes, seen from both sides: the code of the close
//! frame the client receives, and the code `on_close` receives on the server (with the error in
//! `on_error` before it).
//!
//! | fault | code |
//! |---|---|
//! | invalid UTF-8 in a text message | 1007 |
//! | message over the limit (endpoint, handler or server limit) | 1009 |
//! | protocol error (reserved bits, unmasked frame, unknown opcode, ...) | 1002 |
//! | handler panic | 1011 |
//! | binary message to a text-only endpoint | 1003 |

mod common;

use common::*;
use endpoint::prelude::*;
use endpoint::Limits;

struct Codes {
    rec: Recorder,
}

#[server_endpoint("/codes", max_message_size = 64)]
impl Codes {
    #[on_open]
    fn open(&mut self) {
        self.rec.push("open");
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        if text == "panic" {
            panic!("kaboom {}", 42);
        }
        text
    }

    #[on_error]
    fn error(&mut self, error: EndpointError) {
        self.rec.push(format!("error:{error}"));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

async fn codes_server() -> (TestServer, Recorder) {
    let rec = Recorder::new();
    let r = rec.clone();
    let server = Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Codes { rec: r.clone() });
    (start(server).await, rec)
}

/// Waits for `on_close`, checks it got `code` and was the last event, and returns the events.
async fn server_saw(rec: &Recorder, code: u16) -> Vec<String> {
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(
        assert_lifecycle(&events),
        format!("close:{code}"),
        "{events:#?}"
    );
    events
}

/// Sends `frames` on a fresh raw connection and expects a close frame with `code`, answers it,
/// and checks the server side.
async fn raw_fault(frames: &[Vec<u8>], code: u16, error: &str) {
    let (server, rec) = codes_server().await;
    let mut raw = RawWs::connect(server.addr, "/codes").await;
    for f in frames {
        raw.write(f).await;
    }
    assert_eq!(raw.read_close().await.0, code, "close frame for {error}");
    raw.write(&client_close(code)).await;
    raw.expect_eof().await;
    let events = server_saw(&rec, code).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:") && e.contains(error)),
        "on_error should have seen `{error}`: {events:#?}"
    );
}

#[tokio::test]
async fn invalid_utf8_is_1007() {
    raw_fault(
        &[client_frame(0x1, &[b'o', b'k', 0xff, 0xfe])],
        1007,
        "UTF-8",
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_across_fragments_is_1007() {
    let mask = Some([9, 8, 7, 6]);
    // "é" is 0xC3 0xA9: the first fragment ends mid-character (fine), the second breaks it.
    raw_fault(
        &[
            encode_frame(false, 0, 0x1, &[b'a', 0xC3], mask),
            encode_frame(true, 0, 0x0, &[0x28], mask),
        ],
        1007,
        "UTF-8",
    )
    .await;
}

#[tokio::test]
async fn message_over_the_endpoint_limit_is_1009() {
    let (server, rec) = codes_server().await;
    let mut ws = server.connect("/codes").await;
    let exact = "x".repeat(64);
    assert_eq!(
        roundtrip(&mut ws, &exact).await,
        exact,
        "the limit itself is allowed"
    );
    send_text(&mut ws, &"y".repeat(65)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    drain_until_end(&mut ws).await;
    let events = server_saw(&rec, 1009).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:") && e.contains("65")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn fragmented_message_over_the_limit_is_1009() {
    let mask = Some([1, 1, 1, 1]);
    let part = [b'z'; 40];
    raw_fault(
        &[
            encode_frame(false, 0, 0x1, &part, mask),
            encode_frame(true, 0, 0x0, &part, mask),
        ],
        1009,
        "exceeds",
    )
    .await;
}

struct Small {
    rec: Recorder,
}

#[server_endpoint("/small")]
impl Small {
    #[on_message(max_message_size = 16)]
    fn binary(&mut self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.rec.push(format!("error:{error}"));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

#[tokio::test]
async fn message_over_a_handler_limit_is_1009() {
    let rec = Recorder::new();
    let r = rec.clone();
    let mut limits = fast_limits();
    limits.max_message_size = 128;
    let server = start(
        Server::new()
            .limits(limits)
            .endpoint_with(move |_| Small { rec: r.clone() }),
    )
    .await;

    // The handler limit applies to binary only; text is bound by the server's 128 bytes.
    let mut ws = server.connect("/small").await;
    let text = "t".repeat(100);
    assert_eq!(roundtrip(&mut ws, &text).await, text);
    bounded(
        "send",
        futures::SinkExt::send(&mut ws, WsMessage::binary(vec![1u8; 16])),
    )
    .await
    .unwrap();
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(vec![1u8; 16]));
    bounded(
        "send",
        futures::SinkExt::send(&mut ws, WsMessage::binary(vec![1u8; 17])),
    )
    .await
    .unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events.last().unwrap(), "close:1009", "{events:#?}");
    assert!(
        events[0].starts_with("error:") && events[0].contains("17"),
        "{events:#?}"
    );

    // Over the server-wide limit: 1009 too.
    let mut ws = server.connect("/small").await;
    send_text(&mut ws, &"t".repeat(129)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    drain_until_end(&mut ws).await;
    rec.wait_count("close:1009", 2).await;
}

#[tokio::test]
async fn the_default_limit_is_finite() {
    #[derive(Default)]
    struct Echo;

    #[server_endpoint("/echo")]
    impl Echo {
        #[on_message]
        fn binary(&mut self, data: Vec<u8>) -> usize_reply::Len {
            usize_reply::Len(data.len())
        }
    }

    let max = Limits::default().max_message_size;
    let server = start(Server::new().limits(fast_limits()).endpoint::<Echo>()).await;
    let mut ws = server.connect("/echo").await;
    bounded(
        "send",
        futures::SinkExt::send(&mut ws, WsMessage::binary(vec![0u8; max + 1])),
    )
    .await
    .unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1009);
}

/// A reply type implementing `Encode`, to return a length.
mod usize_reply {
    use endpoint::{Encode, EndpointError, Message};

    pub(crate) struct Len(pub(crate) usize);

    impl Encode for Len {
        fn encode(self) -> Result<Message, EndpointError> {
            Ok(Message::text(self.0.to_string()))
        }
    }
}

#[tokio::test]
async fn reserved_bits_are_1002() {
    for rsv in [0b100, 0b010, 0b001] {
        raw_fault(
            &[encode_frame(true, rsv, 0x1, b"hi", Some([1, 2, 3, 4]))],
            1002,
            "protocol",
        )
        .await;
    }
}

#[tokio::test]
async fn unmasked_client_frame_is_1002() {
    raw_fault(&[encode_frame(true, 0, 0x1, b"hi", None)], 1002, "protocol").await;
}

#[tokio::test]
async fn other_protocol_violations_are_1002() {
    let mask = Some([5, 6, 7, 8]);
    let cases: [(&str, Vec<Vec<u8>>); 3] = [
        (
            "reserved data opcode",
            vec![encode_frame(true, 0, 0x3, b"x", mask)],
        ),
        (
            "fragmented ping",
            vec![encode_frame(false, 0, 0x9, b"x", mask)],
        ),
        (
            "continuation first",
            vec![encode_frame(true, 0, 0x0, b"x", mask)],
        ),
    ];
    for (what, frames) in cases {
        eprintln!("case: {what}");
        raw_fault(&frames, 1002, "protocol").await;
    }
}

#[tokio::test]
async fn control_frame_over_125_bytes_is_1002() {
    // On an endpoint whose message limit (128) admits the frame, so only the control-frame
    // rule is broken.
    let rec = Recorder::new();
    let r = rec.clone();
    let mut limits = fast_limits();
    limits.max_message_size = 128;
    let server = start(
        Server::new()
            .limits(limits)
            .endpoint_with(move |_| Small { rec: r.clone() }),
    )
    .await;
    let mut raw = RawWs::connect(server.addr, "/small").await;
    raw.write(&encode_frame(true, 0, 0x9, &[0u8; 126], Some([5, 6, 7, 8])))
        .await;
    assert_eq!(raw.read_close().await.0, 1002);
    raw.write(&client_close(1002)).await;
    raw.expect_eof().await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events.last().unwrap(), "close:1002", "{events:#?}");
    assert!(events[0].starts_with("error:protocol error"), "{events:#?}");
}

#[tokio::test]
async fn handler_panic_is_1011_and_on_error_gets_the_panic() {
    let (server, rec) = codes_server().await;
    let mut ws = server.connect("/codes").await;
    send_text(&mut ws, "panic").await;
    assert_eq!(recv_close(&mut ws).await.0, 1011);
    drain_until_end(&mut ws).await;
    let events = server_saw(&rec, 1011).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:") && e.contains("kaboom 42")),
        "on_error should have the panic message: {events:#?}"
    );
}

#[tokio::test]
async fn binary_to_a_text_only_endpoint_is_1003() {
    let (server, rec) = codes_server().await;
    let mut ws = server.connect("/codes").await;
    bounded(
        "send",
        futures::SinkExt::send(&mut ws, WsMessage::binary(vec![1u8, 2, 3])),
    )
    .await
    .unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1003);
    drain_until_end(&mut ws).await;
    let events = server_saw(&rec, 1003).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:") && e.contains("binary")),
        "{events:#?}"
    );
}

struct OpenPanics {
    rec: Recorder,
}

#[server_endpoint("/open-panics")]
impl OpenPanics {
    #[on_open]
    fn open(&mut self) {
        panic!("no open today");
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        self.rec.push("message");
        text
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.rec.push(format!("error:{error}"));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

#[tokio::test]
async fn panic_in_on_open_is_1011_and_no_message_is_handled() {
    let rec = Recorder::new();
    let r = rec.clone();
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(move |_| OpenPanics { rec: r.clone() }),
    )
    .await;
    let mut ws = server.connect("/open-panics").await;
    // Whether or not this message reaches the server first, no handler may run for it.
    let _ = futures::SinkExt::send(&mut ws, WsMessage::text("hello")).await;
    assert_eq!(recv_close(&mut ws).await.0, 1011);
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events[0].contains("no open today"), "{events:#?}");
    assert_eq!(events[1], "close:1011");
}

#[tokio::test]
async fn panicking_factory_is_1011() {
    #[derive(Default)]
    struct Never;

    #[server_endpoint("/never")]
    impl Never {
        #[on_message]
        fn text(&mut self, text: String) -> String {
            text
        }
    }

    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(|_| -> Never { panic!("no endpoint") }),
    )
    .await;
    let mut ws = server.connect("/never").await;
    assert_eq!(recv_close(&mut ws).await.0, 1011);
    drain_until_end(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// A handler's limit overrides the server's, upwards too (Jakarta's @OnMessage(maxMessageSize)).

#[derive(Default)]
struct BigText;

#[server_endpoint("/big-text")]
impl BigText {
    #[on_message(max_message_size = 8192)]
    fn text(&mut self, text: String) -> String {
        format!("len={}", text.len())
    }

    #[on_message]
    fn binary(&mut self, data: Vec<u8>) -> String {
        format!("bin={}", data.len())
    }
}

#[tokio::test]
async fn handler_limit_raises_the_server_limit_for_its_kind_only() {
    let mut limits = fast_limits();
    limits.max_message_size = 1024;
    limits.max_frame_size = 1024;
    let server = start(Server::new().limits(limits).endpoint::<BigText>()).await;
    let mut ws = server.connect("/big-text").await;
    // 4 KiB of text: above the server's 1 KiB, within the text handler's 8 KiB, in one frame.
    assert_eq!(roundtrip(&mut ws, &"a".repeat(4096)).await, "len=4096");
    // Binary has no handler limit: the server's 1 KiB applies.
    futures::SinkExt::send(&mut ws, WsMessage::binary(vec![0u8; 1024]))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "bin=1024");
    futures::SinkExt::send(&mut ws, WsMessage::binary(vec![0u8; 4096]))
        .await
        .unwrap();
    let (code, _) = recv_close(&mut ws).await;
    assert_eq!(code, 1009);
    // Text above the handler's own limit: 1009 too.
    let mut ws = server.connect("/big-text").await;
    futures::SinkExt::send(&mut ws, WsMessage::text("b".repeat(8193)))
        .await
        .unwrap();
    let (code, _) = recv_close(&mut ws).await;
    assert_eq!(code, 1009);
    server.shutdown().await;
}
