//! Positions, history and recovery for rooms: a room broadcast made with
//! [`Room::publish`](crate::Room::publish) gets a [`Position`] (a per-room increasing `offset`
//! and the room's `epoch`), is kept in a [`History`] store within the room's [`Retention`], and a
//! session that comes back with its last position gets exactly what it missed
//! ([`Session::join_from`](crate::Session::join_from)).
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Position`], [`Retention`], [`RoomHistory`] (the server's setting), [`History`] (the store trait), the per-room log that orders live delivery and recovery |
//! | `memory` | [`MemoryHistory`]: a ring per room, in this process (the default) |
//! | `sqlite` | `SqliteHistory` (feature `sqlite`): one node that must survive a restart |
//! | `redis` | `RedisHistory` (feature `redis`): Redis Streams through the [`RedisBroker`](crate::redis::RedisBroker)'s connection, the same offsets on every node |
//!
//! The design follows Centrifugo's (offset + epoch per stream, history bounded by size and
//! age, recovery that says whether it was complete) and Socket.IO 4.6's connection-state
//! recovery (the session is told whether it `recovered`).
//!
//! # Positions
//!
//! The `offset` of a room's first message is 1, and each message of that room gets the next
//! one. The `epoch` names the room's history: it changes when the history was lost (a memory
//! store restarted, a Redis without persistence restarted), so that an old offset is never
//! taken for a new one.
//!
//! Members receive a positioned message *stamped* with its position ([`Stamp`]): by default
//! ([`Stamp::Json`]) a JSON object gets `"offset":N,"epoch":"E"` as its first fields, so a
//! client learns its position from what it receives. (The application encodes its message
//! once, without a position; the store gives the position; the stamp joins them, once per
//! message and node, never per recipient.)
//!
//! # Recovery
//!
//! A session joins with what it last saw:
//!
//! ```
//! use endpoint_runtime::history::{Position, Recover};
//! use endpoint_runtime::Session;
//!
//! async fn open(session: &Session) {
//!     // ?epoch=E&since=N from the page; a fresh page asks for the last 50 instead.
//!     let from = Position::from_query(session, "epoch", "since")
//!         .map_or(Recover::Last(50), Recover::Since);
//!     match session.join_from("lobby", from).await {
//!         Ok(r) if r.recovered => tracing::debug!(missed = r.replayed, "recovered"),
//!         Ok(r) => tracing::debug!(reason = ?r.lost, "not recoverable: reload"),
//!         Err(e) => tracing::warn!(error = %e, "history unavailable"),
//!     }
//! }
//! ```
//!
//! The runtime delivers exactly the messages after the position, in order, then the live ones,
//! with no gap and no duplicate even while others publish during the replay: the session is
//! registered with the room's log *before* the history is read, every live message meanwhile
//! is held for it, and it becomes a member once the replay and the held messages (those with a
//! higher offset than the last replayed) are queued. When the epoch differs, or the history no
//! longer reaches back to the position, [`Recovery::recovered`] is `false`, [`Recovery::lost`]
//! says why, and what is available is delivered (for a changed epoch: the new epoch's history,
//! up to [`RoomHistory::max_replay`]).
//!
//! # Guarantees and limits
//!
//! * Only [`Room::publish`](crate::Room::publish) goes through the log; [`Room::broadcast`](crate::Room::broadcast)
//!   stays a fire-and-forget broadcast without position (joins, presence, typing notices).
//! * A store that fails (SQLite I/O error, Redis down) makes `publish` fail with a
//!   [`HistoryError`]: the message is not delivered, so nobody sees a message without a position.
//! * With a local store (memory, SQLite) positions are this node's: a [`Broker`](crate::broker::Broker)
//!   forwards the stamped message to the other nodes as a plain broadcast (their members see
//!   this node's offsets; recovering there fails). For one set of positions across nodes use
//!   `RedisHistory`.
//! * A node whose Redis subscription was down does not notice the offsets its live members
//!   missed meanwhile: they get them when they reconnect with their position.
//! * Publishing with a local store (memory, SQLite) stores and delivers in a task of its own:
//!   once stored, a message is delivered even if the caller stops waiting for `publish`.
//! * Each room published to or recovered from keeps a small log on each node (its last offset,
//!   the sessions recovering): a few dozen bytes per room.
//! * Messages a session gets while its recovery is held are bounded by
//!   [`Limits::outbound_queue_bytes`](crate::Limits::outbound_queue_bytes); beyond, it is closed
//!   with 1008 as a slow consumer.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::broker::Topic;
use super::{fan_out, Delivery};
use crate::error::EndpointError;
use crate::message::{Encode, Message, Utf8Bytes};
use crate::protocol::frame::Outgoing;
use crate::session::{EndpointRegistry, Pushed, Session, SessionId};
use crate::util::lock;

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use crate::stats::HistoryStats;
pub use memory::MemoryHistory;
#[cfg(feature = "redis")]
pub use redis::RedisHistory;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteHistory;

