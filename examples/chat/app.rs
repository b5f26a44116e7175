//! The chat server, as a library of the `chat` example: the endpoint, its events, and the
//! server builder. `main.rs` adds the command line; the tests in `tests/chat*.rs` include this
//! file with `#[path]` and run the very same server on an ephemeral port.
//!
//! # Positions, history and recovery
//!
//! Messages go through the room's stream (`Room::publish`): the framework gives each an
//! `offset` and the room's `epoch`, keeps it in the room's history (SQLite here, Redis Streams
//! with `--redis`) and delivers it to every member with `"offset"` and `"epoch"` as its first
//! fields. A joiner that comes back with `?epoch=E&since=OFFSET` gets, in its `history` event,
//! exactly the messages after that offset (`recovered: true`), or what is left and
//! `recovered: false` when the history no longer reaches back or the epoch changed; a fresh
//! joiner gets the last 50. The framework guarantees that the history event and the live
//! messages after it have no gap and no duplicate, even while others publish
//! (`Session::recover`: live messages are held until the history is queued).
//!
//! # Presence
//!
//! `join`, `leave` and `presence` are plain broadcasts (no position, not kept): a page that
//! comes back gets a fresh `presence` anyway. They are sent under one async mutex so that
//! `presence` events go out in the order membership changed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use endpoint::history::{Lost, Position, Recover};
use endpoint::prelude::*;
use endpoint::{DecodeError, PayloadKind, Room};
use serde::{Deserialize, Serialize};

#[path = "store.rs"]
mod store;
#[path = "web.rs"]
mod web;

pub(crate) use store::{ChatMessage, Published, Store};

/// How many messages a joiner gets in its `history` event.
pub(crate) const HISTORY_LEN: usize = 50;
/// Longest accepted message text, in bytes (UTF-8).
pub(crate) const MAX_TEXT_BYTES: usize = 4096;
/// Longest nickname, in characters; longer ones are cut.
pub(crate) const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in characters.
pub(crate) const MAX_ROOM_CHARS: usize = 64;

/// What the server sends: JSON objects tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Event {
    /// A chat message, to the whole room (its sender included), with its `offset` and `epoch`.
    Message(ChatMessage),
    /// Someone entered the room.
    Join { room: String, name: String, ts: i64 },
    /// Someone left the room.
    Leave { room: String, name: String, ts: i64 },
    /// Who is in the room now, sorted.
    Presence { room: String, names: Vec<String> },
    /// To the joiner only, first: the messages it missed (after `?since=`) or the room's last
    /// 50, oldest first; whether nothing was lost (`recovered`, and `lost` says why not); the
    /// room's position (`epoch`, `offset`: its last message); and the joiner's own nickname
    /// (`you`), which tells a guest which `guest-N` it got.
    History {
        room: String,
        you: String,
        epoch: String,
        offset: u64,
        recovered: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost: Option<String>,
        messages: Vec<ChatMessage>,
    },
    /// Something the client sent was refused; the connection stays open (except for a bad room
    /// name, which is followed by a close with 1008).
    Error { message: String },
}

impl Event {
    fn error(message: impl Into<String>) -> Json<Event> {
        Json(Event::Error {
            message: message.into(),
        })
    }
}

/// What a client sends: `{"text": "..."}`, or a bare text frame taken as the text.
///
/// Implements the runtime's [`Decode`] (Jakarta's `Decoder`): a frame that starts with `{` but
/// is not such an object fails to decode and reaches `on_error` as a decode error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatInput {
    pub(crate) text: String,
}

impl Decode for ChatInput {
    const KIND: PayloadKind = PayloadKind::Text;

    fn decode(message: Message) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Wire {
            text: String,
        }
        let raw = message
            .as_text()
            .ok_or_else(|| DecodeError::new("expected a text message"))?;
        if raw.trim_start().starts_with('{') {
            serde_json::from_str::<Wire>(raw)
                .map(|w| ChatInput { text: w.text })
                .map_err(|e| {
                    DecodeError::new(format!(
                        "invalid JSON message ({e}); send {{\"text\": \"...\"}} or plain text"
                    ))
                })
        } else {
            Ok(ChatInput {
                text: raw.to_owned(),
            })
        }
    }
}

