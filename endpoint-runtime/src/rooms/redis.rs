//! [`RedisBroker`]: rooms and presence across server processes through Redis pub/sub
//! (feature `redis`).
//!
//! Several processes ("nodes") behind a load balancer share rooms: a broadcast to a room on one
//! node reaches that room's members on every node. Presence ([`Room::members_everywhere`])
//! lists the members of all nodes.
//!
//! ```no_run
//! use endpoint_runtime::redis::RedisBroker;
//! use endpoint_runtime::Server;
//!
//! # async fn run() -> std::io::Result<()> {
//! let broker = RedisBroker::new("redis://127.0.0.1:6379")?; // lazy: connects when served
//! Server::new()
//!     // .endpoint::<Chat>()
//!     .broker(broker)
//!     .node_id("node-a") // shown in presence; defaults to host and pid
//!     .bind("127.0.0.1:8080")
//!     .await?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! [`RedisBroker::connect`] does the same but checks first that Redis answers, so a wrong URL
//! fails at start-up instead of showing up as an outage.
//!
//! # Guarantees
//!
//! * **Exactly once per node while connected.** A broadcast is delivered to the members on its
//!   own node directly (never through Redis), and once to each other node, which delivers it to
//!   its own members. A node ignores its own messages coming back from Redis.
//! * **Per-publisher order.** Broadcasts made one after the other on a node go out in that order
//!   on one connection, and each node receives them on one connection and delivers them in that
//!   order. Broadcasts from different nodes are not ordered with respect to each other.
//! * **[`publish`](Broker::publish) never blocks and never waits on Redis.** It pushes onto a
//!   bounded queue (65 536 entries by default, [`RedisBroker::queue_capacity`]); when the queue
//!   is full (Redis too slow), the broadcast is not forwarded and is counted in
//!   [`BrokerStats::dropped`]. Local delivery is never affected by Redis.
//!
//! # Redis outages
//!
//! When the connection to Redis is lost (Redis restarted, network down), local delivery goes on
//! untouched. The broker logs a warning, shows `connected: false` and one more `outages` in
//! [`BrokerStats`] ([`ServerHandle::stats`](crate::ServerHandle::stats)), and reconnects with
//! exponential backoff (100 ms doubling up to 5 s, with jitter; [`RedisBroker::backoff`]).
//! Once reconnected it subscribes again and re-announces this node's presence.
//!
//! Redis pub/sub has no history: **broadcasts made while the broker is disconnected are not
//! delivered to other nodes** (each is counted in `dropped`), and those other nodes publish
//! during the outage do not reach this node. Nothing is replayed after reconnecting. Clients
//! that need every message use rooms with history ([`RedisHistory`](crate::history::RedisHistory):
//! positions and Redis Streams through this broker's connection) and recover with their
//! position when they reconnect.
//!
//! # Presence
//!
//! Each node keeps, per room, a Redis hash of its members with a time-to-live (15 s by default,
//! [`RedisBroker::presence_ttl`]), refreshed by a heartbeat every third of it; a per-room set
//! indexes the nodes. [`members`](Broker::members) reads the hashes of every node in the room's
//! index (this node's own members come from memory, so a session sees itself at once after
//! joining). A node that dies without shutting down (`SIGKILL`, power loss) stops refreshing
//! its keys: its members disappear from presence within the TTL. A node that shuts down
//! ([`Broker::stop`], or the broker dropped with its server) removes its keys at once. While Redis is unreachable,
//! [`members`](Broker::members) answers `None`, and rooms fall back to this node's members.
//!
//! A session's presence name is the one set with [`Session::set_name`](crate::Session::set_name)
//! before it joins.
//!
//! # Redis keys and wire format
//!
//! With the default prefix `endpoint` (see [`RedisBroker::prefix`]), for room `R` of the
//! endpoint `E` (its URI template; `:` and `%` in `E` and `R` are percent-encoded):
//!
//! | name | type | content |
//! |---|---|---|
//! | `endpoint:room:E:R` | pub/sub channel | broadcasts to the room (one `PSUBSCRIBE endpoint:room:*` per node) |
//! | `endpoint:nodes:E:R` | set, TTL | ids of the broker instances with members in the room |
//! | `endpoint:members:E:R:ID` | hash, TTL | session id → `LEN:NODE` + name, for instance `ID` |
//!
//! `ID` is a random 64-bit id (16 hex digits) drawn when the broker is made, so a node restarted
//! under the same [`node_id`](crate::Server::node_id) never inherits its predecessor's keys.
//!
//! A broadcast on the channel is a binary header followed by the payload bytes as they are (text
//! is not re-encoded):
//!
//! ```text
//! 0xEB 0x01 kind 0x00 | sender id (u64 BE) | endpoint len (u32 BE) endpoint | room len (u32 BE) room | payload
//! ```
//!
//! where `kind` is 0 text, 1 binary, 2 ping, 3 pong. Messages with another magic or version are
//! ignored (logged at debug level).
//!
//! Version 2 (`0xEB 0x02`, same header) is a message of a room with
//! [`RedisHistory`](crate::history::RedisHistory), published by its Lua script with the
//! payload preceded by `OFFSET EPOCH ` (ASCII): every node delivers it, the publishing node
//! included, through [`Inbox::deliver_positioned`], so that each room has one order on every
//! node.
//!
//! [`Room::members_everywhere`]: crate::Room::members_everywhere

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ::redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use ::redis::{AsyncConnectionConfig, Client, Msg, Pipeline, RedisError, Value};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use super::broker::{Broker, BrokerFuture, BrokerStats, Inbox, Member, Topic};
use crate::message::{Message, Utf8Bytes};
use crate::util::lock;

