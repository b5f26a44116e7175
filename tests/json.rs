//! Typed messages over real sockets: `Json<T>` as a payload, a return value and with
//! `Session::send`; user types implementing `Decode`/`Encode` (the counterparts of Java's
//! `Decoder`/`Encoder`), text and binary; primitive payloads parsed from text. A payload that
//! fails to decode reaches `on_error` as a decode error and the session stays open.

mod rooms_support;

use std::sync::Arc;

use endpoint::prelude::*;
use endpoint::{DecodeError, PayloadKind, Server};
use rooms_support::*;
use serde::{Deserialize, Serialize};

fn decode_error(error: &EndpointError) -> String {
    match error {
        EndpointError::Decode(e) => format!("decode:{}", e.message()),
        other => format!("other:{other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Json<T>

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Sum {
    sum: i64,
}

#[derive(Serialize)]
struct Hello {
    greeting: &'static str,
    session: u64,
}

struct Calc {
    log: Arc<Log>,
}

#[server_endpoint("/calc")]
impl Calc {
    #[on_open]
    async fn open(&mut self, session: &Session) {
        let hello = Json(Hello {
            greeting: "hi",
            session: session.id().as_u64(),
        });
        session.send(hello).await.expect("send Json");
    }

    #[on_message]
    fn add(&mut self, Json(add): Json<Add>) -> Json<Sum> {
        Json(Sum { sum: add.a + add.b })
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push("calc", decode_error(error));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log
            .push("calc", format!("close:{}", reason.code().as_u16()));
    }
}

#[tokio::test]
async fn json_payload_reply_and_send_and_decode_errors_keep_the_session_open() {
    let log = Log::new();
    let l = log.clone();
    let server = run(Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Calc { log: l.clone() }))
    .await;
    let mut ws = server.connect("/calc").await;

    let hello: serde_json::Value = serde_json::from_str(&recv_text(&mut ws).await).unwrap();
    assert_eq!(hello["greeting"], "hi");
    assert!(hello["session"].as_u64().unwrap() > 0);

    let sum: Sum = serde_json::from_str(&ask(&mut ws, r#"{"a": 2, "b": 40}"#).await).unwrap();
    assert_eq!(sum, Sum { sum: 42 });

    // Not JSON; JSON of the wrong shape; JSON of the wrong type: each reaches on_error as a
    // decode error and the session stays open.
    for bad in ["not json", r#"{"a": 1}"#, r#"{"a": "one", "b": 2}"#] {
        send_text(&mut ws, bad).await;
    }
    assert_eq!(
        ask(&mut ws, r#"{"a": -1, "b": 1}"#).await,
        r#"{"sum":0}"#,
        "still open after decode errors"
    );
    let seen = log.of("calc");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.starts_with("decode:invalid JSON")),
        "{seen:?}"
    );
    assert!(seen[1].contains("missing field `b`"), "{seen:?}");

    // A binary frame is not a text payload: no binary handler, so 1003.
    use futures::SinkExt;
    bounded("send binary", ws.send(WsMessage::binary(vec![1u8])))
        .await
        .unwrap();
    assert_eq!(recv_close(&mut ws).await, 1003);
    assert_eq!(log.wait_for("calc", "close:").await, "close:1003");
}

// ---------------------------------------------------------------------------------------------
// User Decode/Encode types

/// `x,y` in a text frame; encoded back as `(x, y)`.
#[derive(Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

impl Decode for Point {
    const KIND: PayloadKind = PayloadKind::Text;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        let text = message.as_text().unwrap_or_default();
        let (x, y) = text
            .split_once(',')
            .ok_or_else(|| DecodeError::new(format!("expected `x,y`, got `{text}`")))?;
        Ok(Point {
            x: x.trim().parse().map_err(DecodeError::new)?,
            y: y.trim().parse().map_err(DecodeError::new)?,
        })
    }
}

impl Encode for Point {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::text(format!("({}, {})", self.x, self.y)))
    }
}

/// A big-endian `u32` in a binary frame of exactly 4 bytes.
struct Counter(u32);

impl Decode for Counter {
    const KIND: PayloadKind = PayloadKind::Binary;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        let bytes: [u8; 4] = message
            .as_bytes()
            .try_into()
            .map_err(|_| DecodeError::new(format!("expected 4 bytes, got {}", message.len())))?;
        Ok(Counter(u32::from_be_bytes(bytes)))
    }
}

impl Encode for Counter {
    fn encode(self) -> Result<Message, EndpointError> {
        Ok(Message::binary(self.0.to_be_bytes().to_vec()))
    }
}

struct Geometry {
    log: Arc<Log>,
}

#[server_endpoint("/geometry")]
impl Geometry {
    #[on_message]
    fn mirror(&mut self, p: Point) -> Point {
        Point { x: -p.x, y: -p.y }
    }