/// State shared by every connection: the history store, the presence lock and the guest
/// counter.
#[derive(Debug)]
pub(crate) struct Hub {
    store: Store,
    /// Held while a membership change and its `presence` event go out (see the module docs).
    presence: tokio::sync::Mutex<()>,
    guests: AtomicU64,
    /// Rooms span several nodes (`--redis`): `presence` lists every node's members, read from
    /// the broker.
    cluster: AtomicBool,
}

impl Hub {
    pub(crate) fn new(store: Store) -> Arc<Hub> {
        Arc::new(Hub {
            store,
            presence: tokio::sync::Mutex::new(()),
            guests: AtomicU64::new(1),
            cluster: AtomicBool::new(false),
        })
    }

    /// Presence from every node (the server has a broker, see `main.rs --redis`).
    #[allow(dead_code)] // used by main.rs only with the redis feature
    pub(crate) fn set_cluster(&self) {
        self.cluster.store(true, Ordering::Relaxed);
    }

    fn cluster(&self) -> bool {
        self.cluster.load(Ordering::Relaxed)
    }

    fn next_guest(&self) -> String {
        format!("guest-{}", self.guests.fetch_add(1, Ordering::Relaxed))
    }
}

/// A session's nickname, kept in its properties so that `presence` can list a room's members.
#[derive(Debug, Clone)]
struct Nick(String);

/// Where a connection is: set once `on_open` has joined it to its room.
#[derive(Debug)]
struct Member {
    room: String,
    name: String,
}

/// One chat connection (one instance per WebSocket, made by the factory in [`server`]).
#[derive(Debug)]
pub(crate) struct Chat {
    hub: Arc<Hub>,
    me: Option<Member>,
}

// `max_message_size`: the largest frame read at all (a JSON-escaped 4 KiB text fits easily);
// anything bigger closes the connection with 1009. Texts over MAX_TEXT_BYTES get an `error`.
#[server_endpoint("/chat/{room}", max_message_size = 65536, compression = true)]
impl Chat {
    #[on_open]
    async fn open(&mut self, session: &Session, #[path_param] room: String) {
        if let Err(why) = check_room(&room) {
            let _ = session.send(Event::error(why)).await;
            // A constant, sendable code: `close` cannot refuse it.
            let _ = session.close(CloseReason::new(
                CloseCode::POLICY_VIOLATION,
                "invalid room name",
            ));
            return;
        }
        let name = match session.query_param("name").map(|n| clean_name(&n)) {
            Some(n) if !n.is_empty() => n,
            _ => self.hub.next_guest(),
        };
        session.properties().insert(Nick(name.clone()));
        session.set_name(name.clone()); // the name other nodes see in presence

        // `?epoch=E&since=OFFSET`: what this page saw last; else the last 50.
        let from = Position::from_query(session, "epoch", "since")
            .map_or(Recover::Last(HISTORY_LEN), Recover::Since);
        let recovering = match session.recover(&room, from).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, %room, "could not load the history");
                let _ = session
                    .send(Event::error("the server could not load the history"))
                    .await;
                let _ = session.close(CloseReason::new(
                    CloseCode::INTERNAL_ERROR,
                    "history unavailable",
                ));
                return;
            }
        };
        let r = &recovering.recovery;
        let epoch = r.position.epoch.to_string();
        let messages = recovering
            .entries
            .iter()
            .filter_map(|e| {
                let p: Published = serde_json::from_str(e.message.as_text()?).ok()?;
                Some(ChatMessage {
                    offset: e.offset,
                    epoch: epoch.clone(),
                    room: p.room,
                    from: p.from,
                    text: p.text,
                    ts: p.ts,
                })
            })
            .collect();
        let history = Event::History {
            room: room.clone(),
            you: name.clone(),
            epoch: epoch.clone(),
            offset: r.position.offset,
            recovered: r.recovered,
            lost: r.lost.map(|l| {
                match l {
                    Lost::EpochChanged => "epoch",
                    Lost::Trimmed => "trimmed",
                    Lost::Ahead => "ahead",
                }
                .to_owned()
            }),
            messages,
        };
        tracing::info!(session = %session.id(), %room, %name, recovered = r.recovered, replayed = r.replayed, "joined");
        // However many messages it holds, it is queued whole (waiting for room); live messages
        // published meanwhile are held by the runtime and follow it.
        let _ = session.send(Json(history)).await;
        let _presence = self.hub.presence.lock().await;
        recovering.resume(); // now a member of the room
        let room_ = session.room(&room);
        broadcast(
            &room_,
            Event::Join {
                room: room.clone(),
                name: name.clone(),
                ts: now_ms(),
            },
        );
        let names = if self.hub.cluster() {
            presence_everywhere(&room_).await
        } else {
            presence(&room_)
        };
        broadcast(&room_, names);
        self.me = Some(Member { room, name });
    }

    /// A message for the room. The returned value (an `error` event) goes back to the sender
    /// only; the message itself reaches everyone, the sender included, through the room.
    #[on_message]
    async fn message(&mut self, session: &Session, input: ChatInput) -> Option<Json<Event>> {
        let me = self.me.as_ref()?;
        let text = input.text;
        if text.trim().is_empty() {
            return Some(Event::error("empty message: nothing to send"));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Some(Event::error(format!(
                "message too long: {} bytes, the limit is {MAX_TEXT_BYTES} bytes",
                text.len()
            )));
        }
        let message = Published {
            kind: "message".to_owned(),
            room: me.room.clone(),
            from: me.name.clone(),
            text,
            ts: now_ms(),
        };
        // Stored (committed, or in Redis) first, delivered second: whatever anyone saw
        // survives a restart, and has a position.
        match session.room(&me.room).publish(Json(message)).await {
            Ok(p) => {
                if p.delivery.overflowed > 0 {
                    tracing::warn!(room = %me.room, closed = p.delivery.overflowed, "slow clients closed");
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store a message");
                Some(Event::error("the server could not store the message"))
            }
        }
    }

    #[on_error]
    async fn error(&mut self, session: &Session, error: &EndpointError) {
        if error.is_decode() {
            let _ = session.send(Event::error(error.to_string())).await;
        } else {
            tracing::warn!(session = %session.id(), %error, "error");
        }
    }

    #[on_close]
    async fn close(&mut self, session: &Session, reason: CloseReason) {
        // The runtime has already taken the session out of its rooms.
        let Some(me) = self.me.take() else {
            return;
        };
        tracing::info!(session = %session.id(), room = %me.room, name = %me.name, %reason, "left");
        let _presence = self.hub.presence.lock().await;
        let room = session.room(&me.room);
        broadcast(
            &room,
            Event::Leave {
                room: me.room.clone(),
                name: me.name,
                ts: now_ms(),
            },
        );
        let names = if self.hub.cluster() {
            presence_everywhere(&room).await
        } else {
            presence(&room)
        };
        broadcast(&room, names);
    }
}

