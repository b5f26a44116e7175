//! One test per row of `docs/PORTING.md` that has a Rust counterpart, named after the Jakarta
//! element. Rows covered elsewhere are named in the doc: origin checks, 401 refusals,
//! properties from a configurator, subprotocol negotiation, the context path and the idle
//! timeout in `tests/configurator.rs`; slow consumers in `tests/rooms.rs`.
//!
//! Real sockets on 127.0.0.1:0; every wait is bounded.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use endpoint::prelude::*;
use endpoint::{Limits, SendError};
use futures::SinkExt;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// A user type with a Decoder and an Encoder (Java Decoder.Text<Point> / Encoder.Text<Point>)

#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

impl Decode for Point {
    const KIND: PayloadKind = PayloadKind::Text;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        // willDecode + decode in one: a refusal is a DecodeError for on_error.
        let text = message.as_text().unwrap_or_default();
        let (x, y) = text
            .split_once(',')
            .ok_or_else(|| DecodeError::new("expected `x,y`"))?;
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

/// A binary decoder (Java `Decoder.Binary<Header>`): a big-endian u16 length prefix.
#[derive(Debug)]
struct Header(u16);

impl Decode for Header {
    const KIND: PayloadKind = PayloadKind::Binary;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match message.as_bytes() {
            [a, b, ..] => Ok(Header(u16::from_be_bytes([*a, *b]))),
            _ => Err(DecodeError::new("need 2 bytes")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The endpoint most rows use

/// Records every hook; replies to commands. One instance per connection.
struct Jakarta {
    rec: Recorder,
}

#[server_endpoint("/jakarta/{room}/{n}")]
impl Jakarta {
    /// @OnOpen public void open(Session s, EndpointConfig c, @PathParam("room") String room)
    #[on_open]
    fn open(
        &mut self,
        session: &Session,
        handshake: &Handshake,
        #[path_param] room: String,
        #[path_param] n: u32,
    ) -> String {
        self.rec.push(format!("open:{}", session.id()));
        format!(
            "open room={room} n={n} uri={} agent={}",
            handshake.uri(),
            handshake
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
        )
    }

    /// @OnMessage public String text(String message, Session session)
    #[on_message]
    async fn text(&mut self, session: &Session, text: String) -> Result<String, String> {
        self.rec.push(format!("message:{text}"));
        let reply = match text.as_str() {
            "id" => session.id().to_string(),
            "query" => format!(
                "query={:?} name={:?} uri={}",
                session.query(),
                session.query_param("name"),
                session.request_uri()
            ),
            "path" => session
                .path_params()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            "props" => {
                let n = session.properties().get::<usize>().unwrap_or(0) + 1;
                session.properties().insert(n);
                format!("visits={n}")
            }
            "open" => format!("open={}", session.is_open()),
            "open-sessions" => {
                let mut ids: Vec<_> = session
                    .open_sessions()
                    .iter()
                    .map(|s| s.id().as_u64())
                    .collect();
                ids.sort_unstable();
                format!("{ids:?}")
            }
            "basic" => {
                session.send("basic 1").await.map_err(|e| e.to_string())?;
                session.send("basic 2").await.map_err(|e| e.to_string())?;
                "basic done".into()
            }
            "async" => {
                let s = session.clone();
                tokio::spawn(async move { s.send("from another task").await });
                "async queued".into()
            }
            "binary" => {
                session
                    .send(vec![1u8, 2, 3])
                    .await
                    .map_err(|e| e.to_string())?;
                "binary sent".into()
            }
            "object" => {
                session
                    .send(Point { x: 1, y: 2 })
                    .await
                    .map_err(|e| e.to_string())?;
                "object sent".into()
            }
            "ping" => {
                session
                    .ping(&b"are you there"[..])
                    .map_err(|e| e.to_string())?;
                "ping sent".into()
            }
            "pong" => {
                session
                    .send(Message::Pong(Bytes::from_static(b"unsolicited")))
                    .await
                    .map_err(|e| e.to_string())?;
                "pong sent".into()
            }
            "close" => {
                session
                    .close(CloseReason::normal())
                    .map_err(|e| e.to_string())?;
                return Ok("after close".into());
            }
            "close-reason" => {
                session
                    .close(CloseReason::new(CloseCode::TRY_AGAIN_LATER, "come back"))
                    .map_err(|e| e.to_string())?;
                return Ok("after close".into());
            }
            "fail" => return Err("the handler failed".into()),
            other => other.to_owned(),
        };
        Ok(reply)
    }

    /// @OnError public void error(Session s, Throwable t)
    #[on_error]
    fn error(&mut self, session: &Session, error: &EndpointError) -> String {
        self.rec.push(format!("error:{error}"));
        format!("error: {error} (open={})", session.is_open())
    }

    /// @OnClose public void close(Session s, CloseReason r)
    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        self.rec.push(format!(
            "close:{}:{}:{}",
            session.id(),
            reason.code().as_u16(),
            reason.reason()
        ));
    }
}

fn jakarta(rec: &Recorder) -> Server {
    let rec = rec.clone();
    Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Jakarta { rec: rec.clone() })
}

// ---------------------------------------------------------------------------------------------
// Annotations

#[tokio::test]
async fn server_endpoint_value_and_path_param() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/rust%20lang/7").await;
    let open = recv_text(&mut ws).await;
    assert!(
        open.starts_with("open room=rust lang n=7 uri=/jakarta/rust%20lang/7"),
        "{open}"
    );
    assert_eq!(roundtrip(&mut ws, "path").await, "room=rust lang,n=7");
    // A value that does not parse (Java: DecodeException for a non-String @PathParam) reaches
    // @OnError instead of @OnOpen.
    let mut bad = server.connect("/jakarta/lobby/seven").await;
    let err = recv_text(&mut bad).await;
    assert!(
        err.starts_with("error: decode error: path parameter `n`"),
        "{err}"
    );
    // The template matches whole segments only.
    let res = http(server.addr, &upgrade_request("/jakarta/lobby", &[], &[])).await;
    assert_eq!(res.status, 404);
}

#[tokio::test]
async fn on_open_runs_first_and_on_close_last_with_close_reason() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    assert_eq!(roundtrip(&mut ws, "hi").await, "hi");
    send_close(&mut ws, 4001, "client leaves").await;
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    let close = assert_lifecycle(&events);
    assert!(close.ends_with(":4001:client leaves"), "{close}");
    assert_eq!(events[1], "message:hi");
}

