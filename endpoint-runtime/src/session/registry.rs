//! [`EndpointRegistry`]: the open sessions of one endpoint, its room table, and what its
//! sessions reach of the server (shared state, counters, the broker).
//!
//! The one tie that runs back up out of this wing: the registry holds the server's
//! [`BrokerLink`] (the rooms wing's type), and the rooms wing's `Inbox` holds a `Weak` to the
//! registry to deliver what other nodes publish. It is the same pairing as socketioxide's
//! `Adapter::new(Weak<Namespace>)`; nothing else of the rooms wing is named here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::outbound::Outbound;
use super::{Session, SessionId};
use crate::protocol::deflate::DeflateConfig;
use crate::rooms::broker::BrokerLink;
use crate::state::StateMap;
use crate::stats::Counters;
use crate::util::{read, write};

/// A session in a set keyed by its id: one pointer per entry, where a map from id to session
/// stores the id twice (once in the entry, once in the session).
#[derive(Clone)]
pub(crate) struct ById(pub(crate) Session);

impl std::borrow::Borrow<SessionId> for ById {
    fn borrow(&self) -> &SessionId {
        &self.0.inner.id
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.inner.id == other.0.inner.id
    }
}

impl Eq for ById {}

impl std::hash::Hash for ById {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.inner.id.hash(state);
    }
}

/// Per-endpoint state shared by its sessions: the registry behind
/// [`Session::open_sessions`], the endpoint's rooms, and the server-wide things a session
/// reaches (its `State<T>` values, the counters, the broker). Created when the server is built.
pub(crate) struct EndpointRegistry {
    path: &'static str,
    sessions: RwLock<HashSet<ById>>,
    pub(crate) rooms: RoomTable,
    state: Arc<StateMap>,
    counters: Arc<Counters>,
    /// The server's broker, when it has one.
    broker: Option<Arc<BrokerLink>>,
    /// This endpoint's permessage-deflate settings (its `min_size` applies to broadcasts too).
    compression: DeflateConfig,
    /// Sends and broadcasts of this endpoint: the send timeout sessions start with, and what a
    /// broadcast does to a full queue (rooms may set their own).
    pub(crate) sending: Sending,
}

/// How an endpoint's sessions send: set when the server is built.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sending {
    /// `Limits::send_timeout`, unless a session sets its own.
    pub(crate) send_timeout: Option<std::time::Duration>,
    /// The endpoint's `slow_consumer` policy.
    pub(crate) slow_consumer: crate::config::SlowConsumer,
}

impl EndpointRegistry {
    pub(crate) fn new(
        path: &'static str,
        state: Arc<StateMap>,
        counters: Arc<Counters>,
        broker: Option<Arc<BrokerLink>>,
        compression: DeflateConfig,
        sending: Sending,
    ) -> Self {
        EndpointRegistry {
            path,
            sessions: RwLock::new(HashSet::new()),
            rooms: RoomTable::default(),
            state,
            counters,
            broker,
            compression,
            sending,
        }
    }

    /// Messages smaller than this go uncompressed.
    pub(crate) fn compression_min_size(&self) -> usize {
        self.compression.min_size
    }

    /// The endpoint's URI template, as written.
    pub(crate) fn path(&self) -> &'static str {
        self.path
    }

    /// The server's shared state.
    pub(crate) fn state(&self) -> &StateMap {
        &self.state
    }

    /// The server's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The server's broker, when it has one.
    pub(crate) fn broker(&self) -> Option<&BrokerLink> {
        self.broker.as_deref()
    }

    pub(crate) fn insert(&self, session: &Session) {
        write(&self.sessions).replace(ById(session.clone()));
    }

    pub(crate) fn remove(&self, id: SessionId) {
        write(&self.sessions).remove(&id);
    }

    /// The sessions registered now.
    pub(crate) fn snapshot(&self) -> Vec<Session> {
        read(&self.sessions).iter().map(|s| s.0.clone()).collect()
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.sessions).len()
    }

    /// Runs `f` on every registered session's outbound queue, under the read lock (for the
    /// timer's scan of deadlines: no session is cloned).
    pub(crate) fn for_each_outbound(&self, mut f: impl FnMut(&Outbound)) {
        for session in read(&self.sessions).iter() {
            f(&session.0.inner.out);
        }
    }
}

/// The rooms of one endpoint: room name -> members. Membership and fan-out are the rooms
/// wing's (`rooms/`); this is only the index.
#[derive(Default)]
pub(crate) struct RoomTable {
    rooms: RwLock<HashMap<Arc<str>, HashSet<ById>>>,
    /// Rooms' own slow-consumer policies (`Room::set_slow_consumer`), kept while the room is
    /// empty too; `any_policy` spares broadcasts the lookup until a room sets one.
    policies: RwLock<HashMap<Arc<str>, crate::config::SlowConsumer>>,
    any_policy: std::sync::atomic::AtomicBool,
}

impl RoomTable {
    /// Sets `room`'s slow-consumer policy.
    pub(crate) fn set_policy(&self, room: &Arc<str>, policy: crate::config::SlowConsumer) {
        write(&self.policies).insert(room.clone(), policy);
        self.any_policy
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// `room`'s own slow-consumer policy, if it set one.
    pub(crate) fn policy(&self, room: &str) -> Option<crate::config::SlowConsumer> {
        if !self.any_policy.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        read(&self.policies).get(room).copied()
    }

    pub(crate) fn add(&self, room: &Arc<str>, session: &Session) -> bool {
        write(&self.rooms)
            .entry(room.clone())
            .or_default()
            .replace(ById(session.clone()))
            .is_none()
    }

    pub(crate) fn remove(&self, room: &str, id: SessionId) -> bool {
        let mut rooms = write(&self.rooms);
        let Some(members) = rooms.get_mut(room) else {
            return false;
        };
        let removed = members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
        removed
    }

    pub(crate) fn members(&self, room: &str) -> Vec<Session> {
        read(&self.rooms)
            .get(room)
            .map(|m| m.iter().map(|s| s.0.clone()).collect())
            .unwrap_or_default()
    }

    /// Members that are still open, copied out in one pass (a broadcast to 10,000 touches each
    /// session as few times as it can).
    pub(crate) fn open_members(&self, room: &str) -> Vec<Session> {
        read(&self.rooms)
            .get(room)
            .map(|m| {
                m.iter()
                    .filter(|s| s.0.is_open())
                    .map(|s| s.0.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Members that are still open, counted without copying them out.
    pub(crate) fn count_open(&self, room: &str) -> usize {
        read(&self.rooms)
            .get(room)
            .map_or(0, |m| m.iter().filter(|s| s.0.is_open()).count())
    }

    pub(crate) fn names(&self) -> Vec<String> {
        read(&self.rooms).keys().map(|k| k.to_string()).collect()
    }
}
