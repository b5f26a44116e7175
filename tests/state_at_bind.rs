//! An endpoint whose handlers take a `State<T>` that was never registered is refused when the
//! server is built (`bind`, `listen`, `into_service`), with an error naming the type, the
//! endpoint and the handler: not at the first message, and `on_close` is never skipped for it.
//!
//! Uses `endpoint::test` (the framework's own `TestServer` and `TestClient`).

use endpoint::prelude::*;
use endpoint::state::RequiredState;
use endpoint::test::TestServer;
use endpoint::Endpoint;

struct Db;
struct Clock;

#[derive(Default)]
struct Chat;

#[server_endpoint("/chat/{room}")]
impl Chat {
    #[on_message]
    fn text(&mut self, _db: State<Db>, text: String) -> String {
        text
    }

    #[on_close]
    fn close(&mut self, _clock: State<Clock>) {}
}

#[derive(Default)]
struct Plain;

#[server_endpoint("/plain")]
impl Plain {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[test]
fn the_macro_declares_every_state_parameter_of_every_hook() {
    let needs = <Chat as Endpoint>::required_state();
    assert_eq!(
        needs,
        vec![
            RequiredState::of::<Db>("#[on_message] fn text"),
            RequiredState::of::<Clock>("#[on_close] fn close"),
        ]
    );
    assert!(<Plain as Endpoint>::required_state().is_empty());
}

#[tokio::test]
async fn bind_fails_naming_the_type_the_endpoint_and_the_handler() {
    let err = Server::new()
        .endpoint::<Plain>()
        .endpoint::<Chat>()
        .state(Db)
        .bind("127.0.0.1:0")
        .await
        .expect_err("Clock was never registered");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let text = err.to_string();
    for part in [
        "State<state_at_bind::Clock>",
        "state_at_bind::Chat",
        "/chat/{room}",
        "#[on_close] fn close",
        "Server::state",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    // The first missing one is named: without Db, the message handler's.
    let err = Server::new()
        .endpoint::<Chat>()
        .into_service()
        .expect_err("nothing registered");
    assert!(
        err.to_string().contains("State<state_at_bind::Db>"),
        "{err}"
    );
    assert!(err.to_string().contains("#[on_message] fn text"), "{err}");
}

#[tokio::test]
async fn with_every_state_registered_the_server_serves() {
    let server = TestServer::start(Server::new().endpoint::<Chat>().state(Db).state(Clock)).await;
    let mut client = server.connect("/chat/lobby").await;
    client.send("hi").await.unwrap();
    assert_eq!(client.recv_text().await, "hi");
    client.close(CloseReason::new(CloseCode::NORMAL, "bye"));
    client.expect_close_code(CloseCode::NORMAL).await;
    server.shutdown().await;
}
