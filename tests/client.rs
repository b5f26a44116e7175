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