/// Where a message is in its room's stream: the room's `epoch` and the message's `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// Per-room, increasing by one per message; the first message is 1, and 0 means "before
    /// the first message".
    pub offset: u64,
    /// The name of the room's history; changes when the history was lost.
    pub epoch: Arc<str>,
}

impl Position {
    /// A position.
    pub fn new(offset: u64, epoch: impl Into<Arc<str>>) -> Self {
        Position {
            offset,
            epoch: epoch.into(),
        }
    }

    /// The position in a session's query string, e.g. `?epoch=E&since=12` with
    /// `Position::from_query(session, "epoch", "since")`; `None` unless both are there and the
    /// offset is a number.
    pub fn from_query(session: &Session, epoch: &str, offset: &str) -> Option<Position> {
        let epoch = session.query_param(epoch)?;
        let offset = session.query_param(offset)?.trim().parse().ok()?;
        (!epoch.is_empty()).then(|| Position::new(offset, epoch))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.offset, self.epoch)
    }
}

/// How much history a room keeps: the newest messages within every bound.
///
/// ```
/// use endpoint_runtime::history::Retention;
/// use std::time::Duration;
///
/// const CHAT: Retention = Retention::new()
///     .max_count(10_000)
///     .max_bytes(16 << 20)
///     .max_age(Some(Duration::from_secs(24 * 3600)));
/// assert_eq!(CHAT.count(), 10_000);
/// // Positions only, no history: a reconnect recovers only when it missed nothing.
/// assert_eq!(Retention::none().count(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    count: usize,
    bytes: usize,
    age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self::new()
    }
}

impl Retention {
    /// The default: 1,000 messages, 4 MiB of payload, no age limit.
    pub const fn new() -> Self {
        Retention {
            count: 1000,
            bytes: 4 << 20,
            age: None,
        }
    }

    /// No history: positions only.
    pub const fn none() -> Self {
        Retention {
            count: 0,
            bytes: 0,
            age: None,
        }
    }