const MAGIC: u8 = 0xEB;
const VERSION: u8 = 1;
/// A message carried by a room's stream (`RedisHistory`), with its position.
const VERSION_POSITIONED: u8 = 2;
const HEADER: usize = 4 + 8;
/// Escaped in the endpoint and room parts of Redis names.
const NAME_ESCAPES: &AsciiSet = &CONTROLS.add(b':').add(b'%');

/// An error making a [`RedisBroker`]: a malformed URL, or (for [`RedisBroker::connect`]) a
/// Redis that does not answer. Converts into [`io::Error`] for `?` in a `main`.
#[derive(Debug)]
pub struct RedisBrokerError {
    message: String,
    source: RedisError,
}

impl fmt::Display for RedisBrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.source)
    }
}

impl std::error::Error for RedisBrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<RedisBrokerError> for io::Error {
    fn from(e: RedisBrokerError) -> Self {
        let kind = if e.source.is_io_error() || e.source.is_timeout() {
            io::ErrorKind::ConnectionRefused
        } else {
            io::ErrorKind::InvalidInput
        };
        io::Error::new(kind, e)
    }
}

/// A [`Broker`] over Redis pub/sub, with per-node presence keys. See the [module docs](self).
pub struct RedisBroker {
    config: Config,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Command>,
    rx: Mutex<Option<mpsc::Receiver<Command>>>,
}

#[derive(Clone)]
pub(crate) struct Config {
    client: Client,
    url: String,
    prefix: String,
    ttl: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    timeout: Duration,
}

/// State shared by the broker's handle and its background task.
pub(crate) struct Shared {
    /// This broker instance's id, as 16 hex digits (in Redis names) and as sent on the wire.
    pub(crate) id: u64,
    id_hex: String,
    connected: AtomicBool,
    outages: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    stopping: AtomicBool,
    stop: Notify,
    /// Set when a presence change could not be queued: the next heartbeat rewrites presence.
    resync: AtomicBool,
    /// The publisher connection while connected (cloned for presence queries and history).
    pub(crate) conn: Mutex<Option<MultiplexedConnection>>,
    inbox: OnceLock<Inbox>,
    /// This node's members per room, as the background task last applied them, and so the
    /// keys it may have written: a room left empty stays (with no members) until its removal
    /// reached Redis, so that `stop` removes it too when that write is cut short.
    present: Mutex<HashMap<Topic, BTreeMap<u64, Member>>>,
}

