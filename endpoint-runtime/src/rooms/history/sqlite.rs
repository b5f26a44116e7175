//! [`SqliteHistory`]: room history in a SQLite file (feature `sqlite`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    new_epoch, now_ms, Entry, History, HistoryError, HistoryFuture, Position, Retention, Sizes,
    Slice,
};
use crate::broker::Topic;
use crate::message::{Message, Utf8Bytes};

/// Room history in SQLite, for one node whose rooms must survive a restart: offsets and
/// epochs are stored with the messages, so a client that reconnects after the restart
/// recovers what it missed.
///
/// Two tables (created if missing), beside whatever else the file holds:
///
/// | table | columns |
/// |---|---|
/// | `endpoint_rooms` | `endpoint`, `room`, `epoch`, `top` (last offset), `bytes` (payload held) |
/// | `endpoint_history` | `endpoint`, `room`, `offset`, `ts` (ms since the Unix epoch), `kind` (0 text, 1 binary), `payload` |
///
/// Each append is one transaction (WAL, `synchronous = NORMAL`: committed when `publish`
/// returns; only a power cut or OS crash may lose the last ones), run on tokio's blocking pool
/// so a slow disk never stalls the connections' tasks. Trimming to the [`Retention`] happens
/// in the same transaction.
///
/// ```no_run
/// use endpoint_runtime::history::{RoomHistory, SqliteHistory};
///
/// # fn demo() -> Result<(), endpoint_runtime::history::HistoryError> {
/// let server = endpoint_runtime::Server::new()
///     .history(RoomHistory::new(SqliteHistory::open("chat.db")?));
/// # drop(server); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteHistory {
    conn: Arc<Mutex<Connection>>,
}

fn err(e: rusqlite::Error) -> HistoryError {
    HistoryError::new(format!("SQLite: {e}"))
}

impl SqliteHistory {
    /// Opens (creating if needed) the database at `path`; `:memory:` keeps it in memory.
    ///
    /// # Errors
    /// The file cannot be opened or is not a SQLite database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        Self::from_connection(Connection::open(path).map_err(err)?)
    }

    /// Uses an open connection (the application's own database, say).
    ///
    /// # Errors
    /// The tables cannot be created.
    pub fn from_connection(conn: Connection) -> Result<Self, HistoryError> {
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS endpoint_rooms (
                 endpoint TEXT NOT NULL,
                 room     TEXT NOT NULL,
                 epoch    TEXT NOT NULL,
                 top      INTEGER NOT NULL,
                 bytes    INTEGER NOT NULL,
                 PRIMARY KEY (endpoint, room)
             );
             CREATE TABLE IF NOT EXISTS endpoint_history (
                 endpoint TEXT NOT NULL,
                 room     TEXT NOT NULL,
                 offset   INTEGER NOT NULL,
                 ts       INTEGER NOT NULL,
                 kind     INTEGER NOT NULL,
                 payload  BLOB NOT NULL,
                 PRIMARY KEY (endpoint, room, offset)
             ) WITHOUT ROWID;",
        )
        .map_err(err)?;
        Ok(SqliteHistory {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> HistoryFuture<'static, Result<T, HistoryError>> {
        let conn = self.conn.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                // A panic while locked leaves the database consistent (transactions).
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                f(&mut conn)
            });
            match task.await {
                Ok(r) => r.map_err(err),
                Err(e) => Err(HistoryError::new(format!("SQLite task failed: {e}"))),
            }
        })
    }
}