    /// At most `count` messages.
    pub const fn max_count(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    /// At most `bytes` of payload (the newest messages that fit; a message bigger than the
    /// bound is not kept).
    pub const fn max_bytes(mut self, bytes: usize) -> Self {
        self.bytes = bytes;
        self
    }

    /// Messages older than `age` are dropped (`None`: no age limit).
    pub const fn max_age(mut self, age: Option<Duration>) -> Self {
        self.age = age;
        self
    }

    /// The count bound.
    pub const fn count(&self) -> usize {
        self.count
    }

    /// The byte bound.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The age bound.
    pub const fn age(&self) -> Option<Duration> {
        self.age
    }

    /// The oldest time (ms since the Unix epoch) a message may have, `now_ms` being now.
    pub fn oldest_ms(&self, now_ms: u64) -> Option<u64> {
        let age = u64::try_from(self.age?.as_millis()).unwrap_or(u64::MAX);
        Some(now_ms.saturating_sub(age))
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its offset in the room.
    pub offset: u64,
    /// The message as published (not stamped).
    pub message: Message,
    /// When it was published, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// What a store holds of a room after some offset: [`History::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The room's epoch now.
    pub epoch: Arc<str>,
    /// The room's last offset (0: nothing was ever published in this epoch).
    pub top: u64,
    /// The lowest offset the store still holds (`top + 1` when it holds nothing).
    pub first: u64,
    /// The messages after the asked offset, oldest first, at most the asked number.
    pub entries: Vec<Entry>,
}

/// Why a [`History`] store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    message: String,
}

impl HistoryError {
    /// An error with this description.
    pub fn new(message: impl Into<String>) -> Self {
        HistoryError {
            message: message.into(),
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "room history: {}", self.message)
    }
}

impl std::error::Error for HistoryError {}

impl From<EndpointError> for HistoryError {
    fn from(e: EndpointError) -> Self {
        HistoryError::new(e.to_string())
    }
}

/// A boxed future, as returned by [`History`]'s methods.
pub type HistoryFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many messages and bytes a store holds (for [`HistoryStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Rooms with a history.
    pub rooms: u64,
    /// Messages held.
    pub entries: u64,
    /// Payload bytes held.
    pub bytes: u64,
}

/// A store of room history: assigns offsets and keeps messages within a [`Retention`].
///
/// Three come with the runtime: [`MemoryHistory`] (default), `SqliteHistory` (feature
/// `sqlite`), `RedisHistory` (feature `redis`). A store only stores: ordering live delivery
/// against recovery is the runtime's (see the [module docs](self)).
///
/// ```
/// use endpoint_runtime::history::{History, MemoryHistory, Retention};
/// use endpoint_runtime::broker::Topic;
/// use endpoint_runtime::Message;
///
/// # async fn demo() -> Result<(), endpoint_runtime::history::HistoryError> {
/// let store = MemoryHistory::new();
/// let topic = Topic::new("/chat/{room}", "lobby");
/// let p = store.append(&topic, &Message::text("hi"), &Retention::new()).await?;
/// assert_eq!(p.offset, 1);
/// let slice = store.read(&topic, 0, 10, &Retention::new()).await?;
/// assert_eq!(slice.entries.len(), 1);
/// # Ok(()) }
/// ```
pub trait History: Send + Sync + 'static {
    /// Stores `message` as the room's next message and returns its position. A distributed
    /// store also carries it to every node (this one included), see [`distributed`](Self::distributed).
    fn append<'a>(
        &'a self,
        topic: &'a Topic,
        message: &'a Message,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Position, HistoryError>>;

    /// The room's messages after `after`, oldest first, at most `limit`, within `retention`.
    fn read<'a>(
        &'a self,
        topic: &'a Topic,
        after: u64,
        limit: usize,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Slice, HistoryError>>;

    /// Whether the store delivers its messages to every node itself (Redis Streams: each node
    /// receives every message, its own included, in offset order, and hands it to
    /// [`Inbox::deliver_positioned`](crate::broker::Inbox::deliver_positioned)). `false`
    /// (memory, SQLite): the publishing node delivers to its members once `append` returns.
    fn distributed(&self) -> bool {
        false
    }

    /// What the store holds, as far as it knows without waiting.
    fn sizes(&self) -> Sizes {
        Sizes::default()
    }
}

/// The function of a [`Stamp::Custom`].
pub type StampFn = dyn Fn(&Position, &Message) -> Message + Send + Sync;

/// How a positioned message is shown to its recipients. See the [module docs](self#positions).
#[derive(Clone, Default)]
pub enum Stamp {
    /// A text message that is a JSON object gets `"offset":N,"epoch":"E"` as its first
    /// fields; other messages go as they are.
    #[default]
    Json,
    /// The message as published; the application tells positions some other way.
    None,
    /// The message this function makes from the position and the message as published.
    Custom(Arc<StampFn>),
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stamp::Json => "Json",
            Stamp::None => "None",
            Stamp::Custom(_) => "Custom",
        })
    }
}

