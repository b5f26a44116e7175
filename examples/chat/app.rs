//! The chat server, as a library of the `chat` example: the endpoint, its events, and the
//! server builder. `main.rs` adds the command line; the tests in `tests/chat*.rs` include this
//! file with `#[path]` and run the very same server on an ephemeral port.
//!
//! # Ordering, and why there is one lock
//!
//! Every change to a room goes through [`Hub::locked`], which holds the store's mutex while it
//! runs: storing a message *and* broadcasting it, or sending a joiner the history *and* adding
//! it to the room. So
//! - message ids increase in the order everyone receives the messages;
//! - a joiner's history and the live messages that follow it have no gap and no duplicate
//!   (a message is either in the history or arrives after it, never both, never neither);
//! - `presence` events are sent in the order the membership changed.
//!
//! Broadcasting under the lock is cheap: a fan-out only pushes onto queues and never waits
//! (a client whose queue overflows is closed by the runtime with 1008).
//!
//! # SQLite from async code
//!
//! `rusqlite` is blocking. The closure given to [`Hub::locked`] runs on tokio's blocking pool
//! (`spawn_blocking`), so a slow disk (each insert is a commit) or a wait for the mutex never
//! stalls the async workers that drive every other connection. A plain
//! `std::sync::Mutex<Connection>` locked on the async worker would also do for a small chat,
//! but it would hold a worker thread for the length of every commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use endpoint::prelude::*;
use endpoint::{DecodeError, PayloadKind, Room};
use serde::{Deserialize, Serialize};

#[path = "store.rs"]
mod store;
#[path = "web.rs"]
mod web;

pub(crate) use store::{ChatMessage, Store};

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
    /// A chat message, to the whole room (its sender included).
    Message(ChatMessage),
    /// Someone entered the room.
    Join { room: String, name: String, ts: i64 },
    /// Someone left the room.
    Leave { room: String, name: String, ts: i64 },
    /// Who is in the room now, sorted.
    Presence { room: String, names: Vec<String> },
    /// To the joiner only, first: the room's last messages, oldest first, and the joiner's own
    /// nickname (`you`), which tells a guest which `guest-N` it got.
    History {
        room: String,
        you: String,
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

/// State shared by every connection: the store and the guest counter.
#[derive(Debug)]
pub(crate) struct Hub {
    store: Mutex<Store>,
    guests: AtomicU64,
    /// Rooms span several nodes (`--redis`): `presence` lists every node's members, read from
    /// the broker after the lock (it awaits Redis).
    cluster: AtomicBool,
}

impl Hub {
    pub(crate) fn new(store: Store) -> Arc<Hub> {
        Arc::new(Hub {
            store: Mutex::new(store),
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

    /// Runs `f` with the store locked, on the blocking pool. See the module docs for why
    /// room changes happen under this lock.
    pub(crate) async fn locked<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> R + Send + 'static,
    ) -> R {
        let hub = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            // A panic while locked poisons the mutex; the store itself is still consistent
            // (every statement is its own transaction), so keep going.
            let store = hub.store.lock().unwrap_or_else(|e| e.into_inner());
            f(&store)
        });
        match task.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
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

        let cluster = self.hub.cluster();
        let (s, r, n) = (session.clone(), room.clone(), name.clone());
        let joined = self
            .hub
            .locked(move |store| -> rusqlite::Result<()> {
                let messages = store.recent(&r, HISTORY_LEN)?;
                // The queue of a new session is empty, and an empty queue takes a message of
                // any size, so this cannot fail for want of room.
                let _ = s.try_send(Json(Event::History {
                    room: r.clone(),
                    you: n.clone(),
                    messages,
                }));
                s.join(&r);
                let room = s.room(&r);
                broadcast(
                    &room,
                    Event::Join {
                        room: r.clone(),
                        name: n,
                        ts: now_ms(),
                    },
                );
                if !cluster {
                    broadcast(&room, presence(&room));
                }
                Ok(())
            })
            .await;
        match joined {
            Ok(()) => {
                tracing::info!(session = %session.id(), %room, %name, "joined");
                if cluster {
                    let room = session.room(&room);
                    broadcast(&room, presence_everywhere(&room).await);
                }
                self.me = Some(Member { room, name });
            }
            Err(e) => {
                tracing::error!(error = %e, %room, "could not load the history");
                let _ = session
                    .send(Event::error("the server could not load the history"))
                    .await;
                let _ = session.close(CloseReason::new(
                    CloseCode::INTERNAL_ERROR,
                    "history unavailable",
                ));
            }
        }
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
        let (s, room, name) = (session.clone(), me.room.clone(), me.name.clone());
        let stored = self
            .hub
            .locked(move |store| -> rusqlite::Result<()> {
                // Stored (committed) first, broadcast second: whatever anyone saw survives a
                // restart.
                let message = store.insert(&room, &name, &text, now_ms())?;
                broadcast(&s.room(&room), Event::Message(message));
                Ok(())
            })
            .await;
        match stored {
            Ok(()) => None,
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
        let s = session.clone();
        let cluster = self.hub.cluster();
        let name = me.room.clone();
        self.hub
            .locked(move |_store| {
                let room = s.room(&me.room);
                broadcast(
                    &room,
                    Event::Leave {
                        room: me.room.clone(),
                        name: me.name,
                        ts: now_ms(),
                    },
                );
                if !cluster {
                    broadcast(&room, presence(&room));
                }
            })
            .await;
        if cluster {
            let room = session.room(&name);
            broadcast(&room, presence_everywhere(&room).await);
        }
    }
}

impl Chat {
    pub(crate) fn new(hub: Arc<Hub>) -> Chat {
        Chat { hub, me: None }
    }
}

/// The chat server: the `/chat/{room}` endpoint and the browser page at `/`, on one port.
pub(crate) fn server(hub: Arc<Hub>) -> Server {
    Server::new()
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