enum Command {
    Publish(Topic, Message),
    Joined(Topic, Member),
    Left(Topic, Member),
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("url", &self.config.url)
            .field("prefix", &self.config.prefix)
            .field("id", &self.shared.id_hex)
            .field("presence_ttl", &self.config.ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBroker {
    /// A broker for the Redis at `url` (`redis://[user:password@]host[:port][/db]`). Lazy: it
    /// connects when the server starts, and keeps reconnecting while Redis is unreachable.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn new(url: &str) -> Result<Self, RedisBrokerError> {
        let client = Client::open(url).map_err(|source| RedisBrokerError {
            message: format!("invalid Redis URL `{url}`"),
            source,
        })?;
        let id = random_id();
        let (tx, rx) = mpsc::channel(65_536);
        Ok(RedisBroker {
            config: Config {
                client,
                url: redact(url),
                prefix: "endpoint".to_owned(),
                ttl: Duration::from_secs(15),
                backoff_min: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
            },
            shared: Arc::new(Shared {
                id,
                id_hex: format!("{id:016x}"),
                connected: AtomicBool::new(false),
                outages: AtomicU64::new(0),
                published: AtomicU64::new(0),
                received: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                stop: Notify::new(),
                resync: AtomicBool::new(false),
                conn: Mutex::new(None),
                inbox: OnceLock::new(),
                present: Mutex::new(HashMap::new()),
            }),
            tx,
            rx: Mutex::new(Some(rx)),
        })
    }

    /// Like [`new`](Self::new), then checks that Redis answers a `PING`.
    ///
    /// # Errors
    /// A malformed URL, or a Redis that cannot be reached (or refuses the credentials) within
    /// 2 seconds.
    pub async fn connect(url: &str) -> Result<Self, RedisBrokerError> {
        let broker = Self::new(url)?;
        let config = &broker.config;
        let ping = async {
            let mut conn = config
                .client
                .get_multiplexed_async_connection_with_config(&config.connection_config())
                .await?;
            ::redis::cmd("PING").query_async::<Value>(&mut conn).await
        };
        match tokio::time::timeout(config.timeout, ping).await {
            Ok(Ok(_)) => Ok(broker),
            Ok(Err(source)) => Err(RedisBrokerError {
                message: format!("cannot reach Redis at {}", config.url),
                source,
            }),
            Err(_) => Err(RedisBrokerError {
                message: format!("cannot reach Redis at {}", config.url),
                source: io::Error::from(io::ErrorKind::TimedOut).into(),
            }),
        }
    }

    /// The prefix of every Redis name this broker uses (default `endpoint`): nodes share rooms
    /// only with nodes of the same prefix, so one Redis can serve several applications.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// How long a node's presence outlives its last heartbeat (default 15 s; heartbeats go
    /// every third of it, at least every 100 ms apart). A killed node leaves presence
    /// within this time.
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// The reconnection backoff: the first retry after `min`, doubling up to `max`
    /// (defaults 100 ms and 5 s), each with up to 20 % jitter.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min.max(Duration::from_millis(1));
        self.config.backoff_max = max.max(self.config.backoff_min);
        self
    }

    /// How many broadcasts and presence changes may wait for Redis (default 65 536); beyond
    /// that, broadcasts are dropped (counted in [`BrokerStats::dropped`]).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.tx = tx;
        self.rx = Mutex::new(Some(rx));
        self
    }

    /// What a [`RedisHistory`](crate::history::RedisHistory) shares with this broker: its
    /// connection, its id, its names.
    pub(crate) fn parts(&self) -> (Arc<Shared>, Config) {
        (self.shared.clone(), self.config.clone())
    }

    /// This broker instance's random id (16 hex digits), as used in Redis names.
    pub fn instance_id(&self) -> &str {
        &self.shared.id_hex
    }
}

