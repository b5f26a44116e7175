//! URI-template routing through real handshakes: an exact segment beats a variable, variables
//! are percent-decoded, and there are no partial matches.
//!
//! Uses `endpoint::test` (the framework's own `TestServer` and `TestClient`).

use endpoint::client::ConnectError;
use endpoint::prelude::*;
use endpoint::test::{TestClient, TestServer};

#[derive(Default)]
struct Lobby;

#[server_endpoint("/chat/lobby")]
impl Lobby {
    #[on_message]
    fn text(&mut self, _text: String) -> String {
        "lobby".to_owned()
    }
}

#[derive(Default)]
struct Room;

#[server_endpoint("/chat/{room}")]
impl Room {
    #[on_message]
    fn text(&mut self, #[path_param] room: String, _text: String) -> String {
        format!("room:{room}")
    }
}

#[derive(Default)]
struct Nested;

#[server_endpoint("/chat/{room}/users/{user}")]
impl Nested {
    #[on_message]
    fn text(&mut self, session: &Session, _text: &str, #[path_param] user: String) -> String {
        format!("{}/{user}", session.path_param("room").unwrap())
    }

    #[on_message]
    fn binary(&mut self, _data: Vec<u8>) {}
}

async fn chat_server() -> TestServer {
    TestServer::start(
        Server::new()
            // Registered variable first: order of registration must not matter.
            .endpoint::<Room>()
            .endpoint::<Lobby>()
            .endpoint::<Nested>(),
    )
    .await
}

/// Sends `text` and returns the text answer.
async fn roundtrip(client: &mut TestClient, text: &'static str) -> String {
    client.send(text).await.unwrap();
    client.recv_text().await
}

#[tokio::test]
async fn exact_segment_beats_variable() {
    let server = chat_server().await;
    let mut lobby = server.connect("/chat/lobby").await;
    assert_eq!(roundtrip(&mut lobby, "x").await, "lobby");
    let mut room = server.connect("/chat/general").await;
    assert_eq!(roundtrip(&mut room, "x").await, "room:general");
    let mut almost = server.connect("/chat/lobby2").await;
    assert_eq!(roundtrip(&mut almost, "x").await, "room:lobby2");
}

#[tokio::test]
async fn variables_are_percent_decoded_and_query_is_ignored() {
    let server = chat_server().await;
    let mut ws = server.connect("/chat/rust%20lang?x=1").await;
    assert_eq!(roundtrip(&mut ws, "x").await, "room:rust lang");
    let mut ws = server.connect("/chat/a/users/ada").await;
    assert_eq!(roundtrip(&mut ws, "x").await, "a/ada");
}

#[tokio::test]
async fn no_partial_matches() {
    let server = chat_server().await;
    for path in [
        "/chat",
        "/chat/",
        "/chat/a/",
        "/chat/a/b",
        "/chat/lobby/",
        "/chat/a/users",
        "/chat/a/users/ada/",
        "/chat/a/users/ada/x",
        "/CHAT/lobby",
    ] {
        match server.try_connect(path).await {
            Err(ConnectError::Status {
                status,
                headers,
                body,
            }) => assert_eq!(status.as_u16(), 404, "{path}: {headers:#?} {body:?}"),
            Err(other) => panic!("{path}: expected a 404, got {other}"),
            Ok(_) => panic!("{path}: expected a 404, the handshake succeeded"),
        }
    }
}

#[tokio::test]
async fn two_endpoints_with_the_same_template_fail_to_bind() {
    #[derive(Default)]
    struct Other;

    #[server_endpoint("/chat/{name}")]
    impl Other {
        #[on_message]
        fn text(&mut self, _text: String) {}
    }

    let err = Server::new()
        .endpoint::<Room>()
        .endpoint::<Other>()
        .bind("127.0.0.1:0")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}