#[tokio::test]
async fn on_message_string_return_value_is_sent() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    assert_eq!(roundtrip(&mut ws, "echo me").await, "echo me");
}

#[tokio::test]
async fn on_error_receives_the_throwable_and_the_session_stays_open() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    assert_eq!(
        roundtrip(&mut ws, "fail").await,
        "error: handler error: the handler failed (open=true)"
    );
    assert_eq!(roundtrip(&mut ws, "still here").await, "still here");
}

// Decoders, encoders, primitives --------------------------------------------------------------

#[derive(Default)]
struct Decoders;

#[server_endpoint("/decoders")]
impl Decoders {
    /// @OnMessage public Point text(Point p) with decoders = PointDecoder, encoders = PointEncoder
    #[on_message]
    fn point(&mut self, p: Point) -> Point {
        Point { x: p.y, y: p.x }
    }

    /// @OnMessage public String binary(Header h) with a Decoder.Binary<Header>
    #[on_message]
    fn header(&mut self, h: Header) -> String {
        format!("length={}", h.0)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) -> String {
        format!("decode={} {error}", error.is_decode())
    }
}

#[tokio::test]
async fn server_endpoint_decoders_and_encoders() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Decoders>()).await;
    let mut ws = server.connect("/decoders").await;
    assert_eq!(roundtrip(&mut ws, "3, 4").await, "(4, 3)");
    // willDecode() == false / DecodeException: on_error, session open.
    assert_eq!(
        roundtrip(&mut ws, "nonsense").await,
        "decode=true decode error: expected `x,y`"
    );
    bounded("send", ws.send(WsMessage::binary(vec![1u8, 0, 9])))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "length=256");
    assert_eq!(roundtrip(&mut ws, "1,1").await, "(1, 1)");
}

#[derive(Serialize, Deserialize)]
struct Chat {
    from: String,
    text: String,
}

#[derive(Default)]
struct JsonObjects;

