//! The framework under test: `#[server_endpoint]` endpoints, default limits except
//! `max_connections` (raised so the idle run's 10,000 connections fit).
//!
//! `/echo` and `/room` never compress (`Limits::compression` stays off); `/echo-deflate` and
//! `/room-deflate` are the same endpoints with `compression = true`, i.e. `Compression`'s
//! defaults: no context takeover either way, 15-bit windows, zlib level 1, messages under 1 KiB
//! sent as they are.

use bench_servers::{port_arg, ROOM, ROOM_DEFLATE};
use endpoint::prelude::*;
use endpoint::{Limits, Utf8Bytes};

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: Utf8Bytes) -> Utf8Bytes {
        text
    }

    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }
}

#[derive(Default)]
struct Room {
    publisher: bool,
}

#[server_endpoint("/room")]
impl Room {
    #[on_message]
    fn text(&mut self, session: &Session, text: Utf8Bytes) -> Option<&'static str> {
        match text.as_str() {
            "sub" => {
                session.join(ROOM);
                Some("ok")
            }
            "pub" => {
                self.publisher = true;
                Some("ok")
            }
            _ => None,
        }
    }

    #[on_message]
    fn binary(&mut self, session: &Session, data: Bytes) {
        if self.publisher {
            let _ = session.room(ROOM).broadcast(data);
        }
    }
}

#[derive(Default)]
struct EchoDeflate;

#[server_endpoint("/echo-deflate", compression = true)]
impl EchoDeflate {
    #[on_message]
    fn text(&mut self, text: Utf8Bytes) -> Utf8Bytes {
        text
    }

    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }
}

/// `/room` with compression, in its own room; the publisher's messages are text (JSON), so
/// after the `sub`/`pub` hello every text message of the publisher is broadcast.
#[derive(Default)]
struct RoomDeflate {
    publisher: bool,
}

#[server_endpoint("/room-deflate", compression = true)]
impl RoomDeflate {
    #[on_message]
    fn text(&mut self, session: &Session, text: Utf8Bytes) -> Option<&'static str> {
        if self.publisher {
            let _ = session.room(ROOM_DEFLATE).broadcast(text);
            return None;
        }
        match text.as_str() {
            "sub" => {
                session.join(ROOM_DEFLATE);
                Some("ok")
            }
            "pub" => {
                self.publisher = true;
                Some("ok")
            }
            _ => None,
        }
    }

    #[on_message]
    fn binary(&mut self, session: &Session, data: Bytes) {
        if self.publisher {
            let _ = session.room(ROOM_DEFLATE).broadcast(data);
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = port_arg();
    let mut limits = Limits::default();
    limits.max_connections = 100_000;
    let server = Server::new()
        .limits(limits)
        .endpoint::<Echo>()
        .endpoint::<Room>()
        .endpoint::<EchoDeflate>()
        .endpoint::<RoomDeflate>()
        .bind(("127.0.0.1", port))
        .await?;
    println!("listening on {}", server.local_addr()?);
    server.run_until(endpoint::shutdown_signal()).await
}
