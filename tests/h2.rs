//! WebSockets over HTTP/2 (RFC 8441), with an independent HTTP/2 client (the `h2` crate) and
//! tokio-tungstenite over each stream: several WebSockets on one TCP connection, echo and
//! subprotocols, a room shared by HTTP/1.1 and HTTP/2 sessions, one stream's fault (1009, 1002,
//! a reader that stalls) closing that stream only, the refusals of the HTTP/1.1 table as HTTP/2
//! responses, `Server::http2(false)`, TLS with ALPN `h2`, and shutdown (1001 to every stream,
//! GOAWAY, every `on_close`).

mod common;
mod h2_support;

use common::*;
use endpoint::prelude::*;
use endpoint::{Limits, Server};
use futures::{SinkExt, StreamExt};
use h2_support::{H2Conn, H2Ws};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

#[derive(Default)]
struct Log {
    rec: Recorder,
}

/// Echo, plus commands: `join:R` joins room R, `say:R:T` broadcasts T to room R, `flood:R:N:K`
/// broadcasts K messages of N bytes to room R.
#[derive(Default)]
struct Lab;

#[server_endpoint("/lab", subprotocols = ["v2", "v1"], max_message_size = 1024)]
impl Lab {
    #[on_open]
    fn open(&mut self, session: &Session, log: State<Log>) {
        log.rec.push(format!(
            "open:{}:{}",
            session.subprotocol().unwrap_or("-"),
            session.is_secure()
        ));
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> Option<String> {
        let mut parts = text.splitn(4, ':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("join"), Some(room), None, None) => {
                Some(format!("joined:{}", session.join(room)))
            }
            (Some("say"), Some(room), Some(t), None) => {
                let _ = session
                    .room(room)
                    .broadcast(t.to_owned())
                    .expect("broadcast");
                None
            }
            (Some("flood"), Some(room), Some(n), Some(k)) => {
                let body = "x".repeat(n.parse().unwrap());
                for _ in 0..k.parse::<usize>().unwrap() {
                    let _ = session
                        .room(room)
                        .broadcast(body.clone())
                        .expect("broadcast");
                }
                Some("flooded".to_owned())
            }
            _ => Some(text),
        }
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason, log: State<Log>) {
        log.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

/// A configurator over HTTP/2: `x-token: t-ada` opens as user `ada` (a property, and a
/// response header), anything else is refused with 401.
#[derive(Default)]
struct TokenAuth;

#[derive(Clone)]
struct User(String);

impl endpoint::Configurator for TokenAuth {
    fn modify_handshake(
        &self,
        request: &mut endpoint::HandshakeRequest,
    ) -> Result<(), endpoint::Rejection> {
        if request.header("x-token") != Some("t-ada") {
            return Err(endpoint::Rejection::Status(
                http::StatusCode::UNAUTHORIZED,
                "token required\n".into(),
            ));
        }
        request.properties().insert(User("ada".into()));
        request
            .response_headers_mut()
            .insert("x-authenticated-user", "ada".parse().unwrap());
        Ok(())
    }
}

#[derive(Default)]
struct Authed;

#[server_endpoint("/authed", configurator = TokenAuth)]
impl Authed {
    #[on_open]
    fn open(&mut self, session: &Session) -> String {
        let user = session.properties().get::<User>().map(|u| u.0);
        format!("welcome {}", user.unwrap_or_default())
    }
}

fn server(limits: Limits) -> Server {
    Server::new()
        .limits(limits)
        .state(Log::default())
        .endpoint::<Lab>()
        .endpoint::<Authed>()
}

async fn next_text(ws: &mut H2Ws) -> String {
    loop {
        match bounded("a message over h2", ws.next()).await {
            Some(Ok(WsMessage::Text(t))) => return t.to_string(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

async fn h2_roundtrip(ws: &mut H2Ws, text: &str) -> String {
    bounded("send over h2", ws.send(WsMessage::text(text)))
        .await
        .expect("send");
    next_text(ws).await
}

/// The close code the server sent on a stream (reading past data messages).
async fn h2_close_code(ws: &mut H2Ws) -> u16 {
    loop {
        match bounded("a close frame over h2", ws.next()).await {
            Some(Ok(WsMessage::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(WsMessage::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_websockets_share_one_connection_with_subprotocols() {
    let server = server(fast_limits());
    let log = server.get_state::<Log>().unwrap();
    let server = start(server).await;
    let mut conn = H2Conn::connect(server.addr).await;

    let mut streams = Vec::new();
    for _ in 0..5 {
        let (head, ws) = conn
            .websocket("/lab", &[("sec-websocket-protocol", "v1, v2")])
            .await;
        // RFC 8441: 200, no key and so no accept, the subprotocol as over HTTP/1.1.
        assert_eq!(head.version, http::Version::HTTP_2);
        assert!(head.headers.get("sec-websocket-accept").is_none());
        assert!(head.headers.get("upgrade").is_none());
        assert_eq!(head.headers["sec-websocket-protocol"], "v1");
        streams.push(ws);
    }
    log.rec.wait_count("open:v1:false", 5).await;

    // Interleaved echoes: every stream gets its own answers, in order.
    for round in 0..20 {
        for (i, ws) in streams.iter_mut().enumerate() {
            let msg = format!("s{i} r{round}");
            bounded("send", ws.send(WsMessage::text(msg)))
                .await
                .unwrap();
        }
        for (i, ws) in streams.iter_mut().enumerate() {
            assert_eq!(next_text(ws).await, format!("s{i} r{round}"));
        }
    }
    // A plain HTTP/1.1 WebSocket on the same port, beside them.
    let mut h1 = server.connect("/lab").await;
    assert_eq!(roundtrip(&mut h1, "h1 too").await, "h1 too");

    // A stream closed by the client closes that session only.
    let mut first = streams.remove(0);
    bounded("close", first.close(None)).await.unwrap();
    log.rec.wait_count("close:1005", 1).await;
    for ws in &mut streams {
        assert_eq!(h2_roundtrip(ws, "still here").await, "still here");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_http1_and_http2_sessions() {
    let server = start(server(fast_limits())).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let (_, mut a) = conn.websocket("/lab", &[]).await;
    let (_, mut b) = conn.websocket("/lab", &[]).await;
    let mut c = server.connect("/lab").await;
    assert_eq!(h2_roundtrip(&mut a, "join:hall").await, "joined:true");
    assert_eq!(h2_roundtrip(&mut b, "join:hall").await, "joined:true");
    assert_eq!(roundtrip(&mut c, "join:hall").await, "joined:true");

    // From HTTP/1.1 to both HTTP/2 streams, and from HTTP/2 to all.
    send_text(&mut c, "say:hall:from h1").await;
    assert_eq!(next_text(&mut a).await, "from h1");
    assert_eq!(next_text(&mut b).await, "from h1");
    assert_eq!(recv_text(&mut c).await, "from h1");
    bounded("send", a.send(WsMessage::text("say:hall:from h2")))
        .await
        .unwrap();
    assert_eq!(next_text(&mut a).await, "from h2");
    assert_eq!(next_text(&mut b).await, "from h2");
    assert_eq!(recv_text(&mut c).await, "from h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_streams_fault_closes_that_stream_only() {
    let mut limits = fast_limits();
    limits.outbound_queue_bytes = 256 * 1024;
    let server = server(limits);
    let log = server.get_state::<Log>().unwrap();
    let server = start(server).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let (_, mut healthy) = conn.websocket("/lab", &[]).await;
    let (_, mut too_big) = conn.websocket("/lab", &[]).await;
    let (_, mut stalled) = conn.websocket("/lab", &[]).await;

    // 1009: a message over the endpoint's 1 KiB limit.
    bounded("send", too_big.send(WsMessage::text("y".repeat(4096))))
        .await
        .unwrap();
    assert_eq!(h2_close_code(&mut too_big).await, 1009);
    assert_eq!(h2_roundtrip(&mut healthy, "after 1009").await, "after 1009");

    // 1002: a frame with a reserved opcode, written raw on its own stream.
    let (_, io) = conn
        .connect_stream("/lab", &[("sec-websocket-version", "13")])
        .await;
    let mut raw = io.expect("stream");
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        raw.write_all(&client_frame(0x3, b"bad")).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = bounded("the 1002 close", raw.read(&mut buf)).await.unwrap();
        assert!(n >= 4, "a close frame");
        assert_eq!(buf[0], 0x88, "a close frame: {:?}", &buf[..n]);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 1002);
    }
    assert_eq!(h2_roundtrip(&mut healthy, "after 1002").await, "after 1002");

    // A stalled reader: `stalled` never reads, its stream window (64 KiB) fills, its outbound
    // queue passes its 256 KiB and it is closed with 1008, while `healthy`, in the same room
    // and on the same connection, gets every message.
    assert_eq!(
        h2_roundtrip(&mut stalled, "join:flood").await,
        "joined:true"
    );
    assert_eq!(
        h2_roundtrip(&mut healthy, "join:flood").await,
        "joined:true"
    );
    let rounds = 40;
    for _ in 0..rounds {
        bounded("send", healthy.send(WsMessage::text("flood:flood:16000:4")))
            .await
            .unwrap();
        let mut got = 0;
        while got < 4 {
            let t = next_text(&mut healthy).await;
            if t.len() == 16000 {
                got += 1;
            } else {
                assert_eq!(t, "flooded");
            }
        }
        // the reply to the command comes after the four broadcasts it queued
        assert_eq!(next_text(&mut healthy).await, "flooded");
    }
    let events = log.rec.wait_count("close:1008", 1).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("close:1008"))
            .count(),
        1,
        "{events:?}"
    );
    assert_eq!(h2_roundtrip(&mut healthy, "after 1008").await, "after 1008");
    // The connection itself is fine: a new stream opens.
    let (_, mut late) = conn.websocket("/lab", &[]).await;
    assert_eq!(h2_roundtrip(&mut late, "late").await, "late");
    assert!(!conn.task.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_the_http1_table_as_http2_responses() {
    let server = start(server(fast_limits()).allowed_origins(["https://good.example"])).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let v13 = ("sec-websocket-version", "13");

    let (head, _) = conn.connect_stream("/nowhere", &[v13]).await;
    assert_eq!(head.status, 404);
    let (head, _) = conn.connect_stream("/lab", &[]).await;
    assert_eq!(head.status, 426);
    assert_eq!(head.headers["sec-websocket-version"], "13");
    let (head, _) = conn
        .connect_stream("/lab", &[("sec-websocket-version", "8")])
        .await;
    assert_eq!(head.status, 426);
    let (head, _) = conn
        .connect_stream("/lab", &[v13, ("origin", "https://evil.example")])
        .await;
    assert_eq!(head.status, 403);
    // A plain GET to the endpoint's path: it must be opened with an extended CONNECT.
    let get = http::Request::get(format!("http://{}/lab", server.addr))
        .body(())
        .unwrap();
    let (head, _) = conn.send_request(get).await;
    assert_eq!(head.status, 426);
    assert!(head.headers.get("connection").is_none());
    // An allowed origin still opens.
    let (_, mut ws) = conn
        .websocket("/lab", &[("origin", "https://good.example")])
        .await;
    assert_eq!(h2_roundtrip(&mut ws, "ok").await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configurator_runs_over_http2() {
    let server = start(server(fast_limits())).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let (head, _) = conn
        .connect_stream("/authed", &[("sec-websocket-version", "13")])
        .await;
    assert_eq!(head.status, 401);
    let (head, mut ws) = conn.websocket("/authed", &[("x-token", "t-ada")]).await;
    assert_eq!(head.headers["x-authenticated-user"], "ada");
    assert_eq!(next_text(&mut ws).await, "welcome ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permessage_deflate_is_negotiated_over_http2() {
    let mut limits = fast_limits();
    limits.compression = endpoint::Compression::enabled();
    let server = start(server(limits)).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let (head, _ws) = conn
        .websocket(
            "/lab",
            &[(
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            )],
        )
        .await;
    let agreed = head.headers["sec-websocket-extensions"].to_str().unwrap();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_1001_to_every_stream_runs_every_on_close_and_goaway() {
    let server = server(fast_limits());
    let log = server.get_state::<Log>().unwrap();
    let mut server = start(server).await;
    let mut conn = H2Conn::connect(server.addr).await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        let (_, mut ws) = conn.websocket("/lab", &[]).await;
        assert_eq!(h2_roundtrip(&mut ws, "hi").await, "hi");
        streams.push(ws);
    }
    let mut h1 = server.connect("/lab").await;
    assert_eq!(roundtrip(&mut h1, "hi").await, "hi");

    server.begin_shutdown();
    for ws in &mut streams {
        assert_eq!(h2_close_code(ws).await, u16::from(WsCloseCode::Away));
    }
    assert_eq!(recv_close(&mut h1).await.0, 1001);
    server.wait().await;
    assert_eq!(log.rec.count("close:1001"), 5, "{:?}", log.rec.events());
    // GOAWAY: the client's connection ends gracefully, and no new stream opens.
    let ended = bounded("the h2 connection to end", &mut conn.task).await;
    assert!(ended.expect("connection task").is_ok());
    assert!(conn.send.clone().ready().await.is_err());
}

/// A peer that stops answering (here: it sent the preface and its SETTINGS, and then nothing,
/// not even the answer to a PING) loses its HTTP/2 connection after `ping_interval` +
/// `pong_timeout`, with no stream open; a peer that answers pings keeps its idle connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_peer_stops_answering_pings_is_dropped() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut limits = fast_limits();
    limits.ping_interval = Some(Duration::from_millis(200));
    limits.pong_timeout = Duration::from_millis(300);
    let server = start(server(limits)).await;

    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The client preface, then an empty SETTINGS frame (length 0, type 4, no flags, stream 0).
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut answering = H2Conn::connect(server.addr).await;

    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let ended = within(
        Duration::from_secs(10),
        "the silent peer's connection to end",
        async {
            let mut buf = [0u8; 4096];
            loop {
                match silent.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        },
    );
    ended.await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "dropped after {elapsed:?}, before a ping could go unanswered"
    );
    // A PING frame (type 6) went out before the connection ended.
    let mut at = 0;
    let mut pinged = false;
    while at + 9 <= seen.len() {
        let len = usize::from(seen[at]) << 16
            | usize::from(seen[at + 1]) << 8
            | usize::from(seen[at + 2]);
        pinged |= seen[at + 3] == 6;
        at += 9 + len;
    }
    assert!(pinged, "the server never pinged the silent peer");

    // The client that answers pings kept its connection, idle as long: a WebSocket still opens.
    let (_, mut ws) = answering.websocket("/lab", &[]).await;
    assert_eq!(h2_roundtrip(&mut ws, "still here").await, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_off_serves_http1_only() {
    let server = start(server(fast_limits()).http2(false)).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let refused = async {
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(conn);
        let mut send = send.ready().await?;
        let req = http::Request::get(format!("http://{}/lab", server.addr))
            .body(())
            .unwrap();
        let (res, _) = send.send_request(req, true)?;
        res.await.map(|_| ())
    };
    assert!(
        bounded("h2 against an http/1 server", refused)
            .await
            .is_err(),
        "an HTTP/2 client must not get an answer"
    );
    let mut h1 = server.connect("/lab").await;
    assert_eq!(roundtrip(&mut h1, "h1").await, "h1");
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_offers_h2_by_alpn() {
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = endpoint::tls::TlsConfig::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let server = server(fast_limits()).tls(tls);
    let log = server.get_state::<Log>().unwrap();
    let server = start(server).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let connect = |alpn: Vec<Vec<u8>>| {
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = server.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await.unwrap()
        }
    };
    let stream = connect(vec![b"h2".to_vec(), b"http/1.1".to_vec()]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut conn = H2Conn::handshake(stream, "localhost".into()).await;
    let (_, mut ws) = conn.websocket("/lab", &[]).await;
    assert_eq!(h2_roundtrip(&mut ws, "secure").await, "secure");
    log.rec.wait_count("open:-:true", 1).await;

    // A client offering only http/1.1 still gets its WebSocket over HTTP/1.1.
    let stream = connect(vec![b"http/1.1".to_vec()]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut ws, res) = tokio_tungstenite::client_async("wss://localhost/lab", stream)
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    ws.send(WsMessage::text("h1 secure")).await.unwrap();
    match bounded("echo over wss", ws.next()).await {
        Some(Ok(WsMessage::Text(t))) => assert_eq!(t.as_str(), "h1 secure"),
        other => panic!("{other:?}"),
    }
}