#[server_endpoint("/json")]
impl JsonObjects {
    #[on_message]
    fn chat(&mut self, Json(chat): Json<Chat>) -> Json<Chat> {
        Json(Chat {
            from: "server".into(),
            text: format!("{} said {}", chat.from, chat.text),
        })
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) -> String {
        format!("decode={}", error.is_decode())
    }
}

#[tokio::test]
async fn decoded_object_parameter_json() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<JsonObjects>(),
    )
    .await;
    let mut ws = server.connect("/json").await;
    assert_eq!(
        roundtrip(&mut ws, r#"{"from":"ada","text":"hi"}"#).await,
        r#"{"from":"server","text":"ada said hi"}"#
    );
    assert_eq!(roundtrip(&mut ws, "{").await, "decode=true");
}

#[derive(Default)]
struct Long;

#[server_endpoint("/i64")]
impl Long {
    /// @OnMessage public String twice(Long n) -- Java's boxed types, decoded from text
    #[on_message]
    fn twice(&mut self, n: i64) -> String {
        (n * 2).to_string()
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) -> String {
        format!("decode={}", error.is_decode())
    }
}

#[derive(Default)]
struct Double;

#[server_endpoint("/f64")]
impl Double {
    #[on_message]
    fn half(&mut self, x: f64) -> String {
        (x / 2.0).to_string()
    }
}

#[derive(Default)]
struct Flag;

#[server_endpoint("/bool")]
impl Flag {
    #[on_message]
    fn not(&mut self, b: bool) -> String {
        (!b).to_string()
    }
}

#[tokio::test]
async fn primitive_and_boxed_parameters_decoded_from_text() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<Long>()
            .endpoint::<Double>()
            .endpoint::<Flag>(),
    )
    .await;
    let mut ws = server.connect("/i64").await;
    assert_eq!(roundtrip(&mut ws, "21").await, "42");
    assert_eq!(roundtrip(&mut ws, " -4 ").await, "-8");
    assert_eq!(roundtrip(&mut ws, "4.5").await, "decode=true");
    let mut ws = server.connect("/f64").await;
    assert_eq!(roundtrip(&mut ws, "5").await, "2.5");
    let mut ws = server.connect("/bool").await;
    assert_eq!(roundtrip(&mut ws, "true").await, "false");
}

#[derive(Default)]
struct Binary;

#[server_endpoint("/bytes")]
impl Binary {
    /// @OnMessage public ByteBuffer binary(ByteBuffer data)
    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }
}

#[derive(Default)]
struct ByteArray;

#[server_endpoint("/byte-array")]
impl ByteArray {
    /// @OnMessage public String binary(byte[] data)
    #[on_message]
    fn binary(&mut self, data: &[u8]) -> String {
        format!(
            "{} bytes, sum {}",
            data.len(),
            data.iter().map(|b| *b as u32).sum::<u32>()
        )
    }
}

#[tokio::test]
async fn bytebuffer_and_byte_array_parameters() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<Binary>()
            .endpoint::<ByteArray>(),
    )
    .await;
    let mut ws = server.connect("/bytes").await;
    bounded("send", ws.send(WsMessage::binary(vec![0u8, 255, 7])))
        .await
        .unwrap();
    assert_eq!(
        recv_data(&mut ws).await,
        WsMessage::binary(vec![0u8, 255, 7])
    );
    // No text @OnMessage: 1003 CANNOT_ACCEPT, as Jakarta.
    send_text(&mut ws, "text").await;
    assert_eq!(recv_close(&mut ws).await.0, 1003);

    let mut ws = server.connect("/byte-array").await;
    bounded("send", ws.send(WsMessage::binary(vec![1u8, 2, 3])))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "3 bytes, sum 6");
}

#[derive(Default)]
struct Pongs;

#[server_endpoint("/pong")]
impl Pongs {
    #[on_open]
    fn open(&mut self, session: &Session) {
        session.ping(&b"t=1"[..]).unwrap();
    }