impl Stamp {
    /// `message` as its recipients get it at `position`.
    ///
    /// ```
    /// use endpoint_runtime::history::{Position, Stamp};
    /// use endpoint_runtime::Message;
    ///
    /// let p = Position::new(7, "a1b2");
    /// let m = Stamp::Json.apply(&p, &Message::text(r#"{"text":"hi"}"#));
    /// assert_eq!(m.as_text(), Some(r#"{"offset":7,"epoch":"a1b2","text":"hi"}"#));
    /// ```
    pub fn apply(&self, position: &Position, message: &Message) -> Message {
        match self {
            Stamp::None => message.clone(),
            Stamp::Custom(f) => f(position, message),
            Stamp::Json => {
                let Some(text) = message.as_text() else {
                    return message.clone();
                };
                let body = text.trim_start();
                let Some(rest) = body.strip_prefix('{') else {
                    return message.clone();
                };
                let mut out = String::with_capacity(text.len() + 48 + position.epoch.len());
                out.push_str("{\"offset\":");
                out.push_str(&position.offset.to_string());
                out.push_str(",\"epoch\":");
                json_string(&mut out, &position.epoch);
                if !rest.trim_start().starts_with('}') {
                    out.push(',');
                }
                out.push_str(rest);
                Message::Text(Utf8Bytes::from(out))
            }
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Which retention a room gets.
type RetentionFor = Arc<dyn Fn(&Topic) -> Retention + Send + Sync>;

/// The server's room history: the store, the rooms' retention, the stamp. Give it to
/// [`Server::history`](crate::Server::history).
///
/// ```
/// use endpoint_runtime::history::{Retention, RoomHistory};
/// use endpoint_runtime::Server;
///
/// let server = Server::new().history(
///     RoomHistory::memory()
///         .retention(Retention::new().max_count(500))
///         // Per endpoint or per room: the announcements room keeps more.
///         .retention_for(|topic| match topic.room() {
///             "announcements" => Retention::new().max_count(10_000),
///             _ => Retention::new().max_count(500),
///         }),
/// );
/// # drop(server);
/// ```
#[derive(Clone)]
pub struct RoomHistory {
    store: Arc<dyn History>,
    retention: Retention,
    retention_for: Option<RetentionFor>,
    stamp: Stamp,
    max_replay: usize,
}

impl fmt::Debug for RoomHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomHistory")
            .field("retention", &self.retention)
            .field("per_room", &self.retention_for.is_some())
            .field("stamp", &self.stamp)
            .field("max_replay", &self.max_replay)
            .finish()
    }
}

impl RoomHistory {
    /// History in `store`, with the default [`Retention`] and [`Stamp`].
    pub fn new(store: impl History) -> Self {
        RoomHistory {
            store: Arc::new(store),
            retention: Retention::new(),
            retention_for: None,
            stamp: Stamp::Json,
            max_replay: 10_000,
        }
    }

    /// History in memory ([`MemoryHistory`]): lost when the process ends.
    pub fn memory() -> Self {
        Self::new(MemoryHistory::new())
    }

    /// The retention of every room (unless [`retention_for`](Self::retention_for) says otherwise).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The retention of each room, by endpoint (`topic.endpoint()`, its URI template) and
    /// room name.
    pub fn retention_for(
        mut self,
        f: impl Fn(&Topic) -> Retention + Send + Sync + 'static,
    ) -> Self {
        self.retention_for = Some(Arc::new(f));
        self
    }

    /// How positioned messages are shown to their recipients (default [`Stamp::Json`]).
    pub fn stamp(mut self, stamp: Stamp) -> Self {
        self.stamp = stamp;
        self
    }

    /// The most messages one recovery replays (default 10,000); a session that missed more
    /// gets the newest ones and `recovered: false`.
    pub fn max_replay(mut self, n: usize) -> Self {
        self.max_replay = n.max(1);
        self
    }

    fn retention_of(&self, topic: &Topic) -> Retention {
        match &self.retention_for {
            Some(f) => f(topic),
            None => self.retention,
        }
    }
}

/// What a session asks for when it joins a room with history: [`Session::join_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recover {
    /// Everything after this position (what the session saw last).
    Since(Position),
    /// The room's last `n` messages (a fresh page).
    Last(usize),
}