    #[on_message]
    async fn count(&mut self, session: &Session, c: Counter) {
        session.send(Counter(c.0 + 1)).await.expect("send Counter");
    }

    #[on_error]
    fn error(&mut self, error: EndpointError) {
        self.log.push("geometry", decode_error(&error));
    }
}

#[tokio::test]
async fn user_decode_and_encode_types_text_and_binary() {
    use futures::SinkExt;
    let log = Log::new();
    let l = log.clone();
    let server = run(Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Geometry { log: l.clone() }))
    .await;
    let mut ws = server.connect("/geometry").await;

    assert_eq!(ask(&mut ws, "3, -4").await, "(-3, 4)");
    send_text(&mut ws, "three,four").await;
    send_text(&mut ws, "no comma").await;
    bounded("send", ws.send(WsMessage::binary(vec![0u8, 0, 1, 0])))
        .await
        .unwrap();
    assert_eq!(
        recv_data(&mut ws).await,
        WsMessage::binary(vec![0u8, 0, 1, 1])
    );
    bounded("send", ws.send(WsMessage::binary(vec![1u8, 2])))
        .await
        .unwrap();
    assert_eq!(ask(&mut ws, "1,1").await, "(-1, -1)", "still open");
    assert_eq!(
        log.of("geometry"),
        [
            "decode:invalid digit found in string",
            "decode:expected `x,y`, got `no comma`",
            "decode:expected 4 bytes, got 2",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Primitive payloads

struct Ints {
    log: Arc<Log>,
}

#[server_endpoint("/i64")]
impl Ints {
    #[on_message]
    fn double(&mut self, n: i64) -> String {
        format!("i64:{}", n * 2)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push("i64", decode_error(error));
    }
}

struct Floats {
    log: Arc<Log>,
}

#[server_endpoint("/f64")]
impl Floats {
    #[on_message]
    fn half(&mut self, x: f64) -> String {
        format!("f64:{}", x / 2.0)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push("f64", decode_error(error));
    }
}

struct Bools {
    log: Arc<Log>,
}

#[server_endpoint("/bool")]
impl Bools {
    #[on_message]
    fn not(&mut self, b: bool) -> String {
        format!("bool:{}", !b)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push("bool", decode_error(error));
    }
}

#[tokio::test]
async fn primitive_payloads_are_parsed_from_text() {
    let log = Log::new();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let server = run(Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Ints { log: l1.clone() })
        .endpoint_with(move |_| Floats { log: l2.clone() })
        .endpoint_with(move |_| Bools { log: l3.clone() }))
    .await;

    let mut ints = server.connect("/i64").await;
    assert_eq!(ask(&mut ints, "21").await, "i64:42");
    assert_eq!(
        ask(&mut ints, " -7 ").await,
        "i64:-14",
        "surrounding blanks are trimmed"
    );
    send_text(&mut ints, "abc").await;
    send_text(&mut ints, "1.5").await;
    send_text(&mut ints, "99999999999999999999").await;
    assert_eq!(ask(&mut ints, "0").await, "i64:0", "still open");

    let mut floats = server.connect("/f64").await;
    assert_eq!(ask(&mut floats, "5").await, "f64:2.5");
    assert_eq!(ask(&mut floats, "-0.5e1").await, "f64:-2.5");
    send_text(&mut floats, "five").await;
    assert_eq!(ask(&mut floats, "1").await, "f64:0.5", "still open");

    let mut bools = server.connect("/bool").await;
    assert_eq!(ask(&mut bools, "true").await, "bool:false");
    assert_eq!(ask(&mut bools, "false").await, "bool:true");
    send_text(&mut bools, "yes").await;
    send_text(&mut bools, "1").await;
    assert_eq!(ask(&mut bools, "true").await, "bool:false", "still open");

    let ints_seen = log.of("i64");
    assert_eq!(ints_seen.len(), 3, "{ints_seen:?}");
    assert!(
        ints_seen[0].starts_with("decode:`abc` is not a valid i64"),
        "{ints_seen:?}"
    );
    assert!(
        ints_seen[1].starts_with("decode:`1.5` is not a valid i64"),
        "{ints_seen:?}"
    );
    assert!(ints_seen[2].contains("too large"), "{ints_seen:?}");
    let floats_seen = log.of("f64");
    assert_eq!(floats_seen.len(), 1, "{floats_seen:?}");
    assert!(floats_seen[0].starts_with("decode:`five` is not a valid f64"));
    let bools_seen = log.of("bool");
    assert_eq!(bools_seen.len(), 2, "{bools_seen:?}");
    assert!(bools_seen[0].starts_with("decode:`yes` is not a valid bool"));
    assert!(bools_seen[1].starts_with("decode:`1` is not a valid bool"));
}
