//! The client (`endpoint::client`) against real servers: our own and a raw TCP one that
//! answers handshakes by hand, so every kind of failed handshake is seen from the client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use endpoint::client::{
    Client, ClientConfigurator, ClientEndpoint, ConnectError, Reconnect, ReconnectHandler,
};
use endpoint::test::{TestClient, TestServer};
use endpoint::{
    CloseCode, CloseReason, Compression, Endpoint, EndpointConfig, HookResult, Limits, Message,
    SendError, Server, Session,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Echo;

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/echo").subprotocols(&["v2", "v1"])
    }
    async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
        Ok(Some(m))
    }
}

fn echo_server() -> Server {
    Server::new().endpoint::<Echo>()
}

#[tokio::test]
async fn echoes_text_and_binary_through_the_client() {
    let server = TestServer::start(echo_server()).await;
    let mut client = server.connect("/echo").await;
    client.send("hello").await.unwrap();
    assert_eq!(client.recv_text().await, "hello");
    client.send(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(&client.recv_binary().await[..], &[1, 2, 3]);
    // Large enough for the 16-bit and 64-bit length forms, masked.
    let big = "x".repeat(70_000);
    let mut limits = Limits::default();
    limits.max_message_size = 1 << 20;
    let mut big_client = server
        .connect_with(&Client::new().limits(limits), "/echo")
        .await
        .unwrap();
    big_client.send(big.clone()).await.unwrap();
    assert_eq!(big_client.recv_text().await.len(), 70_000);
    client.close(CloseReason::new(CloseCode::NORMAL, "done"));
    let reason = client.expect_close_code(CloseCode::NORMAL).await;
    assert_eq!(reason.reason(), "done");
}

#[tokio::test]
async fn subprotocol_and_compression_are_negotiated() {
    let mut limits = Limits::default();
    limits.compression = Compression::enabled().min_size(0);
    let server = TestServer::start(echo_server().limits(limits.clone())).await;
    let client = Client::new().limits(limits).subprotocols(["v1"]);
    let mut c = server.connect_with(&client, "/echo").await.unwrap();
    let session = c.session().unwrap();
    assert_eq!(session.subprotocol(), Some("v1"));
    let ext = session.extensions().expect("permessage-deflate agreed");
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    let text = "compress me ".repeat(500);
    for _ in 0..3 {
        c.send(text.clone()).await.unwrap();
        assert_eq!(c.recv_text().await, text);
    }
}

/// A server that answers one upgrade request by hand: `answer` gets the request head and
/// returns the bytes to send back (after which the socket stays open for `linger`).
async fn raw_server(
    answer: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/raw", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return head;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        socket.write_all(&answer(&text)).await.unwrap();
        // Whatever the client sends next (frames), until it closes or 2 s pass.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => rest.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        rest
    });
    (url, task)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The right `Sec-WebSocket-Accept` for a request head.