/// Why a recovery was not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The room's epoch is not the session's: its history was lost meanwhile.
    EpochChanged,
    /// The history no longer reaches back to the session's position (trimmed by the
    /// retention), or more was missed than [`RoomHistory::max_replay`].
    Trimmed,
    /// The session's offset is beyond the room's last one (a position from elsewhere).
    Ahead,
}

/// What [`Session::join_from`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a Recovery says whether the session missed messages for good"]
pub struct Recovery {
    /// Whether the session got every message after its position (always `true` for
    /// [`Recover::Last`]).
    pub recovered: bool,
    /// Why not, when not.
    pub lost: Option<Lost>,
    /// How many stored messages were replayed.
    pub replayed: usize,
    /// The room's position when the session went live: its last offset and epoch. (Messages
    /// held during the replay may go past it.)
    pub position: Position,
}

/// A recovery in progress, for an application that sends the missed messages itself (e.g.
/// inside one event): [`Session::recover`]. Live messages are held for the session until
/// [`resume`](Recovering::resume) (or drop), and then queued after whatever the application
/// queued meanwhile.
#[must_use = "live messages are held until this is resumed or dropped"]
pub struct Recovering {
    /// The outcome, as for [`Session::join_from`] (`replayed` counts [`entries`](Self::entries)).
    pub recovery: Recovery,
    /// The missed messages, oldest first, as published (not stamped).
    pub entries: Vec<Entry>,
    inner: Option<Resume>,
}

impl fmt::Debug for Recovering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovering")
            .field("recovery", &self.recovery)
            .field("entries", &self.entries.len())
            .finish()
    }
}

struct Resume {
    link: Arc<HistoryLink>,
    log: Arc<RoomLog>,
    ready: Ready,
}

/// What a recovering session waits for before it goes live: the node's log must have
/// delivered `upto` of `epoch` (the last offset the session's replay covered), so that a live
/// message still on its way from the store is neither missed nor delivered twice.
struct Ready {
    session: Session,
    room: Arc<str>,
    upto: u64,
    epoch: Arc<str>,
}

impl Recovering {
    /// The entries as their recipients see them ([`Stamp`]ed with their positions).
    pub fn stamped(&self) -> Vec<Message> {
        let Some(r) = &self.inner else {
            return Vec::new();
        };
        self.entries
            .iter()
            .map(|e| {
                r.link
                    .config
                    .stamp
                    .apply(&Position::new(e.offset, r.ready.epoch.clone()), &e.message)
            })
            .collect()
    }

    /// Queues the messages held during the recovery and makes the session a member of the
    /// room: from now on it gets live messages.
    pub fn resume(mut self) {
        if let Some(r) = self.inner.take() {
            r.finish();
        }
    }
}

impl Drop for Recovering {
    fn drop(&mut self) {
        if let Some(r) = self.inner.take() {
            r.finish();
        }
    }
}

/// How long a recovering session waits for a live message its replay already covered (one
/// still on its way from Redis) before it goes live anyway.
const CATCH_UP: Duration = Duration::from_secs(2);

impl Resume {
    fn finish(self) {
        let id = self.ready.session.id();
        let upto = self.ready.upto;
        let epoch = self.ready.epoch.clone();
        let mut st = lock(&self.log.state);
        let Some(i) = st.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let same_epoch = st.epoch.as_deref() == Some(&*epoch);
        if same_epoch && st.last < upto {
            // This node has not delivered all the replay covered yet: wait for it.
            st.pending[i].ready = Some(self.ready);
            drop(st);
            let log = self.log.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    tokio::time::sleep(CATCH_UP).await;
                    let mut st = lock(&log.state);
                    if let Some(i) = st.pending.iter().position(|p| p.id == id) {
                        // Lost on the way (a broker outage): nobody here will get them live.
                        if st.epoch.as_deref() == Some(&*epoch) {
                            st.last = st.last.max(upto);
                        }
                        complete(&mut st, i);
                    }
                });
            }
            return;
        }
        if !same_epoch {
            // Nothing delivered here in this epoch yet: the replay sets where live starts.
            st.epoch = Some(epoch);
            st.last = upto;
        }
        st.pending[i].ready = Some(self.ready);
        complete(&mut st, i);
    }
}

