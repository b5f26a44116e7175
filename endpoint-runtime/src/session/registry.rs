//! [`EndpointRegistry`]: the open sessions of one endpoint, its room table, and what its
//! sessions reach of the server (shared state, counters, the broker).
//!
//! The one tie that runs back up out of this wing: the registry holds the server's
//! [`BrokerLink`] (the rooms wing's type), and the rooms wing's `Inbox` holds a `Weak` to the
//! registry to deliver what other nodes publish. It is the same pairing as socketioxide's
//! `Adapter::new(Weak<Namespace>)`; nothing else of the rooms wing is named here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

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

/// A set of sessions (an endpoint's, or a room's members) and, made by the first broadcast
/// after a change, the same sessions as one shared slice: the recipients of a broadcast.
///
/// Why a second copy: a broadcast must not hold the set's lock while it writes to thousands of
/// sockets (joins and leaves on other threads would wait for the whole fan-out), so it needs
/// its recipients outside the lock. Copying them out per broadcast is one reference-count
/// increment and decrement per recipient, each a cache miss on a session that the fan-out
/// touches anyway elsewhere (3.6 % of a 10,000-subscriber fan-out's CPU). The slice is made once
/// per change of membership and shared by every broadcast until the next change: a steady
/// room's broadcast clones one `Arc`. It costs a pointer per member while it exists (made only
/// by a broadcast, so a room nobody broadcasts to has none), and is dropped at the next join
/// or leave.
///
/// The slice may hold sessions that closed after it was made (a session leaves its rooms only
/// when its connection task ends): the fan-out checks each recipient, as it must anyway,
/// since a session may close while the fan-out runs.
#[derive(Default)]
pub(crate) struct Members {
    set: HashSet<ById>,
    /// The open members when the first broadcast since the last change came; emptied (under
    /// the table's write lock) by every change.
    recipients: OnceLock<Arc<[Session]>>,
}

impl Members {
    /// The members a broadcast goes to: the shared slice, made now if membership changed
    /// since the last broadcast. Called under the table's read lock: concurrent broadcasts
    /// make it once (the others wait for it), and no change can come in between.
    pub(crate) fn recipients(&self) -> Arc<[Session]> {
        self.recipients
            .get_or_init(|| {
                self.set
                    .iter()
                    .filter(|s| s.0.is_open())
                    .map(|s| s.0.clone())
                    .collect()
            })
            .clone()
    }

    /// Adds `session` (replacing an entry with its id); whether it was not there yet.
    /// Returns the outdated recipients too, for the caller to drop after the lock.
    #[must_use]
    fn insert(&mut self, session: &Session) -> (bool, Option<Arc<[Session]>>) {
        let added = self.set.replace(ById(session.clone())).is_none();
        (added, self.recipients.take())
    }

    /// Removes the session `id`; whether it was there. Returns the outdated recipients too,
    /// for the caller to drop after the lock.
    #[must_use]
    fn remove(&mut self, id: SessionId) -> (bool, Option<Arc<[Session]>>) {
        let removed = self.set.remove(&id);
        let outdated = if removed {
            self.recipients.take()
        } else {
            None
        };
        (removed, outdated)
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn len(&self) -> usize {
        self.set.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Session> {
        self.set.iter().map(|s| &s.0)
    }
}

/// Per-endpoint state shared by its sessions: the registry behind
/// [`Session::open_sessions`], the endpoint's rooms, and the server-wide things a session
/// reaches (its `State<T>` values, the counters, the broker). Created when the server is built.
pub(crate) struct EndpointRegistry {
    path: &'static str,
    sessions: RwLock<Members>,
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
            sessions: RwLock::new(Members::default()),
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
        let (_, outdated) = write(&self.sessions).insert(session);
        // Dropped after the lock: the last handle to a closed session may be in it.
        drop(outdated);
    }

    pub(crate) fn remove(&self, id: SessionId) {
        let (_, outdated) = write(&self.sessions).remove(id);
        drop(outdated);
    }

    /// The sessions registered now.
    pub(crate) fn snapshot(&self) -> Vec<Session> {
        read(&self.sessions).iter().cloned().collect()
    }

    /// The open sessions, for a broadcast to all of them (see [`Members`]).
    pub(crate) fn recipients(&self) -> Arc<[Session]> {
        read(&self.sessions).recipients()
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.sessions).len()
    }

    /// Runs `f` on every registered session's outbound queue, under the read lock (for the
    /// timer's scan of deadlines: no session is cloned).
    pub(crate) fn for_each_outbound(&self, mut f: impl FnMut(&Outbound)) {
        for session in read(&self.sessions).iter() {
            f(&session.inner.out);
        }
    }
}