fn accept_for(head: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let key = header(head, "sec-websocket-key").unwrap();
    let digest = sha1::Sha1::digest(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn switching(head: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_for(head)
    )
    .into_bytes()
}

async fn expect_failure(url: &str) -> ConnectError {
    match TestClient::connect(url).await {
        Ok(_) => panic!("connected to {url}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn each_kind_of_failed_handshake_is_named() {
    // DNS.
    let e = expect_failure("ws://no-such-host.invalid/").await;
    assert!(matches!(e, ConnectError::Dns { .. }), "{e:?}");
    assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
    // Refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = expect_failure(&format!("ws://127.0.0.1:{port}/")).await;
    assert!(
        matches!(
            e,
            ConnectError::Connect {
                kind: std::io::ErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{e:?}"
    );
    // Not a WebSocket URL.
    let e = expect_failure("http//nope").await;
    assert!(matches!(e, ConnectError::InvalidUrl(_)), "{e:?}");
    // An HTTP status, with its body: our server's 404 for a path it does not serve.
    let server = TestServer::start(echo_server()).await;
    let e = server.try_connect("/nowhere").await.unwrap_err();
    match &e {
        ConnectError::Status { status, .. } => assert_eq!(status.as_u16(), 404),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("404"), "{e}");
    // A refusal with a body from a raw server.
    let (url, _) = raw_server(|_| {
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nno token, no".to_vec()
    })
    .await;
    match expect_failure(&url).await {
        ConnectError::Status { status, body, .. } => {
            assert_eq!(status.as_u16(), 401);
            assert_eq!(&body[..], b"no token, no");
        }
        other => panic!("{other:?}"),
    }
    // A wrong accept key.
    let (url, _) = raw_server(|_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n".to_vec()
    })
    .await;
    let e = expect_failure(&url).await;
    assert!(
        matches!(&e, ConnectError::Handshake(why) if why.contains("Sec-WebSocket-Accept")),
        "{e:?}"
    );
    // A subprotocol that was not offered.
    let (url, _) = raw_server(|head| switching(head, "Sec-WebSocket-Protocol: evil\r\n")).await;
    let e = expect_failure(&url).await;
    assert!(
        matches!(&e, ConnectError::Handshake(why) if why.contains("evil")),
        "{e:?}"
    );
    // An extension that was not offered.
    let (url, _) =
        raw_server(|head| switching(head, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
            .await;
    let e = expect_failure(&url).await;
    assert!(
        matches!(&e, ConnectError::Handshake(why) if why.contains("not offered")),
        "{e:?}"
    );
    // No Upgrade header.
    let (url, _) = raw_server(|head| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(head)
        )
        .into_bytes()
    })
    .await;
    let e = expect_failure(&url).await;
    assert!(
        matches!(&e, ConnectError::Handshake(why) if why.contains("Upgrade")),
        "{e:?}"
    );
    // Not HTTP at all.
    let (url, _) = raw_server(|_| b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()).await;
    let e = expect_failure(&url).await;
    assert!(matches!(e, ConnectError::Http(_)), "{e:?}");
    // No answer: the connect timeout.
    let (url, _) = raw_server(|_| Vec::new()).await;
    let client = Client::new().connect_timeout(Duration::from_millis(300));
    match TestClient::connect_with(&client, &url).await {
        Err(ConnectError::Timeout(t)) => assert_eq!(t, Duration::from_millis(300)),
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn frames_are_masked_with_a_fresh_mask_each() {
    let (url, frames) = raw_server(|head| switching(head, "")).await;
    let client = TestClient::connect(&url).await.unwrap();
    for _ in 0..8 {
        client.send("same payload").await.unwrap();
    }
    client.close(CloseReason::new(CloseCode::NORMAL, ""));
    let bytes = frames.await.unwrap();
    // Walk the frames: every one masked, and the masks differ.
    let (mut at, mut masks, mut texts) = (0, Vec::new(), 0);
    while at + 2 <= bytes.len() {
        let (b0, b1) = (bytes[at], bytes[at + 1]);
        assert!(b1 & 0x80 != 0, "frame at {at} is not masked");
        let len = usize::from(b1 & 0x7f);
        assert!(len < 126);
        let mask: [u8; 4] = bytes[at + 2..at + 6].try_into().unwrap();
        let payload: Vec<u8> = bytes[at + 6..at + 6 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        if b0 & 0x0f == 1 {
            assert_eq!(payload, b"same payload");
            texts += 1;
        }
        masks.push(mask);
        at += 6 + len;
    }
    assert_eq!(texts, 8);
    let distinct: std::collections::HashSet<_> = masks.iter().collect();
    assert_eq!(
        distinct.len(),
        masks.len(),
        "a mask was used twice: {masks:?}"
    );
}

#[tokio::test]
async fn a_masked_frame_from_the_server_fails_the_connection_with_1002() {
    let (url, rest) = raw_server(|head| {
        let mut answer = switching(head, "");
        // A text frame "hi", masked: servers must not mask.
        answer.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
        answer
    })
    .await;
    let mut client = TestClient::connect(&url).await.unwrap();
    let reason = client.expect_close().await;
    // The close frame we sent says 1002 (the raw server does not answer it: 1006 here).
    let sent = rest.await.unwrap();
    assert!(sent.len() >= 8, "no close frame from the client: {sent:?}");
    assert_eq!(sent[0], 0x88);
    let mask: [u8; 4] = sent[2..6].try_into().unwrap();
    let code = u16::from_be_bytes([sent[6] ^ mask[0], sent[7] ^ mask[1]]);
    assert_eq!(code, 1002, "{reason}");
}

#[tokio::test]
async fn concurrent_sends_arrive_whole_and_in_order_per_sender() {
    let server = TestServer::start(echo_server()).await;
    let mut client = server.connect("/echo").await;
    let connection = client.connection().clone();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let c = connection.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    c.send(format!("{t}:{i}")).await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let mut next = [0u32; 4];
    for _ in 0..1000 {
        let text = client.recv_text().await;
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, u32) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "sender {t} out of order");
        next[t] += 1;
    }
    assert_eq!(next, [250; 4]);
}

/// Records the hooks' calls.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A client endpoint that counts its openings and keeps them across reconnections.
struct Counting {
    log: Log,
    opens: u32,
}

impl Endpoint for Counting {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }
    async fn on_open(&mut self, _: &Session, _: &endpoint::Handshake) -> HookResult {
        self.opens += 1;
        self.log.push(format!("open {}", self.opens));
        Ok(Some(Message::text(format!("hello #{}", self.opens))))
    }
    async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
        if let Message::Text(t) = m {
            self.log.push(format!("message {}", t.as_str()));
        }
        Ok(None)
    }
    async fn on_close(&mut self, _: &Session, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().as_u16()));
    }
}
impl ClientEndpoint for Counting {}

/// Notes each failed attempt's time.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<(u32, Instant)>>>);

impl ReconnectHandler for Attempts {
    fn on_connect_failure(&self, _: &ConnectError, attempt: u32) -> bool {
        self.0.lock().unwrap().push((attempt, Instant::now()));
        true
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn reconnects_after_a_server_restart_with_backoff_then_gives_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let start = |addr| async move { echo_server().bind(addr).await.unwrap() };
    let server = start(addr).await;
    let handle = server.handle();
    let task = tokio::spawn(server.run());

    let log = Log::default();
    let attempts = Attempts::default();
    let policy = Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(2))
        .jitter(0.0)
        .max_attempts(4)
        .handler(attempts.clone());
    let connection = Client::new()
        .reconnect(policy)
        .connect(
            &format!("ws://{addr}/echo"),
            Counting {
                log: log.clone(),
                opens: 0,
            },
        )
        .await
        .unwrap();
    wait_until("the first echo", || {
        log.get().contains(&"message hello #1".to_string())
    })
    .await;

    // Restart: shut down (1001 to the client), serve again after a while.
    handle.shutdown();
    task.await.unwrap().unwrap();
    wait_until("the close", || {
        log.get().contains(&"close 1001".to_string())
    })
    .await;
    assert!(!connection.is_connected());
    assert_eq!(
        connection.send("while away").await,
        Err(SendError::NotConnected),
        "a send while disconnected is refused, not queued"
    );
    // Attempts 1 (after 100 ms) and 2 (after 200 ms more) fail; then the server is back.
    wait_until("two failed attempts", || {
        attempts.0.lock().unwrap().len() >= 2
    })
    .await;
    let server = start(addr).await;
    let handle = server.handle();
    let task = tokio::spawn(server.run());
    assert!(connection.connected().await);
    wait_until("the second echo", || {
        log.get().contains(&"message hello #2".to_string())
    })
    .await;
    assert_eq!(connection.connects(), 2);
    {
        let times = attempts.0.lock().unwrap();
        assert_eq!(times[0].0, 1);
        assert_eq!(times[1].0, 2);
        let gap = times[1].1 - times[0].1;
        assert!(
            gap >= Duration::from_millis(190),
            "backoff doubled: {gap:?}"
        );
    }
    connection.send("back").await.unwrap();
    wait_until("the echo after reconnecting", || {
        log.get().contains(&"message back".to_string())
    })
    .await;

    // Down for good: 4 attempts, then the policy gives up and `closed` says why.
    handle.shutdown();
    task.await.unwrap().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), connection.closed())
        .await
        .expect("gave up in time");
    match ended {
        Err(ConnectError::Connect { .. }) => {}
        other => panic!("{other:?}"),
    }
    let after_restart: Vec<_> = attempts
        .0
        .lock()
        .unwrap()
        .iter()
        .skip(2)
        .map(|a| a.0)
        .collect();
    assert_eq!(after_restart, [1, 2, 3, 4], "max_attempts honoured");
    let opens: Vec<_> = log
        .get()
        .into_iter()
        .filter(|l| l.starts_with("open"))
        .collect();
    assert_eq!(
        opens,
        ["open 1", "open 2"],
        "on_open ran again, same endpoint value"
    );
}

