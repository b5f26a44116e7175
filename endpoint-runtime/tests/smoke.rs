//! The runtime without the macro: a hand-written endpoint served over a real socket.

use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Server, Session};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Default)]
struct Echo;

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/echo.do")
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
}

#[tokio::test]
async fn hand_written_endpoint_echoes() {
    let server = Server::new()
        .endpoint::<Echo>()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stop_rx.await;
    }));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo.do"))
        .await
        .unwrap();
    ws.send(WsMessage::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text("hello"));
    ws.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        WsMessage::binary(vec![1u8, 2, 3])
    );
    stop_tx.send(()).unwrap();
    match ws.next().await.unwrap().unwrap() {
        WsMessage::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    // Reading on sends our answer to the close frame; then the server drops the connection.
    assert!(ws.next().await.is_none());
    task.await.unwrap().unwrap();
}
