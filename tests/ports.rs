//! The example ports behave like their Java originals: for the same inputs, the same messages.
//!
//! Each expected transcript is written from the Java source quoted at the top of the example
//! (`examples/port_*.rs`), read with Jakarta WebSocket semantics; where the port differs on
//! purpose (the authenticated endpoint refuses with 401 where Java can only open and close with
//! 1008), the test says so.

mod common;

#[allow(dead_code)]
#[path = "../examples/port_echo.rs"]
mod port_echo;

#[allow(dead_code)]
#[path = "../examples/port_chat.rs"]
mod port_chat;

#[allow(dead_code)]
#[path = "../examples/port_auth.rs"]
mod port_auth;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use endpoint::{Server, ServerHandle};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Runs a port's `server()` on an ephemeral port, with the test's close/shutdown limits.
async fn run(server: Server) -> (SocketAddr, ServerHandle) {
    let server = server
        .limits(fast_limits())
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    (addr, handle)
}

/// Waits (bounded) until the server counts `n` open sessions (registered, `on_open` begun).
async fn wait_open(handle: &ServerHandle, n: u64) {
    bounded(&format!("{n} open sessions"), async {
        while handle.stats().open_sessions != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Asserts that nothing arrives on `ws` for a short while.
async fn assert_silent(ws: &mut Ws, who: &str) {
    let got = tokio::time::timeout(Duration::from_millis(150), recv_data(ws)).await;
    assert!(got.is_err(), "{who} received {got:?}");
}

// ---------------------------------------------------------------------------------------------
// echo.do

#[tokio::test]
async fn port_echo_transcript_matches_the_java_original() {
    let (addr, _handle) = run(port_echo::server()).await;

    // new WebSocket("ws://localhost:8089/myChat/echo.do"): the URL of the seed's client.
    let mut ws = connect(addr, "/myChat/echo.do").await;
    // @OnOpen: basic.sendText("Connection Established")
    assert_eq!(recv_text(&mut ws).await, "Connection Established");
    // @OnMessage: basic.sendText("to : " + message)
    for (sent, answer) in [
        ("hello", "to : hello"),
        ("안녕하세요", "to : 안녕하세요"),
        ("", "to : "),
        ("a,b,c", "to : a,b,c"),
    ] {
        assert_eq!(roundtrip(&mut ws, sent).await, answer);
    }
    // The client closes: the close is answered with the same code.
    send_close(&mut ws, 1000, "bye").await;
    let (code, _) = recv_close(&mut ws).await;
    assert_eq!(code, 1000);

    // No binary @OnMessage: Tomcat closes with 1003 CANNOT_ACCEPT, and so does the port.
    let mut ws = connect(addr, "/myChat/echo.do").await;
    assert_eq!(recv_text(&mut ws).await, "Connection Established");
    bounded("send binary", ws.send(WsMessage::binary(vec![1u8, 2, 3])))
        .await
        .unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1003);

    // Two clients are independent (one endpoint instance per connection).
    let mut a = connect(addr, "/myChat/echo.do").await;
    let mut b = connect(addr, "/myChat/echo.do").await;
    assert_eq!(recv_text(&mut a).await, "Connection Established");
    assert_eq!(recv_text(&mut b).await, "Connection Established");
    assert_eq!(roundtrip(&mut a, "from a").await, "to : from a");
    assert_silent(&mut b, "b").await;
}

#[tokio::test]
async fn port_echo_serves_the_seed_client_page_under_the_context_path() {
    let (addr, _handle) = run(port_echo::server()).await;

    let page = http(addr, "GET /myChat/ HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert_eq!(page.body, port_echo::CLIENT_PAGE);
    for needle in [
        "new WebSocket(",
        "/myChat/echo.do",
        "ws.onopen",
        "ws.onmessage",
        "ws.onclose",
        "ws.onerror",
        "ws.send(",
        ".textContent",
    ] {
        assert!(page.body.contains(needle), "the page lacks `{needle}`");
    }
    assert!(
        !page.body.contains("innerHTML"),
        "messages must not be written as markup"
    );

    let root = http(addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), Some("/myChat/"));

    // Outside the context path there is no endpoint.
    let outside = http(addr, &upgrade_request("/echo.do", &[], &[])).await;
    assert_eq!(outside.status, 404);
    // A plain GET of the endpoint: 426, as without the page.
    let plain = http(
        addr,
        "GET /myChat/echo.do HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("sec-websocket-version"), Some("13"));
    assert_eq!(port_echo::CONTEXT_PATH, "/myChat");
}

// ---------------------------------------------------------------------------------------------
// chat with a static Set<Session>

#[tokio::test]
async fn port_chat_transcript_matches_the_java_original() {
    let (addr, handle) = run(port_chat::server()).await;

    let mut a = connect(addr, "/myChat/chat").await;
    let mut b = connect(addr, "/myChat/chat").await;
    let mut c = connect(addr, "/myChat/chat").await;
    // clients.add(session) happened for all three.
    wait_open(&handle, 3).await;

    // for (Session client : clients) if (!client.equals(session)) client.sendText(message)
    send_text(&mut a, "hi from a").await;
    assert_eq!(recv_text(&mut b).await, "hi from a");
    assert_eq!(recv_text(&mut c).await, "hi from a");

    send_text(&mut b, "hi from b").await;
    assert_eq!(recv_text(&mut c).await, "hi from b");
    // The sender never gets its own message: a's next message is b's.
    assert_eq!(recv_text(&mut a).await, "hi from b");

    // Messages from one sender keep their order.
    for i in 0..20 {
        send_text(&mut c, &format!("c{i}")).await;
    }
    for i in 0..20 {
        assert_eq!(recv_text(&mut a).await, format!("c{i}"));
        assert_eq!(recv_text(&mut b).await, format!("c{i}"));
    }

    // @OnClose: clients.remove(session). c leaves; it no longer receives anything.
    send_close(&mut c, 1000, "").await;
    drain_until_end(&mut c).await;
    wait_open(&handle, 2).await;
    send_text(&mut a, "after c left").await;
    assert_eq!(recv_text(&mut b).await, "after c left");

    // Alone in the chat: a message goes nowhere, and nothing fails.
    send_close(&mut b, 1000, "").await;
    drain_until_end(&mut b).await;
    wait_open(&handle, 1).await;
    send_text(&mut a, "anyone?").await;
    assert_silent(&mut a, "a").await;
    assert_eq!(handle.stats().open_sessions, 1);
}

// ---------------------------------------------------------------------------------------------
// authenticated endpoint with a configurator

#[tokio::test]
async fn port_auth_transcript_matches_the_java_original() {
    let (addr, _handle) = run(port_auth::server()).await;

    // Token in the query: "welcome ada", then "ada: " + message.
    let url = format!("ws://{addr}/myChat/secure.do?token=s3cret-ada");
    let (mut ada, res) = bounded("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("x-authenticated-user")
            .map(|v| v.to_str().unwrap()),
        Some("ada")
    );
    assert_eq!(recv_text(&mut ada).await, "welcome ada");
    assert_eq!(roundtrip(&mut ada, "hello").await, "ada: hello");

    // Token in a cookie (from the same origin as the page): "welcome bob".
    let mut req = format!("ws://{addr}/myChat/secure.do")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", "lang=ko; token=s3cret-bob".parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://localhost:8089".parse().unwrap());
    let (mut bob, _) = bounded("connect", tokio_tungstenite::connect_async(req))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut bob).await, "welcome bob");
    assert_eq!(roundtrip(&mut bob, "안녕").await, "bob: 안녕");
    // Each session keeps its own user (Java's shared config properties would not).
    assert_eq!(roundtrip(&mut ada, "again").await, "ada: again");

    // No token / a bad token. Java: 101, then close(1008 VIOLATED_POLICY, "unauthorized") from
    // @OnOpen. The port refuses the handshake itself: 401 with a body, no socket opened.
    let missing = http(addr, &upgrade_request("/myChat/secure.do", &[], &[])).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.body.starts_with("missing token"),
        "{}",
        missing.body
    );
    let invalid = http(
        addr,
        &upgrade_request("/myChat/secure.do?token=guess", &[], &[]),
    )
    .await;
    assert_eq!(invalid.status, 401);
    assert_eq!(invalid.body, "invalid token\n");
    let bad_cookie = http(
        addr,
        &upgrade_request("/myChat/secure.do", &[], &["Cookie: token=guess"]),
    )
    .await;
    assert_eq!(bad_cookie.status, 401);

    // checkOrigin: a page on another site gets 403, in Java and here, even with a good cookie.
    let hijack = http(
        addr,
        &upgrade_request(
            "/myChat/secure.do",
            &[],
            &["Origin: https://evil.example", "Cookie: token=s3cret-ada"],
        ),
    )
    .await;
    assert_eq!(hijack.status, 403);
    for origin in port_auth::ALLOWED_ORIGINS {
        let ok = http(
            addr,
            &upgrade_request(
                "/myChat/secure.do?token=s3cret-ada",
                &[],
                &[&format!("Origin: {origin}")],
            ),
        )
        .await;
        assert_eq!(ok.status, 101, "{origin}");
    }
    assert_eq!(port_auth::user_for("s3cret-bob"), Some("bob"));
    assert_eq!(port_auth::user_for("nope"), None);
}
