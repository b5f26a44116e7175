//! Payloads in, return values out: text (`String`, `&str`, sync and async), binary (`Vec<u8>`,
//! `Bytes`, `&[u8]`), `Message`, `Json<T>`, `Option` (`None` sends nothing), `Result` (`Err`
//! reaches `on_error` with its message, the session stays open), and ping/pong in both
//! directions.

mod common;

use common::*;
use endpoint::prelude::*;
use futures::SinkExt;
use serde::{Deserialize, Serialize};

async fn send(ws: &mut Ws, msg: WsMessage) {
    bounded("send", ws.send(msg)).await.expect("send");
}

// ---------------------------------------------------------------------------------------------
// Text

#[derive(Default)]
struct Upper;

#[server_endpoint("/text/sync")]
impl Upper {
    #[on_message]
    fn text(&mut self, text: &str) -> String {
        text.to_uppercase()
    }
}

#[derive(Default)]
struct Counted {
    n: usize,
}

#[server_endpoint("/text/async")]
impl Counted {
    #[on_message]
    async fn text(&mut self, session: Session, text: String) -> String {
        tokio::task::yield_now().await;
        self.n += 1; // one endpoint value per connection: the count is per session
        format!("{}#{}:{text}", session.id(), self.n)
    }
}

#[tokio::test]
async fn returned_strings_are_sent_back() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<Upper>()
            .endpoint::<Counted>(),
    )
    .await;
    let mut ws = server.connect("/text/sync").await;
    assert_eq!(roundtrip(&mut ws, "héllo").await, "HÉLLO");
    assert_eq!(roundtrip(&mut ws, "").await, "");

    let mut a = server.connect("/text/async").await;
    let mut b = server.connect("/text/async").await;
    let a1 = roundtrip(&mut a, "x").await;
    let a2 = roundtrip(&mut a, "y").await;
    let b1 = roundtrip(&mut b, "z").await;
    assert!(
        a1.ends_with("#1:x") && a2.ends_with("#2:y") && b1.ends_with("#1:z"),
        "{a1} {a2} {b1}"
    );
    let id = |s: &str| s.split('#').next().unwrap().to_owned();
    assert_eq!(id(&a1), id(&a2));
    assert_ne!(id(&a1), id(&b1), "sessions have distinct ids");
}

// ---------------------------------------------------------------------------------------------
// Option and Result

#[derive(Default)]
struct Maybe;

#[server_endpoint("/option")]
impl Maybe {
    #[on_message]
    fn text(&mut self, text: String) -> Option<String> {
        (text != "none").then_some(text)
    }
}

#[derive(Default)]
struct Fallible;

#[server_endpoint("/result")]
impl Fallible {
    #[on_message]
    fn text(&mut self, text: String) -> Result<String, String> {
        match text.strip_prefix("err ") {
            Some(why) => Err(format!("refused: {why}")),
            None => Ok(text),
        }
    }

    #[on_message]
    async fn binary(&mut self, data: Vec<u8>) -> Result<Vec<u8>, std::io::Error> {
        if data.is_empty() {
            return Err(std::io::Error::other("empty binary"));
        }
        Ok(data)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) -> String {
        let kind = if matches!(error, EndpointError::Handler(_)) {
            "handler"
        } else {
            "other"
        };
        format!("on_error[{kind}]: {error}")
    }
}

#[tokio::test]
async fn option_none_sends_nothing() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Maybe>()).await;
    let mut ws = server.connect("/option").await;
    send_text(&mut ws, "none").await;
    send_text(&mut ws, "some").await;
    // Had `None` sent anything, it would arrive before "some".
    assert_eq!(recv_text(&mut ws).await, "some");
    send_text(&mut ws, "none").await;
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(100), recv_data(&mut ws));
    assert!(nothing.await.is_err(), "None must not send a message");
}

#[tokio::test]
async fn result_err_reaches_on_error_with_its_message_and_the_session_stays_open() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Fallible>()).await;
    let mut ws = server.connect("/result").await;
    assert_eq!(roundtrip(&mut ws, "fine").await, "fine");
    assert_eq!(
        roundtrip(&mut ws, "err no way").await,
        "on_error[handler]: handler error: refused: no way"
    );
    send(&mut ws, WsMessage::binary(Vec::new())).await;
    assert_eq!(
        recv_text(&mut ws).await,
        "on_error[handler]: handler error: empty binary"
    );
    assert_eq!(roundtrip(&mut ws, "still open").await, "still open");
    send(&mut ws, WsMessage::binary(vec![7u8])).await;
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(vec![7u8]));
}

// ---------------------------------------------------------------------------------------------
// Binary

#[derive(Default)]
struct Reverse;

#[server_endpoint("/binary/vec")]
impl Reverse {
    #[on_message]
    fn binary(&mut self, mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }
}

#[derive(Default)]
struct Echo;

#[server_endpoint("/binary/bytes")]
impl Echo {
    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }

    /// Text in, binary out: a `Message` return value keeps its kind.
    #[on_message]
    fn text(&mut self, text: &str) -> Message {
        Message::binary(text.as_bytes().to_vec())
    }
}

#[derive(Default)]
struct Length;

