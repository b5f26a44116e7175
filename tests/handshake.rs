//! Every HTTP answer of the opening handshake, over raw TCP: 101 with the right accept key, 404
//! for an unknown path, 426 (+ `Sec-WebSocket-Version: 13`) for a plain request, a missing or a
//! wrong version, 400 for a missing or invalid key, 405 for another method. No refusal harms the
//! server.

mod common;

use common::*;
use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo.do")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

async fn echo_server() -> TestServer {
    start(Server::new().limits(fast_limits()).endpoint::<Echo>()).await
}

fn assert_426(res: &HttpResponse) {
    assert_eq!(res.status, 426, "{res:#?}");
    assert_eq!(res.header("sec-websocket-version"), Some("13"), "{res:#?}");
}

#[tokio::test]
async fn valid_handshake_gets_101_with_the_accept_key_and_works() {
    let server = echo_server().await;
    let res = http(server.addr, &upgrade_request("/echo.do", &[], &[])).await;
    assert_eq!(res.status, 101, "{res:#?}");
    assert_eq!(res.header("sec-websocket-accept"), Some(ACCEPT));
    assert!(res
        .header("upgrade")
        .unwrap()
        .eq_ignore_ascii_case("websocket"));
    assert!(res
        .header("connection")
        .unwrap()
        .eq_ignore_ascii_case("upgrade"));

    // The hand-made connection speaks WebSocket afterwards.
    let mut raw = RawWs::connect(server.addr, "/echo.do").await;
    raw.write(&client_frame(0x1, b"hi")).await;
    let f = raw.read_frame().await.expect("echo");
    assert_eq!((f.opcode, f.payload.as_slice()), (0x1, &b"hi"[..]));
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = echo_server().await;
    for path in ["/nope", "/", "/echo.do/x", "/echo"] {
        let res = http(server.addr, &upgrade_request(path, &[], &[])).await;
        assert_eq!(res.status, 404, "{path}: {res:#?}");
    }
    // A plain GET to an unknown path too.
    let res = http(server.addr, "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(res.status, 404, "{res:#?}");
}

#[tokio::test]
async fn plain_get_to_an_endpoint_is_426_with_version_13() {
    let server = echo_server().await;
    let res = http(
        server.addr,
        "GET /echo.do HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_426(&res);
    // Upgrade without `Connection: Upgrade` is not an upgrade request either.
    let res = http(
        server.addr,
        &upgrade_request("/echo.do", &["Connection"], &[]),
    )
    .await;
    assert_426(&res);
}

#[tokio::test]
async fn missing_version_is_426_with_version_13() {
    let server = echo_server().await;
    let res = http(
        server.addr,
        &upgrade_request("/echo.do", &["Sec-WebSocket-Version"], &[]),
    )
    .await;
    assert_426(&res);
}

#[tokio::test]
async fn version_8_is_426_with_version_13() {
    let server = echo_server().await;
    let req = upgrade_request(
        "/echo.do",
        &["Sec-WebSocket-Version"],
        &["Sec-WebSocket-Version: 8"],
    );
    let res = http(server.addr, &req).await;
    assert_426(&res);
}

#[tokio::test]
async fn missing_key_is_400() {
    let server = echo_server().await;
    let res = http(
        server.addr,
        &upgrade_request("/echo.do", &["Sec-WebSocket-Key"], &[]),
    )
    .await;
    assert_eq!(res.status, 400, "{res:#?}");
    assert!(
        res.body.to_lowercase().contains("key"),
        "the body says why: {res:#?}"
    );
}

#[tokio::test]
async fn invalid_key_is_400() {
    let server = echo_server().await;
    for key in [
        "short",
        "dGhlIHNhbXBsZSBub25jZQ=",    // 15 bytes + bad padding
        "dGhlIHNhbXBsZSBub25jZR==",   // not the encoding of 16 bytes
        "dGhlIHNhbXBsZSBub25j*Q==",   // not base64
        "dGhlIHNhbXBsZSBub25jZSE2NA", // 19 bytes, no padding
    ] {
        let req = upgrade_request(
            "/echo.do",
            &["Sec-WebSocket-Key"],
            &[&format!("Sec-WebSocket-Key: {key}")],
        );
        let res = http(server.addr, &req).await;
        assert_eq!(res.status, 400, "key {key:?}: {res:#?}");
    }
}

#[tokio::test]
async fn post_to_an_endpoint_is_405() {
    let server = echo_server().await;
    let req = upgrade_request("/echo.do", &[], &["Content-Length: 0"]).replacen("GET", "POST", 1);
    let res = http(server.addr, &req).await;
    assert_eq!(res.status, 405, "{res:#?}");
    assert_eq!(res.header("allow"), Some("GET"), "{res:#?}");
}

#[tokio::test]
async fn refusals_do_not_harm_the_server() {
    let server = echo_server().await;
    let bad = [
        "GET /echo.do HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        upgrade_request("/echo.do", &["Sec-WebSocket-Key"], &[]),
        upgrade_request("/nope", &[], &[]),
    ];
    for req in &bad {
        let _ = http(server.addr, req).await;
    }
    // Garbage instead of HTTP: the connection is dropped or answered 400, nothing else.
    let res = tokio::time::timeout(TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    })
    .await
    .expect("the server ends a garbage connection");
    assert!(
        res.is_empty() || res.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&res)
    );

    let mut ws = server.connect("/echo.do").await;
    assert_eq!(roundtrip(&mut ws, "still here").await, "still here");
}

#[tokio::test]
async fn tungstenite_client_sees_the_refusal_status() {
    let server = echo_server().await;
    let err = tokio_tungstenite::connect_async(server.url("/missing"))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status().as_u16(), 404),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_host_is_400() {
    let server = echo_server().await;
    let res = http(server.addr, &upgrade_request("/echo.do", &["Host"], &[])).await;
    assert_eq!(res.status, 400, "{res:#?}");
}

#[tokio::test]
async fn over_max_connections_is_503_until_a_session_ends() {
    let mut limits = fast_limits();
    limits.max_connections = 1;
    let server = start(Server::new().limits(limits).endpoint::<Echo>()).await;
    let mut first = server.connect("/echo.do").await;
    assert_eq!(roundtrip(&mut first, "one").await, "one");
    let res = http(server.addr, &upgrade_request("/echo.do", &[], &[])).await;
    assert_eq!(res.status, 503, "{res:#?}");

    send_close(&mut first, 1000, "").await;
    drain_until_end(&mut first).await;
    // The slot is released once the session has fully ended.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let res = http(server.addr, &upgrade_request("/echo.do", &[], &[])).await;
        if res.status == 101 {
            break;
        }
        assert_eq!(res.status, 503, "{res:#?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
