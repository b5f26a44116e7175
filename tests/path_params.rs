//! `#[path_param]` values are parsed with `FromStr` in every handler; a value that does not parse
//! reaches `on_error` as a decode error and the session stays open.
//!
//! Uses `endpoint::test` (the framework's own `TestServer` and `TestClient`); `common/` only
//! for its lifecycle recorder and fast limits.

mod common;

use common::{fast_limits, Recorder};
use endpoint::prelude::*;
use endpoint::test::TestServer;

struct Items {
    rec: Recorder,
}

#[server_endpoint("/items/{id}")]
impl Items {
    #[on_open]
    fn open(&mut self, session: &Session, #[path_param] id: u32) {
        self.rec.push(format!("open:{id}"));
        session
            .try_send(format!("welcome {}", id + 1))
            .expect("send");
    }

    #[on_message]
    async fn text(&mut self, text: String, #[path_param("id")] item: u32) -> String {
        format!("{text}@{item}")
    }

    /// No path parameter here: it keeps working whatever the path says.
    #[on_message]
    fn binary(&mut self, #[path_param("id")] raw: String, data: Vec<u8>) -> String {
        format!("{raw}:{}", data.len())
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) -> String {
        self.rec
            .push(format!("error:decode={}:{error}", error.is_decode()));
        format!("error: {error}")
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

async fn items_server() -> (TestServer, Recorder) {
    let rec = Recorder::new();
    let r = rec.clone();
    let server = Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Items { rec: r.clone() });
    (TestServer::start(server).await, rec)
}

#[tokio::test]
async fn typed_path_param_in_open_and_message_handlers() {
    let (server, rec) = items_server().await;
    let mut client = server.connect("/items/41").await;
    assert_eq!(
        client.recv_text().await,
        "welcome 42",
        "id parsed as a number in on_open"
    );
    client.send("get").await.unwrap();
    assert_eq!(client.recv_text().await, "get@41");
    client.close(CloseReason::new(CloseCode::NORMAL, ""));
    client.expect_close_code(CloseCode::NORMAL).await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events, ["open:41", "close:1000"]);
}

#[tokio::test]
async fn unparsable_path_param_is_a_decode_error_and_the_session_stays_open() {
    let (server, rec) = items_server().await;
    let mut client = server.connect("/items/abc").await;

    // on_open could not be called: its error went to on_error (which answers).
    let first = client.recv_text().await;
    assert!(first.starts_with("error: decode error:"), "{first}");
    assert!(
        first.contains("id") && first.contains("abc"),
        "the error names the value: {first}"
    );

    // The text handler needs the number too: another decode error, still no close.
    client.send("get").await.unwrap();
    let second = client.recv_text().await;
    assert!(second.starts_with("error: decode error:"), "{second}");

    // A handler taking the raw String works: the session is open.
    client.send(vec![0u8; 3]).await.unwrap();
    assert_eq!(client.recv_text().await, "abc:3");

    client.close(CloseReason::new(CloseCode::NORMAL, ""));
    client.expect_close_code(CloseCode::NORMAL).await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(
        events[..2]
            .iter()
            .all(|e| e.starts_with("error:decode=true:")),
        "{events:#?}"
    );
    assert_eq!(events[2], "close:1000");
}

#[tokio::test]
async fn out_of_range_and_negative_values_do_not_parse_as_u32() {
    let (server, _rec) = items_server().await;
    for bad in ["4294967296", "-1", "%31%32x"] {
        let mut client = server.connect(&format!("/items/{bad}")).await;
        let msg = client.recv_text().await;
        assert!(msg.starts_with("error: decode error:"), "{bad}: {msg}");
    }
    // Percent-decoded before parsing: %34%32 is "42".
    let mut client = server.connect("/items/%34%32").await;
    assert_eq!(client.recv_text().await, "welcome 43");
}