/// Step 3 of a recovery, under the log's lock: the held messages the replay did not cover,
/// then membership. Skipped (the session closed with 1008) when too much was held.
fn complete(st: &mut LogState, i: usize) {
    let pending = st.pending.swap_remove(i);
    let Some(ready) = pending.ready else {
        return;
    };
    let session = &ready.session;
    if pending.overflowed {
        // 1008 may be sent: `close` refuses only codes that may not.
        let _ = session.close(crate::message::CloseReason::new(
            crate::message::CloseCode::POLICY_VIOLATION,
            "too many messages while recovering",
        ));
        return;
    }
    for (offset, epoch, message) in pending.held {
        if *epoch == *ready.epoch && offset <= ready.upto {
            continue; // replayed already
        }
        let item = Outgoing::Message(message);
        if session.outbound().push_or_overflow(&item, None) == Pushed::Overflowed {
            return;
        }
    }
    // Joined under the log's lock: the next live message finds it a member.
    session.join(&ready.room);
}

/// The log of one room on this node: orders its live deliveries against recoveries.
#[derive(Default)]
pub(crate) struct RoomLog {
    /// Held across `append` and the local delivery, so that a non-distributed store's
    /// messages reach members in offset order.
    publish: tokio::sync::Mutex<()>,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// The last offset delivered on this node, and its epoch.
    last: u64,
    epoch: Option<Arc<str>>,
    /// Sessions recovering: live messages are held for them.
    pending: Vec<Pending>,
}

struct Pending {
    id: SessionId,
    held: Vec<(u64, Arc<str>, Message)>,
    bytes: usize,
    limit: usize,
    overflowed: bool,
    /// Set once the replay is queued: the session goes live when the log reaches `upto`.
    ready: Option<Ready>,
}

/// The server's history, shared by its endpoints (kept in the server's state map).
pub(crate) struct HistoryLink {
    config: RoomHistory,
    logs: Mutex<HashMap<Topic, Arc<RoomLog>>>,
    published: AtomicU64,
    recoveries: AtomicU64,
    recovered: AtomicU64,
    not_recovered: AtomicU64,
    replayed: AtomicU64,
}

impl HistoryLink {
    pub(crate) fn new(config: RoomHistory) -> Self {
        HistoryLink {
            config,
            logs: Mutex::new(HashMap::new()),
            published: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            not_recovered: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        }
    }

    fn log(&self, topic: &Topic) -> Arc<RoomLog> {
        lock(&self.logs).entry(topic.clone()).or_default().clone()
    }

    pub(crate) fn distributed(&self) -> bool {
        self.config.store.distributed()
    }

    pub(crate) fn stamp(&self, position: &Position, message: &Message) -> Message {
        self.config.stamp.apply(position, message)
    }

    pub(crate) async fn read_newest(
        &self,
        topic: &Topic,
        limit: usize,
    ) -> Result<(Position, Vec<Entry>), HistoryError> {
        let retention = self.config.retention_of(topic);
        let slice = newest(&self.config.store, topic, limit, &retention).await?;
        Ok((Position::new(slice.top, slice.epoch), slice.entries))
    }

    pub(crate) fn stats(&self) -> HistoryStats {
        let sizes = self.config.store.sizes();
        HistoryStats {
            rooms: sizes.rooms,
            entries: sizes.entries,
            bytes: sizes.bytes,
            published: self.published.load(Ordering::Relaxed),
            recoveries: self.recoveries.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
            not_recovered: self.not_recovered.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
        }
    }

