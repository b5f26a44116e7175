//! A close frame reaches a peer that is still sending. After a fault the server sends its
//! close, ends its side of the TCP stream, and reads and discards what the peer still sends
//! (bounded by `close_timeout` and a byte budget) until the peer's end: closing with unread
//! input would make the kernel answer with a reset, and the peer's kernel would throw away the
//! close frame with it. Every client here keeps writing well past the fault before it reads,
//! 10 of 10 must read the right code: 1009 (2x and 16x the size limit), 1002, 1007.

mod raw;

use std::time::Duration;

use endpoint::{Endpoint, EndpointConfig, HookResult, Limits, Message, Server, Session};
use futures::{SinkExt, StreamExt};
use raw::{start, test_limits, CloseSeen, Frame, RawWs, Running};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The size limit of the endpoint (frames and messages).
const LIMIT: usize = 64 * 1024;

#[derive(Default)]
struct Echo;

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/echo")
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
}

async fn server() -> Running {
    let mut limits: Limits = test_limits();
    limits.max_message_size = LIMIT;
    limits.max_frame_size = LIMIT;
    limits.close_timeout = Duration::from_secs(3);
    start(Server::new().limits(limits).endpoint::<Echo>()).await
}

/// A hand-driven client writes `first` (the frame that breaks a rule), then `more` bytes of
/// further frames, all before it reads; then it must see `code`.
async fn raw_writer_reads(server: &Running, first: Vec<u8>, more: usize, code: u16) {
    let mut ws = RawWs::connect(server.addr, "/echo").await;
    let mut bytes = first;
    let filler = Frame::binary(vec![0x5a; 16 * 1024]).encode();
    while bytes.len() < more {
        bytes.extend_from_slice(&filler);
    }
    // Chunks of 16 KiB, as a client streaming a large message would write them; the server is
    // reading (and discarding) all along, so every write goes through.
    ws.write_chunks(&bytes, 16 * 1024, 0, Duration::ZERO).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_writer_sending_past_an_oversized_frame_reads_1009() {
    let server = server().await;
    for times in [2, 16] {
        for _ in 0..10 {
            // One frame claiming `times` x the limit: refused from its header, payload still
            // coming.
            let frame = Frame::binary(vec![0x11; times * LIMIT]).encode();
            raw_writer_reads(&server, frame, 0, 1009).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tungstenite_client_sending_past_the_limit_reads_1009() {
    let server = server().await;
    for times in [2, 16] {
        for i in 0..10 {
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{}/echo", server.addr))
                    .await
                    .expect("connect");
            // The send may fail once the server's close arrives; what matters is what is read.
            let _ = ws.send(WsMessage::binary(vec![7u8; times * LIMIT])).await;
            let code = raw::bounded("the close frame", async {
                loop {
                    match ws.next().await {
                        Some(Ok(WsMessage::Close(frame))) => {
                            return frame.map(|f| f.code);
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => panic!("{times}x, try {i}: {e} before the close frame"),
                        None => panic!("{times}x, try {i}: ended without a close frame"),
                    }
                }
            })
            .await;
            assert_eq!(code, Some(CloseCode::Size), "{times}x, try {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_writer_sending_past_a_protocol_error_reads_1002() {
    let server = server().await;
    for _ in 0..10 {
        // A reserved bit set (RSV2: no extension defines it), then 4x the limit behind it.
        let bad = Frame::text("rsv").rsv(0x2).encode();
        raw_writer_reads(&server, bad, 4 * LIMIT, 1002).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_writer_sending_past_invalid_utf8_reads_1007() {
    let server = server().await;
    for _ in 0..10 {
        // A text frame within the limit, broken early, then 4x the limit behind it.
        let mut text = vec![b'a'; LIMIT / 2];
        text[10] = 0xff;
        let bad = Frame::text(text).encode();
        raw_writer_reads(&server, bad, 4 * LIMIT, 1007).await;
    }
}