impl Chat {
    pub(crate) fn new(hub: Arc<Hub>) -> Chat {
        Chat { hub, me: None }
    }
}

/// The chat server: the `/chat/{room}` endpoint and the browser page at `/`, on one port.
pub(crate) fn server(hub: Arc<Hub>) -> Server {
    let history = hub.store.history();
    Server::new()
        .history(history)
        .endpoint_with(move |_handshake| Chat::new(hub.clone()))
        .fallback(web::serve)
}

fn broadcast(room: &Room, event: Event) {
    match room.broadcast(Json(event)) {
        Ok(d) if d.overflowed > 0 => {
            tracing::warn!(
                room = room.name(),
                closed = d.overflowed,
                "slow clients closed"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not encode an event"),
    }
}

fn presence(room: &Room) -> Event {
    let mut names: Vec<String> = room
        .members()
        .iter()
        .filter_map(|s| s.properties().get::<Nick>())
        .map(|n| n.0)
        .collect();
    names.sort();
    Event::Presence {
        room: room.name().to_owned(),
        names,
    }
}

/// `presence` with the members of every node (with a broker; this node's only without).
/// Sent after the lock, so with several nodes two presence events can cross: each is a full
/// list, and the next change sends a fresh one.
async fn presence_everywhere(room: &Room) -> Event {
    let mut names: Vec<String> = room
        .members_everywhere()
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    Event::Presence {
        room: room.name().to_owned(),
        names,
    }
}

/// A room name is 1 to 64 characters of `A-Z a-z 0-9 _ - .`.
pub(crate) fn check_room(room: &str) -> Result<(), String> {
    let ok = !room.is_empty()
        && room.chars().count() <= MAX_ROOM_CHARS
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid room name: use 1 to {MAX_ROOM_CHARS} characters of A-Z, a-z, 0-9, '_', '-', '.'"
        ))
    }
}

/// A nickname: trimmed, control characters dropped, at most [`MAX_NAME_CHARS`] characters.
pub(crate) fn clean_name(raw: &str) -> String {
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    name.trim().to_owned()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
