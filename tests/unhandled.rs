//! Messages of a kind without a handler: `#[server_endpoint(unhandled = ignore)]` drops them
//! and the session stays open (Tomcat's behaviour); by default the session is closed with
//! `1003` (`EndpointError::Unsupported` to `on_error`), and `unhandled = close` says so
//! explicitly.

mod common;

use common::*;
use endpoint::prelude::*;
use endpoint::{Endpoint, EndpointConfig, Unhandled};
use futures::SinkExt;

#[derive(Default)]
struct Strict;

#[server_endpoint("/strict")]
impl Strict {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("text:{text}")
    }
}

#[derive(Default)]
struct Explicit;

#[server_endpoint("/explicit", unhandled = close)]
impl Explicit {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("text:{text}")
    }
}

#[derive(Default)]
struct Lenient {
    errors: usize,
}

#[server_endpoint("/lenient", unhandled = ignore)]
impl Lenient {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("text:{text} errors:{}", self.errors)
    }

    #[on_error]
    fn error(&mut self, _error: &EndpointError) {
        self.errors += 1;
    }
}

async fn server() -> TestServer {
    start(
        Server::new()
            .endpoint::<Strict>()
            .endpoint::<Explicit>()
            .endpoint::<Lenient>()
            .limits(fast_limits()),
    )
    .await
}

async fn send_binary(ws: &mut Ws, bytes: &'static [u8]) {
    bounded("send binary", ws.send(WsMessage::binary(bytes)))
        .await
        .expect("send binary");
}

#[test]
fn the_attribute_reaches_the_config() {
    assert_eq!(
        <Strict as Endpoint>::config().unhandled_policy(),
        Unhandled::Close
    );
    assert_eq!(
        <Explicit as Endpoint>::config().unhandled_policy(),
        Unhandled::Close
    );
    assert_eq!(
        <Lenient as Endpoint>::config().unhandled_policy(),
        Unhandled::Ignore
    );
    assert_eq!(
        EndpointConfig::new("/x")
            .unhandled(Unhandled::Ignore)
            .unhandled_policy(),
        Unhandled::Ignore
    );
}

#[tokio::test]
async fn ignore_drops_a_binary_message_and_the_session_stays_open() {
    let server = server().await;
    let mut ws = server.connect("/lenient").await;
    send_binary(&mut ws, b"\x00\x01 nobody handles this").await;
    send_binary(&mut ws, b"nor this").await;
    // Nothing came back for them, no error was reported, and the session still answers.
    assert_eq!(roundtrip(&mut ws, "after").await, "text:after errors:0");
    send_close(&mut ws, 1000, "done").await;
    drain_until_end(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_and_with_close_a_binary_message_closes_with_1003() {
    let server = server().await;
    for path in ["/strict", "/explicit"] {
        let mut ws = server.connect(path).await;
        assert_eq!(roundtrip(&mut ws, "before").await, "text:before");
        send_binary(&mut ws, b"nobody handles this").await;
        let (code, reason) = recv_close(&mut ws).await;
        assert_eq!(code, 1003, "{path}: {reason}");
        assert!(reason.contains("binary"), "{path}: {reason}");
        drain_until_end(&mut ws).await;
    }
    server.shutdown().await;
}