    /// @OnMessage public void pong(PongMessage pong)
    #[on_message]
    fn pong(&mut self, pong: Pong) -> String {
        format!("pong:{}", String::from_utf8_lossy(&pong.0))
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn pong_message_parameter() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Pongs>()).await;
    let mut ws = server.connect("/pong").await;
    // The client's stack answers the ping while reading; the pong reaches the handler.
    match recv(&mut ws).await {
        WsMessage::Ping(p) => assert_eq!(&p[..], b"t=1"),
        other => panic!("expected the ping, got {other:?}"),
    }
    assert_eq!(recv_text(&mut ws).await, "pong:t=1");
    // An unsolicited pong from the client reaches it too.
    bounded(
        "send pong",
        ws.send(WsMessage::Pong(Bytes::from_static(b"x"))),
    )
    .await
    .unwrap();
    assert_eq!(recv_text(&mut ws).await, "pong:x");
}

// Limits: maxMessageSize -----------------------------------------------------------------------

struct SizedEp {
    rec: Recorder,
}

#[server_endpoint("/sized", max_message_size = 4096)]
impl SizedEp {
    /// @OnMessage(maxMessageSize = 1024) on the binary handler only
    #[on_message(max_message_size = 1024)]
    fn binary(&mut self, data: Vec<u8>) -> String {
        format!("{} bytes", data.len())
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("{} chars", text.len())
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

fn sized(rec: &Recorder) -> Server {
    let rec = rec.clone();
    Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| SizedEp { rec: rec.clone() })
}

#[tokio::test]
async fn on_message_max_message_size_closes_1009() {
    let rec = Recorder::new();
    let server = start(sized(&rec)).await;
    let mut ws = server.connect("/sized").await;
    bounded("send", ws.send(WsMessage::binary(vec![0u8; 1024])))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "1024 bytes");
    // The text handler is not limited by the binary handler's size.
    assert_eq!(roundtrip(&mut ws, &"t".repeat(2000)).await, "2000 chars");
    bounded("send", ws.send(WsMessage::binary(vec![0u8; 1025])))
        .await
        .unwrap();
    let (code, reason) = recv_close(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events.last().unwrap(), "close:1009");
    assert!(
        events[0].contains("1025 bytes exceeds the limit of 1024"),
        "{events:?}"
    );
}

#[tokio::test]
async fn server_endpoint_max_message_size_closes_1009() {
    let rec = Recorder::new();
    let server = start(sized(&rec)).await;
    let mut ws = server.connect("/sized").await;
    assert_eq!(roundtrip(&mut ws, &"t".repeat(4096)).await, "4096 chars");
    send_text(&mut ws, &"t".repeat(4097)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
}

#[derive(Default)]
struct Big;

#[server_endpoint("/big")]
impl Big {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text.len().to_string()
    }
}

/// Tomcat's default text buffer is 8 KiB (`setMaxTextMessageBufferSize`): a 64 KiB message
/// closes with 1009 there. The default here is `Limits::max_message_size` = 1 MiB.
#[tokio::test]
async fn set_max_text_message_buffer_size_default_is_1_mib() {
    assert_eq!(Limits::default().max_message_size, 1 << 20);
    let server = start(Server::new().limits(fast_limits()).endpoint::<Big>()).await;
    let mut ws = server.connect("/big").await;
    assert_eq!(roundtrip(&mut ws, &"x".repeat(64 * 1024)).await, "65536");
    assert_eq!(roundtrip(&mut ws, &"x".repeat(1 << 20)).await, "1048576");
    send_text(&mut ws, &"x".repeat((1 << 20) + 1)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);

    // Server-wide, the way to raise (or lower) it.
    let mut limits = fast_limits();
    limits.max_message_size = 100;
    limits.max_frame_size = 100;
    let server = start(Server::new().limits(limits).endpoint::<Big>()).await;
    let mut ws = server.connect("/big").await;
    assert_eq!(roundtrip(&mut ws, &"x".repeat(100)).await, "100");
    send_text(&mut ws, &"x".repeat(101)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
}

// ---------------------------------------------------------------------------------------------
// Session methods

#[tokio::test]
async fn session_get_id_is_unique() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut a = server.connect("/jakarta/a/1").await;
    let mut b = server.connect("/jakarta/a/1").await;
    recv_text(&mut a).await;
    recv_text(&mut b).await;
    let ida = roundtrip(&mut a, "id").await;
    let idb = roundtrip(&mut b, "id").await;
    assert_ne!(ida, idb);
    assert!(ida.parse::<u64>().is_ok() && idb.parse::<u64>().is_ok());
}