impl Broker for RedisBroker {
    fn start(&self, inbox: Inbox) {
        let Some(rx) = lock(&self.rx).take() else {
            warn!("RedisBroker started twice; ignoring");
            return;
        };
        let _ = self.shared.inbox.set(inbox.clone());
        let worker = Worker {
            config: self.config.clone(),
            shared: self.shared.clone(),
            rx,
            inbox,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(worker.run());
            }
            Err(_) => warn!("RedisBroker::start outside a tokio runtime: not connecting"),
        }
    }

    fn publish(&self, topic: &Topic, message: &Message) {
        if !self.shared.connected.load(Ordering::Relaxed) {
            // Nothing would carry it: pub/sub has no history.
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self
            .tx
            .try_send(Command::Publish(topic.clone(), message.clone()))
            .is_err()
        {
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                warn!(
                    dropped = n + 1,
                    "Redis broker queue full: broadcast not forwarded"
                );
            }
        }
    }

    fn joined(&self, topic: &Topic, member: &Member) {
        self.queue_presence(Command::Joined(topic.clone(), member.clone()));
    }

    fn left(&self, topic: &Topic, member: &Member) {
        self.queue_presence(Command::Left(topic.clone(), member.clone()));
    }

    fn members<'a>(&'a self, topic: &'a Topic) -> BrokerFuture<'a, Option<Vec<Member>>> {
        Box::pin(async move {
            let mut conn = lock(&self.shared.conn).clone()?;
            let inbox = self.shared.inbox.get()?;
            let query = async {
                let index = self.config.index_key(topic);
                let nodes: Vec<String> = ::redis::cmd("SMEMBERS")
                    .arg(&index)
                    .query_async(&mut conn)
                    .await?;
                let others: Vec<String> = nodes
                    .into_iter()
                    .filter(|n| *n != self.shared.id_hex)
                    .collect();
                let mut pipe = ::redis::pipe();
                for node in &others {
                    pipe.cmd("HGETALL")
                        .arg(self.config.members_key(topic, node));
                }
                let hashes: Vec<Vec<(Vec<u8>, Vec<u8>)>> = if others.is_empty() {
                    Vec::new()
                } else {
                    pipe.query_async(&mut conn).await?
                };
                let mut members = inbox.local_members(topic);
                let mut stale = Vec::new();
                for (node, hash) in others.iter().zip(hashes) {
                    if hash.is_empty() {
                        stale.push(node);
                    }
                    members.extend(hash.iter().filter_map(|(k, v)| parse_member(k, v)));
                }
                if !stale.is_empty() {
                    // Nodes whose keys expired (killed): forget them.
                    let _: Result<(), _> = ::redis::cmd("SREM")
                        .arg(&index)
                        .arg(stale)
                        .query_async(&mut conn)
                        .await;
                }
                Ok::<_, RedisError>(members)
            };
            match tokio::time::timeout(self.config.timeout, query).await {
                Ok(Ok(members)) => Some(members),
                Ok(Err(error)) => {
                    debug!(%error, "Redis presence query failed; answering with local members");
                    None
                }
                Err(_) => {
                    debug!("Redis presence query timed out; answering with local members");
                    None
                }
            }
        })
    }

    fn stats(&self) -> BrokerStats {
        let s = &self.shared;
        BrokerStats {
            connected: s.connected.load(Ordering::Relaxed),
            outages: s.outages.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops the background task and removes this node's presence keys at once, over a short
    /// blocking connection (bounded by 500 ms when Redis does not answer; the keys then expire
    /// within the TTL).
    fn stop(&self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.stop.notify_one();
        let topics: Vec<Topic> = lock(&self.shared.present).keys().cloned().collect();
        debug!(rooms = topics.len(), "Redis broker stopping");
        if topics.is_empty() {
            return;
        }
        let mut pipe = ::redis::pipe();
        for topic in &topics {
            self.config
                .remove_presence(&mut pipe, topic, &self.shared.id_hex);
        }
        let limit = Duration::from_millis(500);
        let removed = self
            .config
            .client
            .get_connection_with_timeout(limit)
            .and_then(|mut conn| {
                conn.set_read_timeout(Some(limit))?;
                conn.set_write_timeout(Some(limit))?;
                pipe.query::<()>(&mut conn)
            });
        match removed {
            Ok(()) => debug!(rooms = topics.len(), "Redis presence removed"),
            Err(error) => warn!(
                %error,
                ttl = ?self.config.ttl,
                "could not remove presence from Redis; it expires within the TTL"
            ),
        }
    }
}

/// Dropping the broker (with its server) stops it like [`Broker::stop`]: this node's presence
/// is removed at once.
impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisBroker {
    fn queue_presence(&self, command: Command) {
        if self.tx.try_send(command).is_err() {
            self.shared.resync.store(true, Ordering::Relaxed);
        }
    }
}

impl Config {
    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    pub(crate) fn topic_part(topic: &Topic) -> String {
        format!(
            "{}:{}",
            utf8_percent_encode(topic.endpoint(), NAME_ESCAPES),
            utf8_percent_encode(topic.room(), NAME_ESCAPES)
        )
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn channel(&self, topic: &Topic) -> String {
        format!("{}:room:{}", self.prefix, Self::topic_part(topic))
    }

    fn pattern(&self) -> String {
        let mut p = String::with_capacity(self.prefix.len() + 8);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push_str(":room:*");
        p
    }

    fn index_key(&self, topic: &Topic) -> String {
        format!("{}:nodes:{}", self.prefix, Self::topic_part(topic))
    }

    /// Appends the commands that withdraw `node` from `topic`'s presence: its members hash, and
    /// its entry in the room's node index.
    fn remove_presence(&self, pipe: &mut Pipeline, topic: &Topic, node: &str) {
        pipe.cmd("DEL")
            .arg(self.members_key(topic, node))
            .ignore()
            .cmd("SREM")
            .arg(self.index_key(topic))
            .arg(node)
            .ignore();
    }

    fn members_key(&self, topic: &Topic, node: &str) -> String {
        format!("{}:members:{}:{node}", self.prefix, Self::topic_part(topic))
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis().try_into().unwrap_or(u64::MAX)
    }

    fn heartbeat(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }
}

/// Why the connected loop ended.
enum End {
    Stopped,
    Lost(String),
}

/// The background task: one publisher connection, one subscriber connection, heartbeats.
struct Worker {
    config: Config,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Command>,
    inbox: Inbox,
}

struct Connection {
    conn: MultiplexedConnection,
    sink: PubSubSink,
    stream: PubSubStream,
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        let mut failures = 0u32;
        let mut lost_at: Option<Instant> = None;
        let mut rng = self.shared.id | 1;
        while !self.stopping() {
            let attempt = tokio::select! {
                c = self.connect() => c,
                () = self.shared.stop.notified() => break,
            };
            match attempt {
                Ok(mut c) => {
                    if let Err(error) = self.announce_all(&mut c.conn).await {
                        self.lost(&mut failures, &error.to_string());
                    } else {
                        backoff = self.config.backoff_min;
                        failures = 0;
                        *lock(&self.shared.conn) = Some(c.conn.clone());
                        self.shared.connected.store(true, Ordering::SeqCst);
                        match lost_at.take() {
                            Some(t) => info!(
                                url = %self.config.url,
                                down = ?t.elapsed(),
                                dropped = self.shared.dropped.load(Ordering::Relaxed),
                                "Redis broker reconnected; subscriptions and presence restored"
                            ),
                            None => {
                                info!(url = %self.config.url, id = %self.shared.id_hex, "Redis broker connected")
                            }
                        }
                        let end = self.serve(c).await;
                        self.shared.connected.store(false, Ordering::SeqCst);
                        *lock(&self.shared.conn) = None;
                        match end {
                            End::Stopped => break,
                            End::Lost(why) => {
                                self.shared.outages.fetch_add(1, Ordering::Relaxed);
                                lost_at = Some(Instant::now());
                                warn!(url = %self.config.url, error = %why, "Redis broker lost its connection; local delivery goes on, reconnecting");
                                // Retry at once: a restarted Redis is often back already.
                                continue;
                            }
                        }
                    }
                }
                Err(error) => self.lost(&mut failures, &error),
            }
            // Back off, still draining the queue so publishers never wait.
            rng = xorshift(rng);
            let jitter = backoff.mul_f64((rng % 1000) as f64 / 5000.0);
            let sleep = tokio::time::sleep(backoff + jitter);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    () = self.shared.stop.notified() => return,
                    cmd = self.rx.recv() => match cmd {
                        Some(cmd) => self.offline(cmd),
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
        debug!("Redis broker stopped");
    }

    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    fn lost(&self, failures: &mut u32, error: &str) {
        *failures += 1;
        if failures.is_power_of_two() {
            warn!(url = %self.config.url, attempts = *failures, %error, "cannot connect to Redis; retrying with backoff");
        } else {
            debug!(url = %self.config.url, attempts = *failures, %error, "cannot connect to Redis");
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let config = &self.config;
        let connect = async {
            let conn = config
                .client
                .get_multiplexed_async_connection_with_config(&config.connection_config())
                .await?;
            let (mut sink, stream) = config.client.get_async_pubsub().await?.split();
            sink.psubscribe(config.pattern()).await?;
            Ok::<_, RedisError>(Connection { conn, sink, stream })
        };
        match tokio::time::timeout(config.timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", config.timeout)),
        }
    }

    /// Handles a command while disconnected: broadcasts are dropped, presence is kept in memory.
    fn offline(&self, cmd: Command) {
        match cmd {
            Command::Publish(..) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Command::Joined(topic, member) => {
                lock(&self.shared.present)
                    .entry(topic)
                    .or_default()
                    .insert(member.session, member);
            }
            Command::Left(topic, member) => {
                let mut present = lock(&self.shared.present);
                if let Some(members) = present.get_mut(&topic) {
                    // An emptied room stays, so that reconnecting removes its keys.
                    members.remove(&member.session);
                }
            }
        }
    }

    /// Rewrites this node's presence from the sessions' rooms (after connecting, or when a
    /// presence change could not be queued): removes keys of rooms it left meanwhile.
    async fn announce_all(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        self.shared.resync.store(false, Ordering::Relaxed);
        let mut now: HashMap<Topic, BTreeMap<u64, Member>> = HashMap::new();
        for (topic, member) in self.inbox.all_members() {
            now.entry(topic).or_default().insert(member.session, member);
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        {
            let before = lock(&self.shared.present);
            for topic in before.keys().filter(|t| !now.contains_key(*t)) {
                self.remove_topic(&mut pipe, topic);
            }
            for topic in before.keys() {
                // Kept (empty) until the removal is written, as in `write`.
                now.entry(topic.clone()).or_default();
            }
        }
        for (topic, members) in now.iter().filter(|(_, m)| !m.is_empty()) {
            self.write_topic(&mut pipe, topic, members.values());
        }
        *lock(&self.shared.present) = now;
        if self.stopping() {
            return Ok(());
        }
        pipe.query_async::<()>(conn).await?;
        lock(&self.shared.present).retain(|_, members| !members.is_empty());
        Ok(())
    }

    fn write_topic<'m>(
        &self,
        pipe: &mut Pipeline,
        topic: &Topic,
        members: impl Iterator<Item = &'m Member>,
    ) {
        let key = self.config.members_key(topic, &self.shared.id_hex);
        pipe.cmd("DEL").arg(&key).ignore();
        let mut any = false;
        for member in members {
            any = true;
            pipe.cmd("HSET")
                .arg(&key)
                .arg(member.session)
                .arg(member_value(member))
                .ignore();
        }
        if any {
            self.refresh(pipe, topic, &key);
        }
    }

    fn refresh(&self, pipe: &mut Pipeline, topic: &Topic, key: &str) {
        let index = self.config.index_key(topic);
        let ttl = self.config.ttl_ms();
        pipe.cmd("PEXPIRE")
            .arg(key)
            .arg(ttl)
            .ignore()
            .cmd("SADD")
            .arg(&index)
            .arg(&self.shared.id_hex)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(ttl)
            .ignore();
    }

    fn remove_topic(&self, pipe: &mut Pipeline, topic: &Topic) {
        self.config
            .remove_presence(pipe, topic, &self.shared.id_hex);
    }

    async fn serve(&mut self, mut c: Connection) -> End {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.reset();
        let mut batch = Vec::with_capacity(256);
        loop {
            if self.stopping() {
                return End::Stopped;
            }
            tokio::select! {
                () = self.shared.stop.notified() => return End::Stopped,
                msg = c.stream.next() => match msg {
                    Some(msg) => self.receive(&msg),
                    None => return End::Lost("subscription connection closed".into()),
                },
                n = self.rx.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        return End::Stopped; // the broker was dropped
                    }
                    if let Err(e) = self.write(&mut c.conn, &mut batch).await {
                        return End::Lost(e.to_string());
                    }
                }
                _ = heartbeat.tick() => {
                    if let Err(e) = self.heartbeat(&mut c).await {
                        return End::Lost(e);
                    }
                }
            }
        }
    }

    fn receive(&self, msg: &Msg) {
        if let Some((topic, position, message)) = decode_positioned(msg.get_payload_bytes()) {
            // Carried by the room's stream (`RedisHistory`): every node delivers it, the
            // publishing one included, in offset order.
            self.shared.received.fetch_add(1, Ordering::Relaxed);
            let delivery = self.inbox.deliver_positioned(&topic, &position, &message);
            if delivery.overflowed > 0 {
                debug!(
                    room = topic.room(),
                    overflowed = delivery.overflowed,
                    "slow consumers closed by a room stream message"
                );
            }
            return;
        }
        let Some((sender, topic, message)) = decode(msg.get_payload_bytes()) else {
            debug!(
                channel = msg.get_channel_name(),
                "ignoring a malformed message on a broker channel"
            );
            return;
        };
        if sender == self.shared.id {
            return; // already delivered locally
        }
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        let delivery = self.inbox.deliver(&topic, message);
        if delivery.overflowed > 0 {
            debug!(
                room = topic.room(),
                overflowed = delivery.overflowed,
                "slow consumers closed by a broadcast from another node"
            );
        }
    }

    /// Sends a batch of queued commands as one pipeline, in order.
    async fn write(
        &self,
        conn: &mut MultiplexedConnection,
        batch: &mut Vec<Command>,
    ) -> Result<(), RedisError> {
        let (pipe, published) = self.pipeline(batch);
        if self.stopping() {
            // stop() removed the presence keys; write nothing that would bring them back.
            self.shared.dropped.fetch_add(published, Ordering::Relaxed);
            return Ok(());
        }
        match pipe.query_async::<()>(conn).await {
            Ok(()) => {
                self.shared
                    .published
                    .fetch_add(published, Ordering::Relaxed);
                lock(&self.shared.present).retain(|_, members| !members.is_empty());
                Ok(())
            }
            Err(e) => {
                self.shared.dropped.fetch_add(published, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The pipeline of a batch (and how many broadcasts it carries); applies presence changes
    /// to [`Shared::present`].
    fn pipeline(&self, batch: &mut Vec<Command>) -> (Pipeline, u64) {
        let mut pipe = ::redis::pipe();
        let mut published = 0u64;
        let mut present = lock(&self.shared.present);
        for cmd in batch.drain(..) {
            match cmd {
                Command::Publish(topic, message) => {
                    let Some(payload) = encode(self.shared.id, &topic, &message) else {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    pipe.cmd("PUBLISH")
                        .arg(self.config.channel(&topic))
                        .arg(&payload[..])
                        .ignore();
                    published += 1;
                }
                Command::Joined(topic, member) => {
                    let key = self.config.members_key(&topic, &self.shared.id_hex);
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg(member.session)
                        .arg(member_value(&member))
                        .ignore();
                    self.refresh(&mut pipe, &topic, &key);
                    present
                        .entry(topic)
                        .or_default()
                        .insert(member.session, member);
                }
                Command::Left(topic, member) => {
                    let members = present.entry(topic.clone()).or_default();
                    members.remove(&member.session);
                    if members.is_empty() {
                        // Forgotten once the removal is written (see `write`).
                        self.remove_topic(&mut pipe, &topic);
                    } else {
                        pipe.cmd("HDEL")
                            .arg(self.config.members_key(&topic, &self.shared.id_hex))
                            .arg(member.session)
                            .ignore();
                    }
                }
            }
        }
        (pipe, published)
    }

    /// Refreshes the TTL of this node's presence (rewriting keys Redis lost) and checks that
    /// the subscriber connection is alive.
    async fn heartbeat(&self, c: &mut Connection) -> Result<(), String> {
        if self.shared.resync.load(Ordering::Relaxed) {
            self.announce_all(&mut c.conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        let topics: Vec<Topic> = lock(&self.shared.present)
            .iter()
            .filter(|(_, members)| !members.is_empty())
            .map(|(topic, _)| topic.clone())
            .collect();
        if !topics.is_empty() {
            let mut pipe = ::redis::pipe();
            for topic in &topics {
                let key = self.config.members_key(topic, &self.shared.id_hex);
                pipe.cmd("PEXPIRE").arg(&key).arg(self.config.ttl_ms());
                pipe.cmd("SADD")
                    .arg(self.config.index_key(topic))
                    .arg(&self.shared.id_hex)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(self.config.index_key(topic))
                    .arg(self.config.ttl_ms())
                    .ignore();
            }
            if self.stopping() {
                return Ok(());
            }
            let alive: Vec<i64> = pipe
                .query_async(&mut c.conn)
                .await
                .map_err(|e| e.to_string())?;
            if alive.contains(&0) {
                // Some keys are gone (Redis restarted or flushed without us noticing).
                info!("Redis lost this node's presence keys; announcing again");
                self.announce_all(&mut c.conn)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        match tokio::time::timeout(self.config.timeout, c.sink.ping::<Value>()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("subscriber ping failed: {e}")),
            Err(_) => Err("subscriber ping timed out".into()),
        }
    }
}

/// The wire form of a broadcast; `None` when a name is too long for the header.
fn encode(sender: u64, topic: &Topic, message: &Message) -> Option<Bytes> {
    let (kind, payload): (u8, &[u8]) = match message {
        Message::Text(t) => (0, t.as_bytes()),
        Message::Binary(b) => (1, b),
        Message::Ping(b) => (2, b),
        Message::Pong(b) => (3, b),
    };
    let endpoint = topic.endpoint().as_bytes();
    let room = topic.room().as_bytes();
    let mut buf = BytesMut::with_capacity(HEADER + 8 + endpoint.len() + room.len() + payload.len());
    buf.put_slice(&[MAGIC, VERSION, kind, 0]);
    buf.put_u64(sender);
    buf.put_u32(u32::try_from(endpoint.len()).ok()?);
    buf.put_slice(endpoint);
    buf.put_u32(u32::try_from(room.len()).ok()?);
    buf.put_slice(room);
    buf.put_slice(payload);
    Some(buf.freeze())
}

/// The header of a positioned message (version 2), written by `RedisHistory`'s script: as a
/// broadcast's header, then the script appends `OFFSET EPOCH ` (ASCII, space-separated) and
/// the payload.
pub(crate) fn positioned_header(sender: u64, topic: &Topic, message: &Message) -> Option<Bytes> {
    let (kind, _) = kind_and_payload(message);
    let endpoint = topic.endpoint().as_bytes();
    let room = topic.room().as_bytes();
    let mut buf = BytesMut::with_capacity(HEADER + 8 + endpoint.len() + room.len());
    buf.put_slice(&[MAGIC, VERSION_POSITIONED, kind, 0]);
    buf.put_u64(sender);
    buf.put_u32(u32::try_from(endpoint.len()).ok()?);
    buf.put_slice(endpoint);
    buf.put_u32(u32::try_from(room.len()).ok()?);
    buf.put_slice(room);
    Some(buf.freeze())
}

fn kind_and_payload(message: &Message) -> (u8, &[u8]) {
    match message {
        Message::Text(t) => (0, t.as_bytes()),
        Message::Binary(b) => (1, b),
        Message::Ping(b) => (2, b),
        Message::Pong(b) => (3, b),
    }
}

/// Parses a positioned message (version 2): topic, position, message.
fn decode_positioned(bytes: &[u8]) -> Option<(Topic, crate::history::Position, Message)> {
    if bytes.len() < 4 || bytes[0] != MAGIC || bytes[1] != VERSION_POSITIONED {
        return None;
    }
    let mut v1 = bytes.to_vec();
    v1[1] = VERSION;
    let (_, topic, message) = decode(&v1)?;
    // The payload starts with `OFFSET EPOCH `.
    let payload = message.as_bytes();
    let sp1 = payload.iter().position(|&b| b == b' ')?;
    let offset: u64 = std::str::from_utf8(&payload[..sp1]).ok()?.parse().ok()?;
    let rest = &payload[sp1 + 1..];
    let sp2 = rest.iter().position(|&b| b == b' ')?;
    let epoch = std::str::from_utf8(&rest[..sp2]).ok()?;
    let body = Bytes::copy_from_slice(&rest[sp2 + 1..]);
    let message = match message {
        Message::Text(_) => Message::Text(Utf8Bytes::try_from(body).ok()?),
        Message::Binary(_) => Message::Binary(body),
        _ => return None,
    };
    Some((topic, crate::history::Position::new(offset, epoch), message))
}

/// Parses the wire form of a broadcast: sender, topic, message.
fn decode(bytes: &[u8]) -> Option<(u64, Topic, Message)> {
    fn take<'b>(bytes: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Some(head)
    }
    fn take_str<'b>(bytes: &mut &'b [u8]) -> Option<&'b str> {
        let len = u32::from_be_bytes(take(bytes, 4)?.try_into().ok()?);
        std::str::from_utf8(take(bytes, usize::try_from(len).ok()?)?).ok()
    }
    let mut rest = bytes;
    let head = take(&mut rest, 4)?;
    if head[0] != MAGIC || head[1] != VERSION {
        return None;
    }
    let kind = head[2];
    let sender = u64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let endpoint = take_str(&mut rest)?;
    let room = take_str(&mut rest)?;
    let topic = Topic::new(endpoint, room);
    let payload = Bytes::copy_from_slice(rest);
    let message = match kind {
        0 => Message::Text(Utf8Bytes::try_from(payload).ok()?),
        1 => Message::Binary(payload),
        2 => Message::Ping(payload),
        3 => Message::Pong(payload),
        _ => return None,
    };
    Some((sender, topic, message))
}

/// The value of a member's field in its node's presence hash: `LEN:NODE` then the name.
fn member_value(member: &Member) -> String {
    format!("{}:{}{}", member.node.len(), member.node, member.name)
}

fn parse_member(field: &[u8], value: &[u8]) -> Option<Member> {
    let session = std::str::from_utf8(field).ok()?.parse().ok()?;
    let value = std::str::from_utf8(value).ok()?;
    let (len, rest) = value.split_once(':')?;
    let len: usize = len.parse().ok()?;
    if !rest.is_char_boundary(len) {
        return None;
    }
    let (node, name) = rest.split_at(len);
    Some(Member {
        node: node.to_owned(),
        session,
        name: name.to_owned(),
    })
}

/// A random id for this broker instance (std's randomly keyed hasher, the clock and the pid).
fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips_text_and_binary() {
        let topic = Topic::new("/room/{room}", "lobby:1");
        for message in [
            Message::text("héllo"),
            Message::binary(vec![0, 1, 2, 255]),
            Message::text(""),
        ] {
            let bytes = encode(42, &topic, &message).unwrap();
            assert_eq!(&bytes[..2], &[MAGIC, VERSION]);
            let (sender, t, m) = decode(&bytes).unwrap();
            assert_eq!((sender, t, m), (42, topic.clone(), message));
        }
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let topic = Topic::new("/e", "r");
        let good = encode(1, &topic, &Message::text("xyz")).unwrap();
        assert!(decode(&good[..good.len() - 2]).is_some()); // shorter payload, still valid
        assert!(decode(&good[..good.len() - 4]).is_none()); // cut into the room name
        assert!(decode(&good[..10]).is_none());
        assert!(decode(b"").is_none());
        let mut bad = good.to_vec();
        bad[1] = 9; // unknown version
        assert!(decode(&bad).is_none());
        let mut bad = good.to_vec();
        *bad.last_mut().unwrap() = 0xff; // invalid UTF-8 in a text message
        assert!(decode(&bad).is_none());
    }

    #[test]
    fn member_values_round_trip_names_with_colons() {
        let member = Member {
            node: "host:1".into(),
            session: 7,
            name: "a:b".into(),
        };
        let back = parse_member(b"7", member_value(&member).as_bytes()).unwrap();
        assert_eq!(back, member);
        assert!(parse_member(b"x", b"1:ab").is_none());
        assert!(parse_member(b"1", b"9:ab").is_none());
    }

    #[test]
    fn names_are_escaped_and_patterns_quoted() {
        let broker = RedisBroker::new("redis://127.0.0.1:1/")
            .unwrap()
            .prefix("a*");
        let topic = Topic::new("/x:y", "r%1");
        assert_eq!(broker.config.channel(&topic), "a*:room:/x%3Ay:r%251");
        assert_eq!(broker.config.pattern(), "a\\*:room:*");
        assert!(broker
            .config
            .members_key(&topic, broker.instance_id())
            .starts_with("a*:members:/x%3Ay:r%251:"));
    }

    #[test]
    fn urls_are_checked_and_passwords_redacted() {
        assert!(RedisBroker::new("not a url").is_err());
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://host"), "redis://host");
    }
}
