//! [`RedisHistory`]: room history in Redis Streams, through the [`RedisBroker`]'s connection
//! (feature `redis`).

use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Cmd, Value};
use bytes::Bytes;

use super::{
    new_epoch, now_ms, Entry, History, HistoryError, HistoryFuture, Position, Retention, Slice,
};
use crate::broker::Topic;
use crate::message::{Message, Utf8Bytes};
use crate::rooms::redis::{positioned_header, Config, RedisBroker, Shared};
use crate::util::lock;

/// Appends to the room's stream and announces it on the room's channel, atomically: offsets
/// come from Redis (`HINCRBY`), so every node assigns and sees the same ones, and every node
/// receives the messages in offset order on its one subscription.
///
/// KEYS: stream, meta. ARGV: new epoch, MAXLEN (0: not stored), payload, kind, time (ms),
/// channel, header.
const APPEND: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
end
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], top .. '-1', 'd', ARGV[3], 'k', ARGV[4], 't', ARGV[5])
else
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. top .. ' ' .. epoch .. ' ' .. ARGV[3])
return {top, epoch}
";

/// The room's epoch, top, first entry and the entries after an offset, atomically.
///
/// KEYS: stream, meta. ARGV: new epoch, start id, count.
const READ: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
end
local top = redis.call('HGET', KEYS[2], 'top')
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local entries = {}
if tonumber(ARGV[3]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])
end
return {epoch, top, first, entries}
";

/// Room history in Redis Streams, for a cluster: every node assigns and sees the same offsets
/// and the same history, so a session recovers on whichever node it reaches. It uses the
/// [`RedisBroker`]'s connection and subscription: give the server that broker too.
///
/// ```no_run
/// use endpoint_runtime::history::{RedisHistory, RoomHistory};
/// use endpoint_runtime::redis::RedisBroker;
///
/// # fn demo() -> Result<(), endpoint_runtime::redis::RedisBrokerError> {
/// let broker = RedisBroker::new("redis://127.0.0.1:6379")?;
/// let history = RoomHistory::new(RedisHistory::new(&broker));
/// let server = endpoint_runtime::Server::new().broker(broker).history(history);
/// # drop(server); Ok(()) }
/// ```
///
/// # How
///
/// A publish runs one Lua script: `HINCRBY` of the room's counter (the offset), `XADD` with
/// `MAXLEN` (the count bound) under the id `OFFSET-1`, and `PUBLISH` on the room's broker
/// channel with the position. Every node, the publishing one included, delivers what its
/// subscription brings, in offset order; a recovery reads with `XRANGE` from the offset.
///
/// | name | type | content |
/// |---|---|---|
/// | `PREFIX:stream:E:R` | stream | the room's messages: fields `d` payload, `k` kind (0 text, 1 binary), `t` time (ms) |
/// | `PREFIX:offsets:E:R` | hash | `epoch`, `top` (the last offset) |
///
/// The epoch is drawn when the hash is created: a Redis that lost its data (restarted without
/// persistence, flushed) gives the room a new epoch, and sessions are told their position is
/// not recoverable.
///
/// # Bounds
///
/// The count bound is exact (`MAXLEN`). The age bound is applied when reading (older entries
/// are not replayed; they leave the stream as the count bound pushes them out). The byte bound
/// is applied to each message (one bigger than it is not stored); Redis cannot trim a stream
/// by bytes.
///
/// # When Redis is unreachable
///
/// `publish` fails with a [`HistoryError`] (nothing is delivered: a message without a
/// position would be lost to recovery), and so do recoveries. Messages published by other
/// nodes while this node's subscription is down do not reach its live members; its sessions
/// get them when they reconnect with their position.
#[derive(Clone)]
pub struct RedisHistory {
    shared: Arc<Shared>,
    config: Config,
    append: Arc<Script>,
    read: Arc<Script>,
}

/// A Lua script run with `EVALSHA`, loaded with `EVAL` when Redis does not know it yet
/// (written here rather than with the `redis` crate's `script` feature, which would add a
/// second SHA-1 implementation beside the one the handshake uses).
struct Script {
    source: &'static str,
    sha: String,
}

impl Script {
    fn new(source: &'static str) -> Self {
        use sha1::Digest as _;
        let digest = sha1::Sha1::digest(source.as_bytes());
        let sha = digest.iter().map(|b| format!("{b:02x}")).collect();
        Script { source, sha }
    }

    async fn run<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
    ) -> Result<T, ::redis::RedisError> {
        let command = |name: &str, script: &str| {
            let mut c = ::redis::cmd(name);
            c.arg(script).arg(keys.len()).arg(keys);
            args(&mut c);
            c
        };
        match command("EVALSHA", &self.sha).query_async(conn).await {
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                command("EVAL", self.source).query_async(conn).await
            }
            other => other,
        }
    }
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory")
            .field("prefix", &self.config.prefix())
            .finish()
    }
}