/// The rooms of one endpoint: room name -> members. Membership and fan-out are the rooms
/// wing's (`rooms/`); this is only the index.
#[derive(Default)]
pub(crate) struct RoomTable {
    rooms: RwLock<HashMap<Arc<str>, Members>>,
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
        let (added, outdated) = write(&self.rooms)
            .entry(room.clone())
            .or_default()
            .insert(session);
        // Dropped after the lock: the last handle to a closed session may be in it.
        drop(outdated);
        added
    }

    pub(crate) fn remove(&self, room: &str, id: SessionId) -> bool {
        let mut rooms = write(&self.rooms);
        let Some(members) = rooms.get_mut(room) else {
            return false;
        };
        let (removed, outdated) = members.remove(id);
        let emptied = members.is_empty().then(|| rooms.remove(room));
        drop(rooms);
        drop((outdated, emptied));
        removed
    }

    pub(crate) fn members(&self, room: &str) -> Vec<Session> {
        read(&self.rooms)
            .get(room)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Members that are still open, copied out (`Room::members`, presence).
    pub(crate) fn open_members(&self, room: &str) -> Vec<Session> {
        read(&self.rooms)
            .get(room)
            .map(|m| m.iter().filter(|s| s.is_open()).cloned().collect())
            .unwrap_or_default()
    }

    /// The members a broadcast to `room` goes to (see [`Members`]): shared with the other
    /// broadcasts until membership changes. Sessions that closed since it was made are in it;
    /// the fan-out skips them.
    pub(crate) fn recipients(&self, room: &str) -> Option<Arc<[Session]>> {
        read(&self.rooms).get(room).map(Members::recipients)
    }

    /// Members that are still open, counted without copying them out.
    pub(crate) fn count_open(&self, room: &str) -> usize {
        read(&self.rooms)
            .get(room)
            .map_or(0, |m| m.iter().filter(|s| s.is_open()).count())
    }

    pub(crate) fn names(&self) -> Vec<String> {
        read(&self.rooms).keys().map(|k| k.to_string()).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::deflate::Sharing;
    use crate::session::{Properties, RequestInfo};

    /// An endpoint's registry with default settings (for unit tests).
    pub(crate) fn registry() -> Arc<EndpointRegistry> {
        Arc::new(EndpointRegistry::new(
            "/test",
            Arc::default(),
            Arc::default(),
            None,
            DeflateConfig::default(),
            Sending::default(),
        ))
    }

    /// A registered session of `registry` without a connection (for unit tests): what is
    /// sent to it stays in its queue.
    pub(crate) fn session(registry: &Arc<EndpointRegistry>) -> Session {
        let request = RequestInfo::new(
            &http::Uri::from_static("/test"),
            &http::HeaderMap::new(),
            &[],
            None,
            None,
            None,
            false,
        );
        let session = Session::new(
            request,
            Properties::default(),
            registry.clone(),
            1024,
            None,
            Sharing::Plain,
        );
        registry.insert(&session);
        session
    }

    fn ids(recipients: &[Session]) -> Vec<SessionId> {
        let mut ids: Vec<_> = recipients.iter().map(Session::id).collect();
        ids.sort();
        ids
    }

    /// A steady room's broadcasts share one slice: no reference count per recipient.
    #[test]
    fn a_steady_rooms_broadcasts_share_their_recipients() {
        let registry = registry();
        let (a, b) = (session(&registry), session(&registry));
        let room: Arc<str> = "lobby".into();
        registry.rooms.add(&room, &a);
        registry.rooms.add(&room, &b);
        let first = registry.rooms.recipients("lobby").unwrap();
        let second = registry.rooms.recipients("lobby").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(ids(&first), {
            let mut v = vec![a.id(), b.id()];
            v.sort();
            v
        });
        let everyone = registry.recipients();
        assert!(Arc::ptr_eq(&everyone, &registry.recipients()));
        assert_eq!(everyone.len(), 2);
    }

    /// Every join and leave is seen by the next broadcast; a broadcast under way keeps the
    /// slice it started with.
    #[test]
    fn joins_and_leaves_are_seen_by_the_next_broadcast() {
        let registry = registry();
        let (a, b) = (session(&registry), session(&registry));
        let room: Arc<str> = "lobby".into();
        registry.rooms.add(&room, &a);
        let before = registry.rooms.recipients("lobby").unwrap();
        registry.rooms.add(&room, &b);
        let joined = registry.rooms.recipients("lobby").unwrap();
        assert_eq!(ids(&before), vec![a.id()]);
        assert_eq!(joined.len(), 2);
        assert!(registry.rooms.remove("lobby", a.id()));
        assert_eq!(
            ids(&registry.rooms.recipients("lobby").unwrap()),
            vec![b.id()]
        );
        // Leaving a room one is not in changes nothing.
        assert!(!registry.rooms.remove("lobby", a.id()));
        assert!(registry.rooms.remove("lobby", b.id()));
        assert!(registry.rooms.recipients("lobby").is_none());

        let c = session(&registry);
        assert_eq!(registry.recipients().len(), 3);
        registry.remove(c.id());
        assert_eq!(registry.recipients().len(), 2);
    }

    /// A session that closed is left out of a slice made after it closed; one made before
    /// keeps it (the fan-out skips it).
    #[test]
    fn closed_sessions_are_left_out_when_the_slice_is_made() {
        let registry = registry();
        let (a, b) = (session(&registry), session(&registry));
        let room: Arc<str> = "lobby".into();
        registry.rooms.add(&room, &a);
        registry.rooms.add(&room, &b);
        let before = registry.rooms.recipients("lobby").unwrap();
        a.mark_ended();
        assert_eq!(before.len(), 2);
        assert!(Arc::ptr_eq(
            &before,
            &registry.rooms.recipients("lobby").unwrap()
        ));
        let c = session(&registry);
        registry.rooms.add(&room, &c);
        let after = registry.rooms.recipients("lobby").unwrap();
        assert_eq!(ids(&after), {
            let mut v = vec![b.id(), c.id()];
            v.sort();
            v
        });
    }
}