#[tokio::test]
async fn closing_the_connection_stops_reconnecting() {
    let server = TestServer::start(echo_server()).await;
    let policy = Reconnect::exponential(Duration::from_millis(10), Duration::from_millis(50));
    let log = Log::default();
    let connection = Client::new()
        .reconnect(policy)
        .connect(
            &server.url("/echo"),
            Counting {
                log: log.clone(),
                opens: 0,
            },
        )
        .await
        .unwrap();
    connection
        .close(CloseReason::new(CloseCode::NORMAL, "bye"))
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), connection.closed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason.code(), CloseCode::NORMAL);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connection.connects(), 1);
    assert_eq!(connection.send("late").await, Err(SendError::Closed));
}

/// Adds a token and reads a response header.
#[derive(Clone, Default)]
struct Token(Arc<Mutex<Option<String>>>);

impl ClientConfigurator for Token {
    fn before_request(&self, headers: &mut http::HeaderMap) {
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    }
    fn after_response(&self, headers: &http::HeaderMap) -> Result<(), String> {
        *self.0.lock().unwrap() = headers
            .get("x-served-by")
            .map(|v| v.to_str().unwrap().to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn headers_cookies_and_the_configurator_reach_the_server() {
    let (url, _) = raw_server(|head| {
        assert_eq!(header(head, "authorization"), Some("Bearer s3cret"));
        assert_eq!(header(head, "cookie"), Some("session=abc; lang=en"));
        assert_eq!(header(head, "x-trace"), Some("42"));
        switching(head, "X-Served-By: raw\r\n")
    })
    .await;
    let token = Token::default();
    let client = Client::new()
        .header("x-trace", "42")
        .cookie("session", "abc")
        .cookie("lang", "en")
        .configurator(token.clone());
    let c = TestClient::connect_with(&client, &url).await.unwrap();
    assert_eq!(token.0.lock().unwrap().as_deref(), Some("raw"));
    // The session shows the response's headers.
    assert_eq!(
        c.session().unwrap().headers().get("x-served-by").unwrap(),
        "raw"
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_against_the_tls_server_with_a_test_root() {
    use endpoint::client::{ClientTls, RootCertStore};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = endpoint::tls::TlsConfig::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let bound = echo_server().tls(tls).bind("127.0.0.1:0").await.unwrap();
    let port = bound.local_addr().unwrap().port();
    let _task = tokio::spawn(bound.run());
    let url = format!("wss://localhost:{port}/echo");

    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = Client::new().tls(ClientTls::with_roots(roots));
    let mut c = TestClient::connect_with(&client, &url).await.unwrap();
    assert!(c.session().unwrap().is_secure());
    c.send("over tls").await.unwrap();
    assert_eq!(c.recv_text().await, "over tls");

    // Without the root: a TLS error naming the certificate.
    let e = TestClient::connect(&url).await.unwrap_err();
    assert!(
        matches!(&e, ConnectError::Tls(why) if why.to_lowercase().contains("certificate")),
        "{e:?}"
    );
}

/// A `#[client_endpoint]` over a real connection: its hooks, a reply from `on_open`, a pong
/// handler answering the client's own ping.
#[derive(Default)]
struct Annotated {
    log: Log,
}

#[endpoint::client_endpoint(subprotocols = ["v1"])]
impl Annotated {
    #[on_open]
    fn open(&mut self, session: &Session) -> String {
        session.ping(&b"are you there"[..]).unwrap();
        format!("hello from {}", session.subprotocol().unwrap_or("-"))
    }

    #[on_message]
    fn text(&mut self, text: String) {
        self.log.push(format!("text {text}"));
    }

    #[on_message]
    fn pong(&mut self, pong: endpoint::Pong) {
        self.log
            .push(format!("pong {}", String::from_utf8_lossy(&pong.0)));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log.push(format!("close {}", reason.code().as_u16()));
    }
}

#[tokio::test]
async fn an_annotated_client_endpoint_pings_and_is_answered() {
    let server = TestServer::start(echo_server()).await;
    let log = Log::default();
    let connection = Client::new()
        .connect(&server.url("/echo"), Annotated { log: log.clone() })
        .await
        .unwrap();
    wait_until("the echo and the pong", || log.get().len() >= 2).await;
    let mut seen = log.get();
    seen.sort();
    assert_eq!(seen, ["pong are you there", "text hello from v1"]);
    connection
        .close(CloseReason::new(CloseCode::NORMAL, ""))
        .unwrap();
    assert_eq!(connection.closed().await.unwrap().code(), CloseCode::NORMAL);
    assert_eq!(log.get().last().unwrap(), "close 1000");
}