    /// Publishes on `topic` of `endpoint`: stores, then (non-distributed store) delivers.
    pub(crate) async fn publish(
        self: &Arc<Self>,
        endpoint: &Arc<EndpointRegistry>,
        topic: &Topic,
        message: Message,
    ) -> Result<Published, HistoryError> {
        let retention = self.config.retention_of(topic);
        if self.config.store.distributed() {
            let position = self
                .config
                .store
                .append(topic, &message, &retention)
                .await?;
            self.published.fetch_add(1, Ordering::Relaxed);
            return Ok(Published {
                position,
                delivery: Delivery::default(),
            });
        }
        // Stored and delivered in a task of its own: a caller that stops waiting (its future
        // dropped) cannot leave a stored message undelivered to the members.
        let (link, endpoint, topic) = (self.clone(), endpoint.clone(), topic.clone());
        let task = tokio::spawn(async move {
            let log = link.log(&topic);
            let _order = log.publish.lock().await;
            let position = link
                .config
                .store
                .append(&topic, &message, &retention)
                .await?;
            link.published.fetch_add(1, Ordering::Relaxed);
            let delivery = link.deliver(&endpoint, &topic, &log, &position, &message);
            Ok(Published { position, delivery })
        });
        match task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(HistoryError::new("the server is shutting down")),
        }
    }

    /// Delivers a positioned message to this node's members of `topic` (and holds it for
    /// recovering sessions). A message at or below the last delivered offset of the same
    /// epoch is a duplicate and is skipped.
    pub(crate) fn deliver_positioned(
        &self,
        endpoint: &EndpointRegistry,
        topic: &Topic,
        position: &Position,
        message: &Message,
    ) -> Delivery {
        let log = self.log(topic);
        self.deliver(endpoint, topic, &log, position, message)
    }

    fn deliver(
        &self,
        endpoint: &EndpointRegistry,
        topic: &Topic,
        log: &RoomLog,
        position: &Position,
        message: &Message,
    ) -> Delivery {
        let stamped = self.config.stamp.apply(position, message);
        let mut st = lock(&log.state);
        if st.epoch.as_deref() == Some(&*position.epoch) {
            if position.offset <= st.last {
                return Delivery::default();
            }
        } else {
            st.epoch = Some(position.epoch.clone());
        }
        st.last = position.offset;
        let size = stamped.len();
        for p in &mut st.pending {
            if p.overflowed {
                continue;
            }
            p.bytes += size;
            if p.bytes > p.limit {
                p.overflowed = true;
                p.held = Vec::new();
            } else {
                p.held
                    .push((position.offset, position.epoch.clone(), stamped.clone()));
            }
        }
        // Read under the log's lock: a recovery's join (`complete`, same lock) changes the
        // room's recipients before the next delivery reads them.
        let members = endpoint.rooms.recipients(topic.room()).unwrap_or_default();
        let delivery = fan_out(&members, stamped, None, endpoint).unwrap_or_default();
        // Sessions that waited for this offset go live (after the fan-out: they got it held).
        while let Some(i) = st.pending.iter().position(|p| {
            p.ready
                .as_ref()
                .is_some_and(|r| *r.epoch == *position.epoch && r.upto <= position.offset)
        }) {
            complete(&mut st, i);
        }
        delivery
    }

    /// Steps 1 and 2 of a recovery: registers the session with the room's log, reads the
    /// history. Step 3 is [`Resume::finish`].
    pub(crate) async fn recover(
        self: &Arc<Self>,
        session: &Session,
        topic: &Topic,
        from: Recover,
    ) -> Result<Recovering, HistoryError> {
        let log = self.log(topic);
        let limit = session.outbound().limit();
        {
            let mut st = lock(&log.state);
            st.pending.retain(|p| p.id != session.id());
            st.pending.push(Pending {
                id: session.id(),
                held: Vec::new(),
                bytes: 0,
                limit,
                overflowed: false,
                ready: None,
            });
        }
        // From here on every live message of the room is held for the session.
        let mut guard = PendingGuard {
            log: &log,
            id: session.id(),
            armed: true,
        };
        let retention = self.config.retention_of(topic);
        let store = &self.config.store;
        let max = self.config.max_replay;
        let (slice, lost) = match &from {
            Recover::Last(n) => (newest(store, topic, *n.min(&max), &retention).await?, None),
            Recover::Since(pos) => {
                let slice = store.read(topic, pos.offset, max, &retention).await?;
                if *slice.epoch != *pos.epoch {
                    let slice = newest(store, topic, max, &retention).await?;
                    (slice, Some(Lost::EpochChanged))
                } else if pos.offset > slice.top {
                    let mut slice = slice;
                    slice.entries.clear();
                    (slice, Some(Lost::Ahead))
                } else if slice.top - pos.offset > max as u64 {
                    // More was missed than one replay carries: the newest.
                    (
                        newest(store, topic, max, &retention).await?,
                        Some(Lost::Trimmed),
                    )
                } else if slice.first > pos.offset + 1 {
                    (slice, Some(Lost::Trimmed))
                } else {
                    (slice, None)
                }
            }
        };
        guard.armed = false;
        let recovered = lost.is_none();
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        if recovered {
            self.recovered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.not_recovered.fetch_add(1, Ordering::Relaxed);
        }
        self.replayed
            .fetch_add(slice.entries.len() as u64, Ordering::Relaxed);
        // The replay covers everything up to the top the store answered with.
        let upto = slice.top.max(slice.entries.last().map_or(0, |e| e.offset));
        Ok(Recovering {
            recovery: Recovery {
                recovered,
                lost,
                replayed: slice.entries.len(),
                position: Position::new(slice.top, slice.epoch.clone()),
            },
            entries: slice.entries,
            inner: Some(Resume {
                link: self.clone(),
                log: log.clone(),
                ready: Ready {
                    session: session.clone(),
                    room: topic.room().into(),
                    upto,
                    epoch: slice.epoch,
                },
            }),
        })
    }
}

