//! The framework under test: `#[server_endpoint]` endpoints, default limits except
//! `max_connections` (raised so the idle run's 10,000 connections fit).
//!
//! `/echo` and `/room` never compress (`Limits::compression` stays off); `/echo-deflate` and
//! `/room-deflate` are the same endpoints with `compression = true`, i.e. `Compression`'s
//! defaults: no context takeover either way, 15-bit windows, zlib level 1, messages under 1 KiB
//! sent as they are.

use bench_servers::{port_arg, ROOM, ROOM_DEFLATE, ROOM_HISTORY, ROOM_RECOVER};
use endpoint::history::{Position, Recover, Retention, RoomHistory};
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

/// `/room` through the room's stream: `Room::publish` (a position, kept in the history) instead
/// of `Room::broadcast`. Binary messages are delivered as published (a stamp only changes JSON
/// text), so the load generator checks them as on `/room`.
#[derive(Default)]
struct RoomHistoryBench {
    publisher: bool,
}

#[server_endpoint("/room-history")]
impl RoomHistoryBench {
    #[on_message]
    async fn text(&mut self, session: &Session, text: Utf8Bytes) -> Option<&'static str> {
        match text.as_str() {
            "sub" => {
                // Joined through the log, as a recovering client would (nothing to replay).
                let _ = session
                    .join_from(ROOM_HISTORY, Recover::Last(0))
                    .await
                    .ok()?;
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
    async fn binary(&mut self, session: &Session, data: Bytes) {
        if self.publisher {
            let _ = session.room(ROOM_HISTORY).publish(data).await;
        }
    }
}

/// Recovery: `pos` answers `pos:EPOCH:OFFSET` (the room's last position); `pub` makes a
/// publisher, whose binary messages are published; a connection opened with
/// `?epoch=E&since=N` is replayed what came after N, then told `recovered:REPLAYED:BOOL`.
#[derive(Default)]
struct Recovery {
    publisher: bool,
}

#[server_endpoint("/recover")]
impl Recovery {
    #[on_open]
    async fn open(&mut self, session: &Session) {
        if let Some(since) = Position::from_query(session, "epoch", "since") {
            let r = session.join_from(ROOM_RECOVER, Recover::Since(since)).await;
            let answer = match r {
                Ok(r) => format!("recovered:{}:{}", r.replayed, r.recovered),
                Err(e) => format!("error:{e}"),
            };
            let _ = session.send(answer).await;
        }
    }

    #[on_message]
    async fn text(&mut self, session: &Session, text: Utf8Bytes) -> Option<String> {
        match text.as_str() {
            "pos" => match session.room(ROOM_RECOVER).history(0).await {
                Ok((p, _)) => Some(format!("pos:{}:{}", p.epoch, p.offset)),
                Err(e) => Some(format!("error:{e}")),
            },
            "pub" => {
                self.publisher = true;
                Some("ok".into())
            }
            _ => None,
        }
    }

    #[on_message]
    async fn binary(&mut self, session: &Session, data: Bytes) {
        if self.publisher {
            let _ = session.room(ROOM_RECOVER).publish(data).await;
        }
    }
}

/// The history of `/room-history` and `/recover`: in memory, or in Redis Streams when
/// `BENCH_REDIS_URL` is set (then the server also has the Redis broker it goes through).
fn with_history(server: Server) -> std::io::Result<Server> {
    let retention = |history: RoomHistory| {
        history.retention_for(|topic| {
            if topic.room() == ROOM_RECOVER {
                Retention::new().max_count(100_000).max_bytes(64 << 20)
            } else {
                Retention::new()
            }
        })
    };
    match std::env::var("BENCH_REDIS_URL") {
        Ok(url) => {
            let broker = endpoint::redis::RedisBroker::new(&url)?;
            let history = RoomHistory::new(endpoint::history::RedisHistory::new(&broker));
            Ok(server.broker(broker).history(retention(history)))
        }
        Err(_) => Ok(server.history(retention(RoomHistory::memory()))),
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
        .endpoint::<RoomHistoryBench>()
        .endpoint::<Recovery>();
    let bound = with_history(server)?.bind(("127.0.0.1", port)).await?;
    println!("listening on {}", bound.local_addr()?);
    if std::env::var_os("BENCH_REDIS_URL").is_some() {
        // Listen only once the broker is connected: publishing needs Redis.
        let handle = bound.handle();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let running = tokio::spawn(bound.run_until(endpoint::shutdown_signal()));
        while !handle.stats().broker.is_some_and(|b| b.connected) {
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other("the Redis broker did not connect"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        return running.await.map_err(std::io::Error::other)?;
    }
    let server = bound;
    server.run_until(endpoint::shutdown_signal()).await
}