#[tokio::test]
async fn session_get_open_sessions() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut a = server.connect("/jakarta/a/1").await;
    recv_text(&mut a).await;
    let ida = roundtrip(&mut a, "id").await;
    let mut b = server.connect("/jakarta/b/2").await;
    recv_text(&mut b).await;
    let idb = roundtrip(&mut b, "id").await;
    // Same endpoint, any room: both are listed; sorted ids.
    let (lo, hi) = if ida.parse::<u64>().unwrap() < idb.parse::<u64>().unwrap() {
        (&ida, &idb)
    } else {
        (&idb, &ida)
    };
    assert_eq!(
        roundtrip(&mut a, "open-sessions").await,
        format!("[{lo}, {hi}]")
    );
    send_close(&mut b, 1000, "").await;
    drain_until_end(&mut b).await;
    rec.wait_count("close:", 1).await;
    assert_eq!(roundtrip(&mut a, "open-sessions").await, format!("[{ida}]"));
}

#[tokio::test]
async fn session_get_user_properties() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    assert_eq!(roundtrip(&mut ws, "props").await, "visits=1");
    assert_eq!(roundtrip(&mut ws, "props").await, "visits=2");
    // Per connection, not shared.
    let mut other = server.connect("/jakarta/a/1").await;
    recv_text(&mut other).await;
    assert_eq!(roundtrip(&mut other, "props").await, "visits=1");
}

#[tokio::test]
async fn session_get_query_string_request_uri_and_headers() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = connect_with_headers(
        server.addr,
        "/jakarta/a/1?name=J%C3%BCrgen+K&x=1",
        &[("user-agent", "porting-test")],
    )
    .await;
    assert_eq!(
        recv_text(&mut ws).await,
        "open room=a n=1 uri=/jakarta/a/1?name=J%C3%BCrgen+K&x=1 agent=porting-test"
    );
    assert_eq!(
        roundtrip(&mut ws, "query").await,
        "query=Some(\"name=J%C3%BCrgen+K&x=1\") name=Some(\"Jürgen K\") uri=/jakarta/a/1?name=J%C3%BCrgen+K&x=1"
    );
}

#[tokio::test]
async fn session_is_open_and_close() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    assert_eq!(roundtrip(&mut ws, "open").await, "open=true");
    // session.close(): 1000; the reply queued after close() is not sent.
    send_text(&mut ws, "close").await;
    assert_eq!(recv_close(&mut ws).await, (1000, String::new()));
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert!(events.last().unwrap().ends_with(":1000:"), "{events:?}");
}

#[tokio::test]
async fn session_close_with_close_reason() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    send_text(&mut ws, "close-reason").await;
    assert_eq!(recv_close(&mut ws).await, (1013, "come back".to_owned()));
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert!(
        events.last().unwrap().ends_with(":1013:come back"),
        "{events:?}"
    );
}

struct IdleProbe;

#[server_endpoint("/idle-probe")]
impl IdleProbe {
    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> String {
        if let Ok(ms) = text.parse::<u64>() {
            session.set_idle_timeout(Some(Duration::from_millis(ms)));
        }
        format!("{:?}", session.idle_timeout())
    }
}

/// `setMaxIdleTimeout`/`getMaxIdleTimeout`; the closing itself is in tests/configurator.rs.
#[tokio::test]
async fn session_set_and_get_max_idle_timeout() {
    let mut limits = fast_limits();
    limits.idle_timeout = Some(Duration::from_secs(60));
    let server = start(Server::new().limits(limits).endpoint_with(|_| IdleProbe)).await;
    let mut ws = server.connect("/idle-probe").await;
    assert_eq!(roundtrip(&mut ws, "get").await, "Some(60s)");
    assert_eq!(roundtrip(&mut ws, "90000").await, "Some(90s)");
}

// ---------------------------------------------------------------------------------------------
// RemoteEndpoint.Basic / Async

#[tokio::test]
async fn remote_basic_send_text_and_async_send_text() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    send_text(&mut ws, "basic").await;
    assert_eq!(recv_text(&mut ws).await, "basic 1");
    assert_eq!(recv_text(&mut ws).await, "basic 2");
    assert_eq!(recv_text(&mut ws).await, "basic done");
    send_text(&mut ws, "async").await;
    let mut got = vec![recv_text(&mut ws).await, recv_text(&mut ws).await];
    got.sort();
    assert_eq!(got, ["async queued", "from another task"]);
}