/// The room's epoch and top, creating the room with a new epoch when it has none.
fn room(tx: &rusqlite::Transaction<'_>, topic: &Topic) -> rusqlite::Result<(String, u64, i64)> {
    let found = tx
        .query_row(
            "SELECT epoch, top, bytes FROM endpoint_rooms WHERE endpoint = ?1 AND room = ?2",
            params![topic.endpoint(), topic.room()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    match found {
        Some((epoch, top, bytes)) => Ok((epoch, u64::try_from(top).unwrap_or(0), bytes)),
        None => {
            let epoch = new_epoch();
            tx.execute(
                "INSERT INTO endpoint_rooms (endpoint, room, epoch, top, bytes) VALUES (?1, ?2, ?3, 0, 0)",
                params![topic.endpoint(), topic.room(), epoch],
            )?;
            Ok((epoch, 0, 0))
        }
    }
}

/// Deletes the room's entries with `offset <= upto` or older than `oldest`; returns the bytes
/// freed.
fn delete(
    tx: &rusqlite::Transaction<'_>,
    topic: &Topic,
    upto: i64,
    oldest: i64,
) -> rusqlite::Result<i64> {
    let mut stmt = tx.prepare_cached(
        "DELETE FROM endpoint_history WHERE endpoint = ?1 AND room = ?2 AND (offset <= ?3 OR ts < ?4)
         RETURNING length(payload)",
    )?;
    let freed = stmt
        .query_map(params![topic.endpoint(), topic.room(), upto, oldest], |r| {
            r.get::<_, i64>(0)
        })?
        .sum::<rusqlite::Result<i64>>()?;
    Ok(freed)
}

fn trim(
    tx: &rusqlite::Transaction<'_>,
    topic: &Topic,
    top: u64,
    mut bytes: i64,
    retention: &Retention,
    now: u64,
) -> rusqlite::Result<i64> {
    let by_count = i64::try_from(top.saturating_sub(retention.count() as u64)).unwrap_or(0);
    let oldest = retention
        .oldest_ms(now)
        .map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
    bytes -= delete(tx, topic, by_count, oldest)?;
    let max = i64::try_from(retention.bytes()).unwrap_or(i64::MAX);
    if bytes > max {
        // The newest entries that fit: walk back from the top until the bound.
        let mut stmt = tx.prepare_cached(
            "SELECT offset, length(payload) FROM endpoint_history
             WHERE endpoint = ?1 AND room = ?2 ORDER BY offset DESC",
        )?;
        let mut rows = stmt.query(params![topic.endpoint(), topic.room()])?;
        let (mut kept, mut cut) = (0i64, 0i64);
        while let Some(row) = rows.next()? {
            let (offset, len): (i64, i64) = (row.get(0)?, row.get(1)?);
            if kept + len > max {
                cut = offset;
                break;
            }
            kept += len;
        }
        drop(rows);
        bytes -= delete(tx, topic, cut, 0)?;
    }
    Ok(bytes)
}

impl History for SqliteHistory {
    fn append<'a>(
        &'a self,
        topic: &'a Topic,
        message: &'a Message,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Position, HistoryError>> {
        let (topic, message, retention) = (topic.clone(), message.clone(), *retention);
        self.blocking(move |conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (epoch, top, mut bytes) = room(&tx, &topic)?;
            let top = top + 1;
            let offset = i64::try_from(top).unwrap_or(i64::MAX);
            let kind = i64::from(matches!(message, Message::Binary(_)));
            if retention.count() > 0 && message.len() <= retention.bytes() {
                tx.prepare_cached(
                    "INSERT INTO endpoint_history (endpoint, room, offset, ts, kind, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    topic.endpoint(),
                    topic.room(),
                    offset,
                    i64::try_from(now).unwrap_or(i64::MAX),
                    kind,
                    message.as_bytes()
                ])?;
                bytes += message.len() as i64;
            }
            let bytes = trim(&tx, &topic, top, bytes, &retention, now)?;
            tx.prepare_cached(
                "UPDATE endpoint_rooms SET top = ?3, bytes = ?4 WHERE endpoint = ?1 AND room = ?2",
            )?
            .execute(params![topic.endpoint(), topic.room(), offset, bytes])?;
            tx.commit()?;
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
        let (topic, retention) = (topic.clone(), *retention);
        self.blocking(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (epoch, top, _) = room(&tx, &topic)?;
            let oldest = retention
                .oldest_ms(now_ms())
                .map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
            let by_count = i64::try_from(top.saturating_sub(retention.count() as u64)).unwrap_or(0);
            let first: Option<i64> = tx.query_row(
                "SELECT MIN(offset) FROM endpoint_history
                 WHERE endpoint = ?1 AND room = ?2 AND ts >= ?3 AND offset > ?4",
                params![topic.endpoint(), topic.room(), oldest, by_count],
                |r| r.get(0),
            )?;
            let mut entries = Vec::new();
            if limit > 0 {
                let mut stmt = tx.prepare_cached(
                    "SELECT offset, ts, kind, payload FROM endpoint_history
                     WHERE endpoint = ?1 AND room = ?2 AND offset > ?3 AND ts >= ?4 AND offset > ?5
                     ORDER BY offset LIMIT ?6",
                )?;
                let after = i64::try_from(after).unwrap_or(i64::MAX);
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = stmt.query_map(
                    params![
                        topic.endpoint(),
                        topic.room(),
                        after,
                        oldest,
                        by_count,
                        limit
                    ],
                    |r| {
                        let offset: i64 = r.get(0)?;
                        let ts: i64 = r.get(1)?;
                        let kind: i64 = r.get(2)?;
                        let payload: Vec<u8> = r.get(3)?;
                        Ok((offset, ts, kind, payload))
                    },
                )?;
                for row in rows {
                    let (offset, ts, kind, payload) = row?;
                    let message = if kind == 1 {
                        Message::binary(payload)
                    } else {
                        match Utf8Bytes::try_from(bytes::Bytes::from(payload)) {
                            Ok(text) => Message::Text(text),
                            Err(_) => continue, // not written by us: skipped
                        }
                    };
                    entries.push(Entry {
                        offset: u64::try_from(offset).unwrap_or(0),
                        message,
                        time_ms: u64::try_from(ts).unwrap_or(0),
                    });
                }
            }
            tx.commit()?; // a new room's epoch is kept: the next append uses it
            Ok(Slice {
                epoch: epoch.into(),
                top,
                first: first.map_or(top + 1, |f| u64::try_from(f).unwrap_or(0)),
                entries,
            })
        })
    }

    fn sizes(&self) -> Sizes {
        // Without waiting: skipped while the database is busy.
        let Ok(conn) = self.conn.try_lock() else {
            return Sizes::default();
        };
        conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT endpoint || char(0) || room), COALESCE(SUM(length(payload)), 0)
             FROM endpoint_history",
            [],
            |r| {
                Ok(Sizes {
                    entries: r.get::<_, i64>(0)? as u64,
                    rooms: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                })
            },
        )
        .unwrap_or_default()
    }
}
