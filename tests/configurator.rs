//! The Java `ServerEndpointConfig.Configurator` counterparts and the handshake-level settings of
//! a ported web application: origin checks (`Server::allowed_origins`, `check_origin` -> 403),
//! refusing a handshake with 401 and a body, per-connection properties set in
//! `modify_handshake` and seen by every handler, extra response headers, subprotocol
//! negotiation (JSR 356: the first of the *client's* list the server supports; none in common
//! -> no header and the connection still opens), the web-app context path, and the Java
//! `setMaxIdleTimeout` semantics (`Session::set_idle_timeout`, `Limits::idle_timeout`: 1001)
//! next to keep-alive (a peer that never answers pings is dropped with 1006).
//!
//! Handshake-level cases use raw HTTP over a `TcpStream`; every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use endpoint::prelude::*;
use endpoint::Limits;
use futures::{SinkExt, StreamExt};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::WebSocketStream;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A plain endpoint that says hello and echoes, for handshake-level tests.
#[derive(Default)]
struct Plain;

#[server_endpoint("/plain")]
impl Plain {
    #[on_open]
    fn open(&mut self) -> &'static str {
        "hello"
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

/// A handshake by hand over a raw socket, with `extra` header lines; returns the answer's status,
/// headers and body (the body only when not `101`).
async fn handshake(addr: SocketAddr, path: &str, extra: &[&str]) -> HttpResponse {
    http(addr, &upgrade_request(path, &[], extra)).await
}

/// A raw handshake that must succeed; the socket continues as a WebSocket client.
async fn raw_upgrade(
    addr: SocketAddr,
    path: &str,
    extra: &[&str],
) -> (Vec<(String, String)>, WebSocketStream<TcpStream>) {
    let mut stream = bounded("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let req = upgrade_request(path, &[], extra);
    bounded("write", stream.write_all(req.as_bytes()))
        .await
        .expect("write");
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 1024];
        let n = bounded("read head", stream.read(&mut chunk))
            .await
            .expect("read");
        assert!(n > 0, "closed before the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{head}");
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let ws = WebSocketStream::from_partially_read(stream, rest, WsRole::Client, None).await;
    (headers, ws)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn next_text<S>(ws: &mut WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match bounded("next message", ws.next()).await {
            Some(Ok(WsMessage::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Origin checks: Server::allowed_origins and Configurator::check_origin

#[tokio::test]
async fn server_allowed_origins_refuses_other_origins_with_403() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .allowed_origins(["https://chat.example", "http://localhost:8089/"])
            .endpoint::<Plain>(),
    )
    .await;

    let refused = handshake(server.addr, "/plain", &["Origin: https://evil.example"]).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("https://evil.example"),
        "{}",
        refused.body
    );

    for ok in [
        "Origin: https://chat.example",
        "Origin: HTTPS://CHAT.EXAMPLE", // compared ASCII case-insensitively
        "Origin: http://localhost:8089", // the trailing `/` of the list entry is ignored
    ] {
        assert_eq!(
            handshake(server.addr, "/plain", &[ok]).await.status,
            101,
            "{ok}"
        );
    }
    // No Origin: not a browser, not subject to the check.
    assert_eq!(handshake(server.addr, "/plain", &[]).await.status, 101);
    // A port is part of the origin.
    let other_port = handshake(server.addr, "/plain", &["Origin: http://localhost:9999"]).await;
    assert_eq!(other_port.status, 403);
}

#[derive(Default)]
struct OnlyChatExample;

impl Configurator for OnlyChatExample {
    fn check_origin(&self, origin: Option<&str>) -> bool {
        origin == Some("https://chat.example")
    }
}

#[derive(Default)]
struct OriginChecked;

#[server_endpoint("/checked", configurator = OnlyChatExample)]
impl OriginChecked {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn configurator_check_origin_refuses_with_403() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<OriginChecked>(),
    )
    .await;
    let refused = handshake(server.addr, "/checked", &["Origin: https://evil.example"]).await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.is_empty());
    // check_origin also sees handshakes without Origin (None) and decides for them.
    assert_eq!(handshake(server.addr, "/checked", &[]).await.status, 403);
    let ok = handshake(server.addr, "/checked", &["Origin: https://chat.example"]).await;
    assert_eq!(ok.status, 101);
}

// ---------------------------------------------------------------------------------------------
// modify_handshake: refusing with any status, properties, response headers

#[derive(Clone, Debug, PartialEq)]
struct User(String);

#[derive(Clone, Debug, PartialEq)]
struct Role(&'static str);

#[derive(Default)]
struct TokenAuth;

impl Configurator for TokenAuth {
    fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
        if request.query_param("flood").is_some() {
            return Err(Rejection::Status(
                StatusCode::TOO_MANY_REQUESTS,
                "slow down\n".into(),
            ));
        }
        let token = request
            .query_param("token")
            .or_else(|| request.cookie("token"));
        let user = match token.as_deref() {
            Some("t-ada") => "ada",
            Some("t-bob") => "bob",
            Some(_) => {
                return Err(Rejection::Status(
                    StatusCode::UNAUTHORIZED,
                    "invalid token\n".into(),
                ))
            }
            None => {
                return Err(Rejection::Status(
                    StatusCode::UNAUTHORIZED,
                    "a token is required (?token= or a `token` cookie)\n".into(),
                ))
            }
        };
        request.properties().insert(User(user.into()));
        request.properties().insert(Role("member"));
        let h = request.response_headers_mut();
        h.insert("x-authenticated-user", user.parse().unwrap());
        h.insert("set-cookie", "seen=1; HttpOnly".parse().unwrap());
        Ok(())
    }
}

/// Records which user every handler sees.
struct Authed {
    rec: Recorder,
}

fn who(session: &Session) -> String {
    let user = session.properties().get::<User>().map(|u| u.0);
    let role = session.properties().get::<Role>().map(|r| r.0);
    format!("{}/{}", user.unwrap_or_default(), role.unwrap_or_default())
}

#[server_endpoint("/authed", configurator = TokenAuth)]
impl Authed {
    #[on_open]
    fn open(&mut self, session: &Session, handshake: &Handshake) -> String {
        let via_handshake = handshake.properties().get::<User>().map(|u| u.0);
        self.rec.push(format!(
            "open:{}:{}",
            who(session),
            via_handshake.unwrap_or_default()
        ));
        format!("welcome {}", who(session))
    }