#[tokio::test]
async fn remote_send_binary_and_send_object() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    send_text(&mut ws, "binary").await;
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(vec![1u8, 2, 3]));
    assert_eq!(recv_text(&mut ws).await, "binary sent");
    send_text(&mut ws, "object").await;
    assert_eq!(recv_text(&mut ws).await, "(1, 2)");
    assert_eq!(recv_text(&mut ws).await, "object sent");
}

/// `sendPong(ByteBuffer)`: an unsolicited pong (a unidirectional heartbeat).
#[tokio::test]
async fn remote_send_pong() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    send_text(&mut ws, "pong").await;
    match recv(&mut ws).await {
        WsMessage::Pong(p) => assert_eq!(&p[..], b"unsolicited"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert_eq!(recv_text(&mut ws).await, "pong sent");
}

/// `sendPing(ByteBuffer)` on an endpoint with a `PongMessage` handler: see
/// `pong_message_parameter`. Without a pong handler, Java ignores the peer's pong; here the
/// pong currently closes the session with 1003.
#[tokio::test]
async fn remote_send_ping_without_a_pong_handler() {
    let rec = Recorder::new();
    let server = start(jakarta(&rec)).await;
    let mut ws = server.connect("/jakarta/a/1").await;
    recv_text(&mut ws).await;
    send_text(&mut ws, "ping").await;
    match recv(&mut ws).await {
        WsMessage::Ping(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected the ping, got {other:?}"),
    }
    assert_eq!(recv_text(&mut ws).await, "ping sent");
    // The client answered the ping while reading; the session must stay open.
    assert_eq!(roundtrip(&mut ws, "after").await, "after");
}

struct Concurrent;

#[server_endpoint("/concurrent")]
impl Concurrent {
    #[on_open]
    fn open(&mut self, session: &Session) {
        // Ten tasks calling "sendText" at once on the same session: Tomcat throws
        // IllegalStateException (TEXT_FULL_WRITING); here every message arrives, whole.
        for t in 0..10 {
            let s = session.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    s.send(format!("{t}:{i}")).await.unwrap();
                }
            });
        }
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn remote_concurrent_send_text_never_text_full_writing() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(|_| Concurrent),
    )
    .await;
    let mut ws = server.connect("/concurrent").await;
    let mut next = [0usize; 10];
    for _ in 0..1000 {
        let text = recv_text(&mut ws).await;
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "messages of task {t} out of order");
        next[t] += 1;
    }
    assert_eq!(next, [100; 10]);
}

struct Batch;

