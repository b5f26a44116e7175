//! Where the chat's rooms keep their history: the framework's room history
//! (`endpoint::history`), in SQLite on one server, in Redis Streams with `--redis`.

use std::path::Path;

use endpoint::history::{HistoryError, Retention, RoomHistory, SqliteHistory};
use serde::{Deserialize, Serialize};

/// How much each room keeps: enough for a long reconnect, bounded in size.
pub(crate) const RETENTION: Retention = Retention::new().max_count(10_000).max_bytes(16 << 20);

/// One chat message, as it goes out in `message` and `history` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChatMessage {
    /// Its position in the room: increasing by one per message.
    pub(crate) offset: u64,
    /// The room's epoch: changes when the room's history was lost.
    pub(crate) epoch: String,
    pub(crate) room: String,
    pub(crate) from: String,
    pub(crate) text: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) ts: i64,
}

/// A chat message as published (the runtime adds `offset` and `epoch` in front when it
/// delivers it, and keeps it as is in the history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Published {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) room: String,
    pub(crate) from: String,
    pub(crate) text: String,
    pub(crate) ts: i64,
}

/// The rooms' history store.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    history: RoomHistory,
}

impl Store {
    /// SQLite at `path` (created if needed); `:memory:` keeps history only while it runs.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<Store, HistoryError> {
        let store = SqliteHistory::open(path)?;
        Ok(Store {
            history: RoomHistory::new(store).retention(RETENTION),
        })
    }

    /// Another store (Redis Streams with `--redis`).
    #[allow(dead_code)] // used by main.rs only with the redis feature
    pub(crate) fn with(history: RoomHistory) -> Store {
        Store {
            history: history.retention(RETENTION),
        }
    }

    pub(crate) fn history(&self) -> RoomHistory {
        self.history.clone()
    }
}
