//! Messages of a kind without a handler: `#[server_endpoint(unhandled = ignore)]` drops them
//! and the session stays open (Tomcat's behaviour); by default the session is closed with
//! `1003` (`EndpointError::Unsupported` to `on_error`), and `unhandled = close` says so
//! explicitly.
//!
//! Uses `endpoint::test` (the framework's own `TestServer` and `TestClient`).

use endpoint::prelude::*;
use endpoint::test::TestServer;
use endpoint::{Endpoint, EndpointConfig, Unhandled};

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
    TestServer::start(
        Server::new()
            .endpoint::<Strict>()
            .endpoint::<Explicit>()
            .endpoint::<Lenient>(),
    )
    .await
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
    let mut client = server.connect("/lenient").await;
    client
        .send(Bytes::from_static(b"\x00\x01 nobody handles this"))
        .await
        .unwrap();
    client.send(Bytes::from_static(b"nor this")).await.unwrap();
    // Nothing came back for them (the next event is the answer below, not a message, an
    // error or a close), no error was reported, and the session still answers.
    client.send("after").await.unwrap();
    assert_eq!(client.recv_text().await, "text:after errors:0");
    client.close(CloseReason::new(CloseCode::NORMAL, "done"));
    client.expect_close_code(CloseCode::NORMAL).await;
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_and_with_close_a_binary_message_closes_with_1003() {
    let server = server().await;
    for path in ["/strict", "/explicit"] {
        let mut client = server.connect(path).await;
        client.send("before").await.unwrap();
        assert_eq!(client.recv_text().await, "text:before");
        client
            .send(Bytes::from_static(b"nobody handles this"))
            .await
            .unwrap();
        // The server's close frame: its code and reason.
        let reason = client.expect_close().await;
        assert_eq!(reason.code(), CloseCode::CANNOT_ACCEPT, "{path}: {reason}");
        assert!(reason.reason().contains("binary"), "{path}: {reason}");
    }
    server.shutdown().await;
}
