//! Helpers of the recovery tests: a `/feed/{room}` endpoint that joins with
//! `Session::join_from` (from `?epoch=E&since=N`, else the last `?last=N` messages) and says
//! what happened in a `recovery` event, publishes `pub:TEXT` through `Room::publish`; and a
//! client that collects positioned messages. Every wait is bounded.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use endpoint::history::{Lost, Position, Recover};
use endpoint::prelude::*;
use endpoint::{Room, Rooms};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

// The server and client helpers of the rooms tests (which include the shared `common`).
#[path = "../rooms_support/mod.rs"]
mod rooms_support;
pub use rooms_support::{
    bounded, connect, fast_limits, run, within, Running, Ws, WsMessage, TIMEOUT,
};

/// The endpoint under test.
#[derive(Default)]
pub struct Feed {
    room: Option<String>,
}

#[server_endpoint("/feed/{room}")]
impl Feed {
    #[on_open]
    async fn open(&mut self, session: &Session, #[path_param] room: String) {
        let from = Position::from_query(session, "epoch", "since").map_or_else(
            || {
                let last = session
                    .query_param("last")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Recover::Last(last)
            },
            Recover::Since,
        );
        match session.join_from(&room, from).await {
            Ok(r) => {
                let lost = r.lost.map(|l| match l {
                    Lost::EpochChanged => "epoch",
                    Lost::Trimmed => "trimmed",
                    Lost::Ahead => "ahead",
                });
                let _ = session
                    .send(Json(json!({
                        "type": "recovery",
                        "recovered": r.recovered,
                        "lost": lost,
                        "replayed": r.replayed,
                        "epoch": &*r.position.epoch,
                        "top": r.position.offset,
                    })))
                    .await;
            }
            Err(e) => {
                let _ = session
                    .send(Json(json!({"type": "error", "message": e.to_string()})))
                    .await;
            }
        }
        self.room = Some(room);
    }

    #[on_message]
    async fn message(&mut self, session: &Session, text: String) -> Option<String> {
        let room = self.room.as_ref()?;
        let body = text.strip_prefix("pub:")?;
        match session
            .room(room)
            .publish(Json(json!({"text": body})))
            .await
        {
            Ok(p) => Some(format!("ok:{}", p.position.offset)),
            Err(e) => Some(format!("err:{e}")),
        }
    }
}

/// Publishes `n` messages `"{tag}-{i}"` (i from 1) to `room` through the server's rooms.
pub async fn publish_n(rooms: &Rooms, room: &str, tag: &str, n: usize) -> Vec<u64> {
    let room = rooms.room(room);
    let mut offsets = Vec::with_capacity(n);
    for i in 1..=n {
        let p = room
            .publish(Json(json!({"text": format!("{tag}-{i}")})))
            .await
            .expect("publish");
        offsets.push(p.position.offset);
    }
    offsets
}

/// A positioned message as a client got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub offset: u64,
    pub epoch: String,
    pub text: String,
}

/// A feed client: positioned messages and the `recovery` event, in arrival order.
pub struct Client {
    pub ws: Ws,
    pub got: Vec<Got>,
    pub recovery: Option<Value>,
}

impl Client {
    /// Connects to `/feed/{room}?{query}`.
    pub async fn connect(addr: SocketAddr, room: &str, query: &str) -> Client {
        let path = if query.is_empty() {
            format!("/feed/{room}")
        } else {
            format!("/feed/{room}?{query}")
        };
        Client {
            ws: connect(addr, &path).await,
            got: Vec::new(),
            recovery: None,
        }
    }

    /// Reconnects from the last position seen.
    pub async fn resume(addr: SocketAddr, room: &str, epoch: &str, since: u64) -> Client {
        Self::connect(addr, room, &format!("epoch={epoch}&since={since}")).await
    }

    /// Reads one event; `false` on a close or the end.
    async fn read_one(&mut self) -> bool {
        match within(TIMEOUT, "a feed event", self.ws.next()).await {
            Some(Ok(WsMessage::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON event");
                if v["type"] == "recovery" || v["type"] == "error" {
                    assert!(self.recovery.is_none(), "two recovery events: {v}");
                    self.recovery = Some(v);
                } else {
                    self.got.push(Got {
                        offset: v["offset"].as_u64().expect("offset"),
                        epoch: v["epoch"].as_str().expect("epoch").to_owned(),
                        text: v["text"].as_str().expect("text").to_owned(),
                    });
                }
                true
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => true,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            Some(Err(e)) => panic!("socket error {e}"),
            None => false,
        }
    }

    /// Reads until the `recovery` event has come.
    pub async fn until_recovery(&mut self) -> Value {
        while self.recovery.is_none() {
            assert!(self.read_one().await, "closed before the recovery event");
        }
        self.recovery.clone().unwrap()
    }

    /// Reads until a message with `offset` has come.
    pub async fn until_offset(&mut self, offset: u64) {
        while self.got.last().is_none_or(|g| g.offset < offset) {
            assert!(
                self.read_one().await,
                "closed before offset {offset} (got up to {:?})",
                self.got.last().map(|g| g.offset)
            );
        }
    }

    /// Reads for `quiet`: nothing more must come.
    pub async fn expect_quiet(&mut self, quiet: Duration) {
        let before = self.got.len();
        let _ = tokio::time::timeout(quiet, async {
            loop {
                if !self.read_one().await {
                    break;
                }
            }
        })
        .await;
        assert_eq!(
            self.got.len(),
            before,
            "unexpected extra messages: {:?}",
            &self.got[before..]
        );
    }

    /// The offsets received.
    pub fn offsets(&self) -> Vec<u64> {
        self.got.iter().map(|g| g.offset).collect()
    }

    /// Drops the connection without a close handshake (as a lost Wi-Fi would, minus the
    /// timeout): the TCP connection is shut.
    pub fn drop_connection(self) -> Vec<Got> {
        drop(self.ws);
        self.got
    }
}

/// Asserts `offsets` is exactly `from..=to`, in order.
pub fn assert_exactly(offsets: &[u64], from: u64, to: u64) {
    let want: Vec<u64> = (from..=to).collect();
    if offsets != want.as_slice() {
        let dups = offsets.len() - {
            let mut d = offsets.to_vec();
            d.dedup();
            d.len()
        };
        panic!(
            "expected offsets {from}..={to} exactly once in order; got {} messages ({} repeated), first {:?}, last {:?}",
            offsets.len(),
            dups,
            offsets.first(),
            offsets.last()
        );
    }
}
