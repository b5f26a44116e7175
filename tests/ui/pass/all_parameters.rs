//! Every kind of parameter, sync and async handlers, and every kind of return value.

use endpoint::prelude::*;
use serde::Deserialize;

#[derive(Default)]
struct Chat {
    received: usize,
}

struct Db;

#[derive(Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[server_endpoint("/chat/{room}/{user}", subprotocols = ["v2", "v1"], max_message_size = 64 * 1024)]
impl Chat {
    /// Docs and other attributes stay on the re-emitted method.
    #[on_open]
    #[allow(clippy::unused_async)]
    async fn open(
        &mut self,
        session: &Session,
        handshake: &Handshake,
        #[path_param] room: String,
        #[path_param("user")] id: u64,
        db: State<Db>,
    ) {
        let _ = (session, handshake, room, id, db);
    }

    #[on_message]
    fn text(&mut self, session: Session, text: &str) -> String {
        self.received += 1;
        let _ = session;
        text.to_owned()
    }

    #[on_message(max_message_size = 1024)]
    async fn binary(
        &self,
        data: &[u8],
        #[path_param] room: String,
    ) -> Result<Vec<u8>, std::io::Error> {
        let _ = room;
        Ok(data.to_vec())
    }

    #[on_message]
    fn pong(&mut self, pong: Pong) -> Option<String> {
        let _ = pong;
        None
    }

    #[on_error]
    fn error(&mut self, error: EndpointError, session: &Session) {
        let _ = (error, session);
    }

    #[on_close]
    async fn close(&mut self, reason: CloseReason, #[path_param] user: u64) -> Result<(), String> {
        let _ = (reason, user);
        Ok(())
    }

    fn helper(&self) -> usize {
        self.received
    }
}

#[derive(Default)]
struct Points;

#[server_endpoint("/points")]
impl Points {
    #[on_message]
    fn point(&mut self, Json(point): Json<Point>) -> Json<i32> {
        Json(point.x + point.y)
    }

    #[on_message]
    fn bytes(&mut self, data: endpoint::Bytes) -> endpoint::Bytes {
        data
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        let _ = error;
    }
}

fn assert_endpoint<E: endpoint::Endpoint>() {}

fn main() {
    assert_endpoint::<Chat>();
    assert_endpoint::<Points>();
    let _ = Chat::default().helper();
    let _ = Server::new().endpoint::<Chat>().endpoint::<Points>();
}