#[server_endpoint("/binary/slice")]
impl Length {
    #[on_message]
    fn binary(&mut self, data: &[u8]) -> String {
        format!(
            "{} bytes, sum {}",
            data.len(),
            data.iter().map(|&b| u64::from(b)).sum::<u64>()
        )
    }
}

#[tokio::test]
async fn binary_payloads_and_replies() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<Reverse>()
            .endpoint::<Echo>()
            .endpoint::<Length>(),
    )
    .await;

    let mut ws = server.connect("/binary/vec").await;
    send(&mut ws, WsMessage::binary(vec![1u8, 2, 3])).await;
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(vec![3u8, 2, 1]));

    let mut ws = server.connect("/binary/bytes").await;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for payload in [vec![], vec![0u8, 255, 0], big] {
        send(&mut ws, WsMessage::binary(payload.clone())).await;
        assert_eq!(recv_data(&mut ws).await, WsMessage::binary(payload));
    }
    send_text(&mut ws, "abc").await;
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(b"abc".to_vec()));

    let mut ws = server.connect("/binary/slice").await;
    send(&mut ws, WsMessage::binary(vec![10u8, 20, 30])).await;
    assert_eq!(recv_text(&mut ws).await, "3 bytes, sum 60");
}

// ---------------------------------------------------------------------------------------------
// Json

#[derive(Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[derive(Serialize)]
struct Sum {
    sum: i64,
}

#[derive(Default)]
struct Adder;

#[server_endpoint("/json")]
impl Adder {
    #[on_message]
    fn point(&mut self, Json(p): Json<Point>) -> Json<Sum> {
        Json(Sum { sum: p.x + p.y })
    }

    #[on_error]
    fn error(&mut self, error: EndpointError) -> String {
        format!("decode={} {error}", error.is_decode())
    }
}

#[tokio::test]
async fn json_in_and_out_and_bad_json_is_a_decode_error() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Adder>()).await;
    let mut ws = server.connect("/json").await;
    let reply = roundtrip(&mut ws, r#"{"x": 2, "y": 40}"#).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reply).unwrap(),
        serde_json::json!({"sum": 42})
    );
    let reply = roundtrip(&mut ws, "{not json").await;
    assert!(reply.starts_with("decode=true "), "{reply}");
    let reply = roundtrip(&mut ws, r#"{"x": 1, "y": 1}"#).await;
    assert_eq!(
        reply, r#"{"sum":2}"#,
        "the session stays open after a decode error"
    );
}

// ---------------------------------------------------------------------------------------------
// Ping / pong

#[derive(Default)]
struct Pinger;

#[server_endpoint("/pinger")]
impl Pinger {
    #[on_message]
    fn text(&mut self, session: &Session, text: String) {
        session.ping(text.into_bytes()).expect("ping");
    }

    #[on_message]
    fn pong(&mut self, pong: Pong) -> String {
        format!("pong:{}", String::from_utf8_lossy(&pong.0))
    }
}

#[tokio::test]
async fn client_ping_gets_a_pong_with_the_same_payload() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Echo>()).await;
    let mut ws = server.connect("/binary/bytes").await;
    send(&mut ws, WsMessage::Ping(b"are you there"[..].into())).await;
    match recv(&mut ws).await {
        WsMessage::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Still a working session.
    send_text(&mut ws, "ok").await;
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(b"ok".to_vec()));
}

#[tokio::test]
async fn a_pong_handler_sees_the_answer_to_session_ping() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Pinger>()).await;
    let mut ws = server.connect("/pinger").await;
    send_text(&mut ws, "t=1").await;
    match recv(&mut ws).await {
        WsMessage::Ping(p) => assert_eq!(&p[..], b"t=1"),
        other => panic!("expected the server's ping, got {other:?}"),
    }
    // Reading on lets the client's automatic pong go out; the handler's reply comes back.
    assert_eq!(recv_text(&mut ws).await, "pong:t=1");

    // An unsolicited pong (a heartbeat, RFC 6455 5.5.3) reaches the handler too.
    send(&mut ws, WsMessage::Pong(b"hb"[..].into())).await;
    assert_eq!(recv_text(&mut ws).await, "pong:hb");
}

#[derive(Default)]
struct NoPongHandler;

#[server_endpoint("/no-pong")]
impl NoPongHandler {
    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> Option<String> {
        if text == "ping me" {
            session.ping(&b"x"[..]).expect("ping");
            return None;
        }
        Some(text)
    }
}

#[tokio::test]
async fn pongs_to_an_endpoint_without_a_pong_handler_are_ignored() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<NoPongHandler>(),
    )
    .await;
    let mut ws = server.connect("/no-pong").await;
    // RFC 6455 5.5.3: a pong may be sent unsolicited, as a heartbeat; no answer is expected,
    // and it is certainly not a data message the endpoint "cannot accept".
    send(&mut ws, WsMessage::Pong(b"heartbeat"[..].into())).await;
    assert_eq!(
        roundtrip(&mut ws, "after heartbeat").await,
        "after heartbeat"
    );
    // The answer to the server's own ping must not close the session either.
    send_text(&mut ws, "ping me").await;
    assert!(matches!(recv(&mut ws).await, WsMessage::Ping(_)));
    assert_eq!(roundtrip(&mut ws, "after ping").await, "after ping");
}