    #[on_message]
    fn number(&mut self, session: &Session, n: i64) -> String {
        self.rec.push(format!("message:{}", who(session)));
        format!("{}: {n}", who(session))
    }

    #[on_error]
    fn error(&mut self, session: &Session, error: &EndpointError) {
        self.rec
            .push(format!("error:{}:{}", who(session), error.is_decode()));
    }

    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        self.rec
            .push(format!("close:{}:{}", who(session), reason.code().as_u16()));
    }
}

fn authed_server(rec: &Recorder) -> Server {
    let rec = rec.clone();
    Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Authed { rec: rec.clone() })
}

#[tokio::test]
async fn modify_handshake_rejects_with_401_and_a_body() {
    let rec = Recorder::new();
    let server = start(authed_server(&rec)).await;

    let missing = handshake(server.addr, "/authed", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        "a token is required (?token= or a `token` cookie)\n"
    );
    assert!(missing
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert_eq!(missing.header("upgrade"), None);

    let invalid = handshake(server.addr, "/authed?token=nope", &[]).await;
    assert_eq!(invalid.status, 401);
    assert_eq!(invalid.body, "invalid token\n");

    let cookie = handshake(server.addr, "/authed", &["Cookie: a=1; token=wrong"]).await;
    assert_eq!(cookie.status, 401);
    assert_eq!(cookie.body, "invalid token\n");

    // Any status, not only 401 (Java: only 403, through checkOrigin).
    let flood = handshake(server.addr, "/authed?flood=1&token=t-ada", &[]).await;
    assert_eq!(flood.status, 429);
    assert_eq!(flood.body, "slow down\n");

    // A refused handshake never reaches the endpoint.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rec.events(), Vec::<String>::new());
}

#[tokio::test]
async fn modify_handshake_properties_are_visible_in_every_handler() {
    let rec = Recorder::new();
    let server = start(authed_server(&rec)).await;

    let mut ws = server.connect("/authed?token=t-ada").await;
    assert_eq!(recv_text(&mut ws).await, "welcome ada/member");
    assert_eq!(roundtrip(&mut ws, "42").await, "ada/member: 42");
    send_text(&mut ws, "not a number").await; // -> on_error (decode), the session stays open
    assert_eq!(roundtrip(&mut ws, "7").await, "ada/member: 7");
    send_close(&mut ws, 1000, "bye").await;
    drain_until_end(&mut ws).await;

    let events = rec.wait_count("close:", 1).await;
    assert_eq!(
        events,
        [
            "open:ada/member:ada",
            "message:ada/member",
            "error:ada/member:true",
            "message:ada/member",
            "close:ada/member:1000",
        ]
    );

    // From a cookie too, and each connection has its own properties (Java's shared
    // EndpointConfig.getUserProperties() would mix them up).
    let mut bob = connect_with_headers(server.addr, "/authed", &[("cookie", "token=t-bob")]).await;
    let mut ada = server.connect("/authed?token=t-ada").await;
    assert_eq!(recv_text(&mut bob).await, "welcome bob/member");
    assert_eq!(recv_text(&mut ada).await, "welcome ada/member");
    assert_eq!(roundtrip(&mut bob, "1").await, "bob/member: 1");
    assert_eq!(roundtrip(&mut ada, "2").await, "ada/member: 2");
}

#[tokio::test]
async fn modify_handshake_adds_response_headers() {
    let rec = Recorder::new();
    let server = start(authed_server(&rec)).await;
    let ok = handshake(server.addr, "/authed?token=t-bob", &[]).await;
    assert_eq!(ok.status, 101);
    assert_eq!(ok.header("x-authenticated-user"), Some("bob"));
    assert_eq!(ok.header("set-cookie"), Some("seen=1; HttpOnly"));
    assert_eq!(ok.header("sec-websocket-accept"), Some(ACCEPT));
}

// ---------------------------------------------------------------------------------------------
// Subprotocols

struct Proto {
    rec: Recorder,
}

#[server_endpoint("/proto", subprotocols = ["v2", "v1"])]
impl Proto {
    #[on_open]
    fn open(&mut self, session: &Session, handshake: &Handshake) -> String {
        assert_eq!(session.subprotocol(), handshake.subprotocol());
        self.rec.push(format!(
            "open:{:?}",
            session.subprotocol().map(str::to_owned)
        ));
        format!("protocol={}", session.subprotocol().unwrap_or("none"))
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> String {
        format!("{text} over {}", session.subprotocol().unwrap_or("none"))
    }
}

fn proto_server(rec: &Recorder) -> Server {
    let rec = rec.clone();
    Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Proto { rec: rec.clone() })
}

#[tokio::test]
async fn subprotocol_first_of_the_client_list_wins() {
    let rec = Recorder::new();
    let server = start(proto_server(&rec)).await;

    // Client [v3, v1, v2], server [v2, v1]: v1, the client's first supported choice.
    let (headers, mut ws) = raw_upgrade(
        server.addr,
        "/proto",
        &["Sec-WebSocket-Protocol: v3, v1, v2"],
    )
    .await;
    assert_eq!(header(&headers, "sec-websocket-protocol"), Some("v1"));
    assert_eq!(next_text(&mut ws).await, "protocol=v1");
    ws.send(WsMessage::text("hi")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hi over v1");

    // The same through a real client, with the list split over two header lines.
    let mut ws = connect_with_headers(
        server.addr,
        "/proto",
        &[("sec-websocket-protocol", "v2, v1")],
    )
    .await;
    assert_eq!(recv_text(&mut ws).await, "protocol=v2");
    assert_eq!(
        rec.wait_count("open:", 2).await,
        ["open:Some(\"v1\")", "open:Some(\"v2\")"]
    );
}

#[tokio::test]
async fn subprotocol_none_in_common_opens_without_the_header() {
    let rec = Recorder::new();
    let server = start(proto_server(&rec)).await;

    let (headers, mut ws) =
        raw_upgrade(server.addr, "/proto", &["Sec-WebSocket-Protocol: x, y"]).await;
    assert_eq!(header(&headers, "sec-websocket-protocol"), None);
    assert_eq!(next_text(&mut ws).await, "protocol=none");
    ws.send(WsMessage::text("still works")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "still works over none");

    // No Sec-WebSocket-Protocol at all: no header either.
    let (headers, mut ws) = raw_upgrade(server.addr, "/proto", &[]).await;
    assert_eq!(header(&headers, "sec-websocket-protocol"), None);
    assert_eq!(next_text(&mut ws).await, "protocol=none");
}

/// A configurator that prefers the server's order (Java's `getNegotiatedSubprotocol` override).
#[derive(Default)]
struct ServerOrder;

impl Configurator for ServerOrder {
    fn select_subprotocol(&self, requested: &[String], supported: &[&str]) -> Option<String> {
        supported
            .iter()
            .find(|s| requested.iter().any(|r| r == *s))
            .map(|s| (*s).to_owned())
    }
}

#[derive(Default)]
struct ServerPicks;

#[server_endpoint("/picks", subprotocols = ["v2", "v1"], configurator = ServerOrder)]
impl ServerPicks {
    #[on_open]
    fn open(&mut self, session: &Session) -> String {
        format!("protocol={}", session.subprotocol().unwrap_or("none"))
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn configurator_select_subprotocol_overrides_the_choice() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint::<ServerPicks>(),
    )
    .await;
    let (headers, mut ws) = raw_upgrade(
        server.addr,
        "/picks",
        &["Sec-WebSocket-Protocol: v3, v1, v2"],
    )
    .await;
    assert_eq!(header(&headers, "sec-websocket-protocol"), Some("v2"));
    assert_eq!(next_text(&mut ws).await, "protocol=v2");
}

// ---------------------------------------------------------------------------------------------
// Context path (the web application's context, e.g. /myChat)

#[derive(Default)]
struct EchoDo;

#[server_endpoint("/echo.do")]
impl EchoDo {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn context_path_serves_endpoints_under_the_prefix_only() {
    let server = start(
        Server::new()
            .limits(fast_limits())
            .context_path("/myChat/") // a trailing slash is ignored
            .endpoint::<EchoDo>(),
    )
    .await;

    let mut ws = server.connect("/myChat/echo.do").await;
    assert_eq!(roundtrip(&mut ws, "안녕하세요").await, "안녕하세요");

    for path in [
        "/echo.do",
        "/myChat",
        "/myChat/",
        "/myChatecho.do",
        "/other/echo.do",
    ] {
        let res = handshake(server.addr, path, &[]).await;
        assert_eq!(res.status, 404, "{path}");
    }
    // A plain GET of the endpoint inside the context: 426, as without a context path.
    let plain = http(
        server.addr,
        "GET /myChat/echo.do HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(plain.status, 426);
}

// ---------------------------------------------------------------------------------------------
// Idle timeout (Java `Session.setMaxIdleTimeout`) and keep-alive

/// Sets its idle timeout from `?idle=MILLIS` (`0`: none), like `session.setMaxIdleTimeout(ms)`
/// in a Java `@OnOpen`.
struct Idle {
    rec: Recorder,
}

#[server_endpoint("/idle")]
impl Idle {
    #[on_open]
    fn open(&mut self, session: &Session) -> String {
        if let Some(ms) = session.query_param("idle") {
            let ms: u64 = ms.parse().unwrap();
            session.set_idle_timeout((ms > 0).then(|| Duration::from_millis(ms)));
        }
        format!("idle={:?}", session.idle_timeout())
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        let kind = match error {
            EndpointError::Timeout(_) => "timeout",
            EndpointError::NoPong(_) => "no-pong",
            _ => "other",
        };
        self.rec.push(format!("error:{kind}"));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

fn idle_server(rec: &Recorder, limits: Limits) -> Server {
    let rec = rec.clone();
    Server::new()
        .limits(limits)
        .endpoint_with(move |_| Idle { rec: rec.clone() })
}

#[tokio::test]
async fn session_set_idle_timeout_closes_a_silent_peer_with_1001() {
    let rec = Recorder::new();
    let server = start(idle_server(&rec, fast_limits())).await;

    let mut ws = server.connect("/idle?idle=300").await;
    let t0 = Instant::now();
    assert_eq!(recv_text(&mut ws).await, "idle=Some(300ms)");
    let (code, reason) = recv_close(&mut ws).await;
    let waited = t0.elapsed();
    assert_eq!(code, 1001, "{reason}");
    assert!(reason.contains("idle"), "{reason}");
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    drain_until_end(&mut ws).await;
    assert_eq!(
        rec.wait_count("close:", 1).await,
        ["error:timeout", "close:1001"]
    );
}

#[tokio::test]
async fn session_set_idle_timeout_is_reset_by_messages() {
    let rec = Recorder::new();
    let server = start(idle_server(&rec, fast_limits())).await;

    let mut ws = server.connect("/idle?idle=400").await;
    assert_eq!(recv_text(&mut ws).await, "idle=Some(400ms)");
    // 1.2 s of traffic, one message every 100 ms: three idle timeouts' worth, never idle.
    for i in 0..12 {
        assert_eq!(roundtrip(&mut ws, &format!("m{i}")).await, format!("m{i}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rec.events(), Vec::<String>::new());
    // Then silence: closed.
    assert_eq!(recv_close(&mut ws).await.0, 1001);
}

#[tokio::test]
async fn limits_idle_timeout_is_the_default_and_none_disables_it() {
    let rec = Recorder::new();
    let mut limits = fast_limits();
    limits.idle_timeout = Some(Duration::from_millis(300));
    let server = start(idle_server(&rec, limits)).await;

    // The server default applies without any call.
    let mut ws = server.connect("/idle").await;
    assert_eq!(recv_text(&mut ws).await, "idle=Some(300ms)");
    assert_eq!(recv_close(&mut ws).await.0, 1001);
    drain_until_end(&mut ws).await;
    rec.wait_count("close:1001", 1).await;

    // setMaxIdleTimeout(0) in Java, set_idle_timeout(None) here: never idle.
    let mut ws = server.connect("/idle?idle=0").await;
    assert_eq!(recv_text(&mut ws).await, "idle=None");
    let quiet = tokio::time::timeout(Duration::from_millis(800), recv_data(&mut ws)).await;
    assert!(
        quiet.is_err(),
        "closed although idle timeout is off: {quiet:?}"
    );
    assert_eq!(roundtrip(&mut ws, "still open").await, "still open");
}

#[tokio::test]
async fn keep_alive_drops_a_peer_that_never_answers_pings_with_1006() {
    let rec = Recorder::new();
    let mut limits = fast_limits();
    let (interval, deadline) = (Duration::from_millis(200), Duration::from_millis(300));
    limits.ping_interval = Some(interval);
    limits.pong_timeout = deadline;
    let server = start(idle_server(&rec, limits)).await;

    // A raw peer: it reads, but never answers a ping (a half-open connection, a dead NAT entry).
    let mut raw = RawWs::connect(server.addr, "/idle").await;
    let t0 = Instant::now();
    let hello = raw.read_frame().await.expect("greeting");
    assert_eq!(hello.payload, b"idle=None");
    let ping = raw.read_frame().await.expect("keep-alive ping");
    assert_eq!(ping.opcode, 0x9, "{ping:?}");
    let events = rec.wait_count("close:", 1).await;
    let took = t0.elapsed();
    assert_eq!(events, ["error:no-pong", "close:1006"]);
    assert!(
        took >= interval + deadline - Duration::from_millis(50),
        "dropped too early: {took:?}"
    );
    assert!(
        took < interval + deadline + Duration::from_millis(1500),
        "dropped too late: {took:?}"
    );
    raw.expect_eof().await;
}

/// Java ignores a pong when the endpoint has no `PongMessage` handler; so must a keep-alive
/// answer. Currently the runtime hands the pong to `on_message`, the macro's `accepts` says no,
/// and the session is closed with 1003 (CANNOT_ACCEPT) at the first answered keep-alive ping.
#[tokio::test]
async fn keep_alive_pongs_do_not_close_endpoints_without_a_pong_handler() {
    let rec = Recorder::new();
    let mut limits = fast_limits();
    limits.ping_interval = Some(Duration::from_millis(100));
    let server = start(idle_server(&rec, limits)).await;

    let mut ws = server.connect("/idle").await;
    assert_eq!(recv_text(&mut ws).await, "idle=None");
    // Reading answers the pings; several intervals pass.
    let quiet = tokio::time::timeout(Duration::from_millis(600), recv_data(&mut ws)).await;
    assert!(quiet.is_err(), "closed by keep-alive: {quiet:?}");
    assert_eq!(roundtrip(&mut ws, "still open").await, "still open");
    assert_eq!(rec.events(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// A refusal with headers, and a configurator reading server state (a token store).

/// Tokens known to the server, registered with `Server::state`.
struct TokenStore {
    tokens: Vec<(&'static str, &'static str)>,
}

#[derive(Default)]
struct StoreAuth;

impl Configurator for StoreAuth {
    fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
        let store = request
            .state::<TokenStore>()
            .expect("TokenStore is registered");
        let tokens = request.query_params("token");
        let user = tokens
            .iter()
            .find_map(|t| store.tokens.iter().find(|(k, _)| k == t).map(|(_, u)| *u));
        match user {
            Some(user) => {
                request.properties().insert(User(user.into()));
                Ok(())
            }
            None => Err(
                Rejection::Status(StatusCode::UNAUTHORIZED, "unknown token\n".into()).with_header(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"chat\""),
                ),
            ),
        }
    }
}

#[derive(Default)]
struct StoreAuthed;

#[server_endpoint("/store", configurator = StoreAuth)]
impl StoreAuthed {
    #[on_message]
    fn text(&mut self, session: &Session, _text: String) -> String {
        session
            .properties()
            .get::<User>()
            .map(|u| u.0)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn configurator_reads_server_state_and_refuses_with_headers() {
    let server = start(
        Server::new()
            .state(TokenStore {
                tokens: vec![("t-1", "carol")],
            })
            .endpoint::<StoreAuthed>(),
    )
    .await;
    let refused = handshake(server.addr, "/store?token=nope", &[]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, "unknown token\n");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"chat\"")
    );

    // A repeated parameter: the second value is the known one.
    let (_, mut ws) = raw_upgrade(server.addr, "/store?token=nope&token=t-1", &[]).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text("who"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "carol");
    drop(ws);
    server.shutdown().await;
}