/// The room's newest `n` messages (and its top).
async fn newest(
    store: &Arc<dyn History>,
    topic: &Topic,
    n: usize,
    retention: &Retention,
) -> Result<Slice, HistoryError> {
    // Two reads (the top, then the newest n) race with publishers: read again until the
    // second covers its own top, so that the replay and the held messages meet.
    for _ in 0..4 {
        let probe = store.read(topic, u64::MAX - 1, 0, retention).await?;
        let slice = store
            .read(topic, probe.top.saturating_sub(n as u64), n, retention)
            .await?;
        let covered = n == 0
            || slice.entries.len() < n
            || slice.entries.last().map(|e| e.offset) == Some(slice.top);
        if covered {
            return Ok(slice);
        }
    }
    let mut slice = store.read(topic, 0, usize::MAX, retention).await?;
    let skip = slice.entries.len().saturating_sub(n);
    slice.entries.drain(..skip);
    Ok(slice)
}

/// Takes a session out of a room's pending list when its recovery fails or is dropped before
/// it has a [`Recovering`].
struct PendingGuard<'a> {
    log: &'a RoomLog,
    id: SessionId,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.log.state).pending.retain(|p| p.id != self.id);
        }
    }
}

/// What [`Room::publish`](crate::Room::publish) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a Published says where the message is and how many sessions were closed as slow consumers"]
pub struct Published {
    /// The message's position in the room.
    pub position: Position,
    /// This node's delivery (with a distributed store, every node delivers when the message
    /// comes back from the store, this one included, and this is empty).
    pub delivery: Delivery,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A new epoch: 16 hex digits from std's randomly keyed hasher, the clock and a counter.
pub(crate) fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// Encodes for [`Room::publish`](crate::Room::publish).
pub(crate) fn encode(message: impl Encode) -> Result<Message, HistoryError> {
    message.encode().map_err(HistoryError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_stamp_inserts_the_position_first() {
        let p = Position::new(3, "e\"1");
        let m = |s: &'static str| Message::text(s);
        assert_eq!(
            Stamp::Json.apply(&p, &m("{}")).as_text(),
            Some(r#"{"offset":3,"epoch":"e\"1"}"#)
        );
        assert_eq!(
            Stamp::Json.apply(&p, &m(" { \"a\":1}")).as_text(),
            Some(r#"{"offset":3,"epoch":"e\"1", "a":1}"#)
        );
        assert_eq!(Stamp::Json.apply(&p, &m("plain")).as_text(), Some("plain"));
        let b = Message::binary(vec![1u8, 2]);
        assert_eq!(Stamp::Json.apply(&p, &b), b);
    }

    #[test]
    fn epochs_differ() {
        assert_ne!(new_epoch(), new_epoch());
        assert_eq!(new_epoch().len(), 16);
    }
}
