//! Chat history in SQLite: one table, one row per message, the row id is the message id.

use std::path::Path;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// One stored chat message, as it goes out in `message` and `history` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChatMessage {
    /// The SQLite row id: increasing, unique per database.
    pub(crate) id: i64,
    pub(crate) room: String,
    pub(crate) from: String,
    pub(crate) text: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) ts: i64,
}

/// The message store. Not `Sync` by itself (a SQLite connection is used from one thread at a
/// time); the chat keeps it behind a mutex, see `app.rs`.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`; `:memory:` keeps history in memory.
    pub(crate) fn open(path: impl AsRef<Path>) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        // WAL: readers do not block the writer, and a commit survives a crash of the process
        // (`synchronous = NORMAL` may lose the last commits only on a power cut or OS crash).
        // `:memory:` answers "memory" to the journal_mode pragma, which is fine.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS messages (
                 id     INTEGER PRIMARY KEY AUTOINCREMENT,
                 room   TEXT    NOT NULL,
                 sender TEXT    NOT NULL,
                 text   TEXT    NOT NULL,
                 ts     INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);",
        )?;
        Ok(Store { conn })
    }

    /// Stores a message (committed when this returns) and returns it with its id.
    pub(crate) fn insert(
        &self,
        room: &str,
        from: &str,
        text: &str,
        ts: i64,
    ) -> rusqlite::Result<ChatMessage> {
        self.conn.execute(
            "INSERT INTO messages (room, sender, text, ts) VALUES (?1, ?2, ?3, ?4)",
            params![room, from, text, ts],
        )?;
        Ok(ChatMessage {
            id: self.conn.last_insert_rowid(),
            room: room.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts,
        })
    }

    /// The last `limit` messages of `room`, oldest first.
    pub(crate) fn recent(&self, room: &str, limit: usize) -> rusqlite::Result<Vec<ChatMessage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, room, sender, text, ts FROM messages
             WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut messages = stmt
            .query_map(params![room, limit], |r| {
                Ok(ChatMessage {
                    id: r.get(0)?,
                    room: r.get(1)?,
                    from: r.get(2)?,
                    text: r.get(3)?,
                    ts: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }
}