impl RedisHistory {
    /// History through `broker`'s connection (give the server that broker too).
    pub fn new(broker: &RedisBroker) -> Self {
        let (shared, config) = broker.parts();
        RedisHistory {
            shared,
            config,
            append: Arc::new(Script::new(APPEND)),
            read: Arc::new(Script::new(READ)),
        }
    }

    fn keys(&self, topic: &Topic) -> (String, String) {
        let part = Config::topic_part(topic);
        let prefix = self.config.prefix();
        (
            format!("{prefix}:stream:{part}"),
            format!("{prefix}:offsets:{part}"),
        )
    }

    fn conn(&self) -> Result<MultiplexedConnection, HistoryError> {
        lock(&self.shared.conn)
            .clone()
            .ok_or_else(|| HistoryError::new("Redis is not connected (the broker reconnects)"))
    }
}

fn redis_err(e: ::redis::RedisError) -> HistoryError {
    HistoryError::new(format!("Redis: {e}"))
}

impl History for RedisHistory {
    fn append<'a>(
        &'a self,
        topic: &'a Topic,
        message: &'a Message,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Position, HistoryError>> {
        Box::pin(async move {
            let mut conn = self.conn()?;
            let header = positioned_header(self.shared.id, topic, message)
                .ok_or_else(|| HistoryError::new("room or endpoint name too long"))?;
            let keep = if message.len() <= retention.bytes() {
                retention.count()
            } else {
                0
            };
            let kind = u8::from(matches!(message, Message::Binary(_)));
            let (stream, meta) = self.keys(topic);
            let channel = self.config.channel(topic);
            let (top, epoch): (u64, String) = self
                .append
                .run(&mut conn, &[&stream, &meta], |c| {
                    c.arg(new_epoch())
                        .arg(keep)
                        .arg(message.as_bytes())
                        .arg(kind)
                        .arg(now_ms())
                        .arg(&channel)
                        .arg(&header[..]);
                })
                .await
                .map_err(redis_err)?;
            Ok(Position::new(top, epoch))
        })
    }

    fn read<'a>(
        &'a self,
        topic: &'a Topic,
        after: u64,
        limit: usize,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Slice, HistoryError>> {
        Box::pin(async move {
            let mut conn = self.conn()?;
            let (stream, meta) = self.keys(topic);
            let start = format!("{}-0", after.saturating_add(1).min(u64::MAX - 1));
            let count = limit.min(i64::MAX as usize);
            let value: Value = self
                .read
                .run(&mut conn, &[&stream, &meta], |c| {
                    c.arg(new_epoch()).arg(&start).arg(count);
                })
                .await
                .map_err(redis_err)?;
            parse_read(value, retention)
        })
    }

    fn distributed(&self) -> bool {
        true
    }
}

fn bad(what: &str) -> HistoryError {
    HistoryError::new(format!("Redis: unexpected answer ({what})"))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

/// One `XRANGE` item: `[id, [field, value, ...]]`.
fn entry(v: &Value) -> Option<Entry> {
    let Value::Array(item) = v else { return None };
    let id = text(item.first()?)?;
    let offset: u64 = id.split('-').next()?.parse().ok()?;
    let Value::Array(fields) = item.get(1)? else {
        return None;
    };
    let (mut data, mut kind, mut time) = (None, 0u8, 0u64);
    for pair in fields.chunks(2) {
        let [k, v] = pair else { continue };
        match bytes(k)? {
            b"d" => data = Some(bytes(v)?.to_vec()),
            b"k" => kind = text(v)?.parse().ok()?,
            b"t" => time = text(v)?.parse().ok()?,
            _ => {}
        }
    }
    let data = Bytes::from(data?);
    let message = if kind == 1 {
        Message::Binary(data)
    } else {
        Message::Text(Utf8Bytes::try_from(data).ok()?)
    };
    Some(Entry {
        offset,
        message,
        time_ms: time,
    })
}

fn parse_read(value: Value, retention: &Retention) -> Result<Slice, HistoryError> {
    let Value::Array(parts) = value else {
        return Err(bad("not an array"));
    };
    let [epoch, top, first, entries] = &parts[..] else {
        return Err(bad("not four parts"));
    };
    let epoch = text(epoch).ok_or_else(|| bad("epoch"))?;
    let top: u64 = text(top)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("top"))?;
    let first = match first {
        Value::Array(items) => items.first().and_then(entry).map(|e| e.offset),
        _ => None,
    };
    let oldest = retention.oldest_ms(now_ms());
    let mut list = Vec::new();
    let mut aged_out = None;
    if let Value::Array(items) = entries {
        for item in items {
            let e = entry(item).ok_or_else(|| bad("stream entry"))?;
            if oldest.is_some_and(|o| e.time_ms < o) {
                aged_out = Some(e.offset);
                continue;
            }
            list.push(e);
        }
    }
    let mut first = first.unwrap_or(top + 1);
    if let Some(aged) = aged_out {
        // Entries up to `aged` count as gone.
        first = first.max(aged + 1);
    }
    Ok(Slice {
        epoch: epoch.into(),
        top,
        first,
        entries: list,
    })
}