#[server_endpoint("/batch")]
impl Batch {
    #[on_open]
    fn open(&mut self, session: &Session) {
        // setBatchingAllowed(true) + flushBatch(): always on; try_send never waits.
        for i in 0..500 {
            session.try_send(format!("m{i}")).unwrap();
        }
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn remote_set_batching_allowed_is_always_on_and_ordered() {
    let server = start(Server::new().limits(fast_limits()).endpoint_with(|_| Batch)).await;
    let mut ws = server.connect("/batch").await;
    for i in 0..500 {
        assert_eq!(recv_text(&mut ws).await, format!("m{i}"));
    }
}

#[tokio::test]
async fn remote_send_after_close_fails_like_an_ioexception() {
    let (tx, rx) = tokio::sync::oneshot::channel::<Session>();
    let tx = std::sync::Mutex::new(Some(tx));
    struct Grab(Option<tokio::sync::oneshot::Sender<Session>>);
    #[server_endpoint("/grab")]
    impl Grab {
        #[on_open]
        fn open(&mut self, session: &Session) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(session.clone());
            }
        }
        #[on_message]
        fn text(&mut self, text: String) -> String {
            text
        }
    }
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(move |_| Grab(tx.lock().unwrap().take())),
    )
    .await;
    let mut ws = server.connect("/grab").await;
    let session = bounded("session", rx).await.unwrap();
    send_close(&mut ws, 1000, "").await;
    drain_until_end(&mut ws).await;
    bounded("closed", async {
        while session.is_open() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(session.try_send("late"), Err(SendError::Closed));
    assert_eq!(session.send("late").await, Err(SendError::Closed));
}

// ---------------------------------------------------------------------------------------------
// CloseReason.CloseCodes

#[test]
fn close_codes_constants_match_jakarta() {
    // Jakarta CloseReason.CloseCodes -> CloseCode constant.
    let table: [(&str, CloseCode, u16); 14] = [
        ("NORMAL_CLOSURE", CloseCode::NORMAL, 1000),
        ("GOING_AWAY", CloseCode::GOING_AWAY, 1001),
        ("PROTOCOL_ERROR", CloseCode::PROTOCOL_ERROR, 1002),
        ("CANNOT_ACCEPT", CloseCode::CANNOT_ACCEPT, 1003),
        // RESERVED (1004) has no constant: it may never be used.
        ("NO_STATUS_CODE", CloseCode::NO_STATUS, 1005),
        ("CLOSED_ABNORMALLY", CloseCode::ABNORMAL, 1006),
        ("NOT_CONSISTENT", CloseCode::INVALID_PAYLOAD, 1007),
        ("VIOLATED_POLICY", CloseCode::POLICY_VIOLATION, 1008),
        ("TOO_BIG", CloseCode::TOO_BIG, 1009),
        ("NO_EXTENSION", CloseCode::MANDATORY_EXTENSION, 1010),
        ("UNEXPECTED_CONDITION", CloseCode::INTERNAL_ERROR, 1011),
        ("SERVICE_RESTART", CloseCode::SERVICE_RESTART, 1012),
        ("TRY_AGAIN_LATER", CloseCode::TRY_AGAIN_LATER, 1013),
        ("TLS_HANDSHAKE_FAILURE", CloseCode::TLS_HANDSHAKE, 1015),
    ];
    for (java, code, n) in table {
        assert_eq!(code.as_u16(), n, "{java}");
        assert_eq!(CloseCode::from(n), code, "{java}");
    }
    // CloseCodes.getCloseCode(int) for application codes.
    assert_eq!(CloseCode::from(4000).as_u16(), 4000);
    // Codes a peer must never put in a close frame.
    for never in [1004, 1005, 1006, 1015] {
        assert!(!CloseCode::from(never).is_sendable(), "{never}");
    }
    // new CloseReason(code, phrase): the phrase is cut to fit a close frame (123 bytes).
    let r = CloseReason::new(CloseCode::NORMAL, "x".repeat(200));
    assert_eq!(r.reason().len(), 123);
    assert_eq!(CloseReason::normal().code(), CloseCode::NORMAL);
}

// ---------------------------------------------------------------------------------------------
// ServerEndpointConfig.Configurator.getEndpointInstance -> Server::endpoint_with; and the
// Spring pain point: beans not injected into endpoints -> factories and State<T>

struct Repo {
    greeting: String,
    hits: AtomicUsize,
}

struct Injected {
    repo: Arc<Repo>,
    user: String,
}

#[server_endpoint("/injected")]
impl Injected {
    #[on_open]
    fn open(&mut self) -> String {
        format!("{} {}", self.repo.greeting, self.user)
    }

    /// State<T>: the same registered value, injected by type into any handler.
    #[on_message]
    fn text(&mut self, counter: State<AtomicUsize>, text: String) -> String {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.repo.hits.fetch_add(1, Ordering::SeqCst);
        format!("{text} #{n}")
    }
}

#[tokio::test]
async fn configurator_get_endpoint_instance_is_endpoint_with_and_state() {
    let repo = Arc::new(Repo {
        greeting: "hello".into(),
        hits: AtomicUsize::new(0),
    });
    let for_factory = repo.clone();
    let server = start(
        Server::new()
            .limits(fast_limits())
            .state(AtomicUsize::new(0))
            .endpoint_with(move |handshake: &Handshake| Injected {
                repo: for_factory.clone(),
                user: handshake.query_param("user").unwrap_or_default(),
            }),
    )
    .await;
    let mut a = server.connect("/injected?user=ada").await;
    let mut b = server.connect("/injected?user=bob").await;
    assert_eq!(recv_text(&mut a).await, "hello ada");
    assert_eq!(recv_text(&mut b).await, "hello bob");
    assert_eq!(roundtrip(&mut a, "x").await, "x #1");
    assert_eq!(roundtrip(&mut b, "y").await, "y #2");
    assert_eq!(repo.hits.load(Ordering::SeqCst), 2);
}
