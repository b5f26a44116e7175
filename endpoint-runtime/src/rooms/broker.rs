//! [`Broker`]: carries room broadcasts and presence between server processes.
//!
//! A room broadcast is always delivered to the room's members on this node first, directly; the
//! broker then forwards it to the other nodes, which deliver it to *their* members. A node never
//! receives its own broadcasts back through the broker, so nobody gets a message twice.
//!
//! * Default: no broker — rooms span one process.
//! * Feature `redis`: `endpoint_runtime::redis::RedisBroker` (Redis pub/sub), so sessions on
//!   several nodes behind a load balancer share rooms.
//!
//! # Guarantees a broker must keep
//!
//! * [`publish`](Broker::publish) never blocks and keeps the order of its calls: broadcasts made
//!   one after the other from one task arrive in that order on every node.
//! * While the broker is unavailable, local delivery goes on; the broker reports the outage in
//!   [`BrokerStats`] and catches up with its subscriptions when it is back. Messages published
//!   during an outage may not reach other nodes (pub/sub has no history); each broker documents
//!   what it does.
//!
//! # Writing one
//!
//! ```
//! use endpoint_runtime::broker::{Broker, BrokerStats, Inbox, Member, Topic};
//! use endpoint_runtime::Message;
//! use std::sync::Mutex;
//!
//! /// Records what would be sent to other nodes.
//! #[derive(Default)]
//! struct Recording(Mutex<Vec<(String, Message)>>);
//!
//! impl Broker for Recording {
//!     fn start(&self, _inbox: Inbox) {}
//!     fn publish(&self, topic: &Topic, message: &Message) {
//!         self.0.lock().unwrap().push((topic.room().to_owned(), message.clone()));
//!     }
//! }
//!
//! let server = endpoint_runtime::Server::new().broker(Recording::default());
//! # drop(server);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use super::{fan_out_with, Delivery};
use crate::message::Message;
use crate::session::EndpointRegistry;
pub use crate::stats::BrokerStats;

/// A room of an endpoint, as the broker sees it: the endpoint's URI template and the room name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    endpoint: Arc<str>,
    room: Arc<str>,
}

impl Topic {
    /// A topic for `room` of the endpoint served at the URI template `endpoint`.
    pub fn new(endpoint: &str, room: &str) -> Self {
        Topic {
            endpoint: endpoint.into(),
            room: room.into(),
        }
    }

    /// The reserved topic of a broadcast to every session of `endpoint`
    /// ([`Hub::broadcast`](crate::Hub::broadcast)): a broker carries it like a room's (its
    /// room name starts with NUL, which no joined room has), and every node delivers it to all
    /// its sessions of the endpoint.
    pub fn everyone(endpoint: &str) -> Self {
        Topic::new(endpoint, super::hub::EVERYONE)
    }

    /// Whether this is [`Topic::everyone`].
    pub fn is_everyone(&self) -> bool {
        &*self.room == super::hub::EVERYONE
    }

    /// The endpoint's URI template, e.g. `/chat/{room}`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The room name.
    pub fn room(&self) -> &str {
        &self.room
    }
}

/// One member of a room, on some node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The node the session is connected to ([`Server::node_id`](crate::Server::node_id)).
    pub node: String,
    /// The session's id on that node.
    pub session: u64,
    /// The session's display name ([`Session::set_name`](crate::Session::set_name)); its id when
    /// none was set.
    pub name: String,
}

/// A boxed future, as returned by [`Broker::members`].
pub type BrokerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries room traffic and presence between server processes. See the [module docs](self).
pub trait Broker: Send + Sync + 'static {
    /// Called once when the server starts: keep `inbox` to deliver what other nodes publish.
    fn start(&self, inbox: Inbox);

    /// Forwards a broadcast to `topic` made on this node to the other nodes. Must not block.
    fn publish(&self, topic: &Topic, message: &Message);

    /// A session of this node joined a room (for cluster-wide presence).
    fn joined(&self, topic: &Topic, member: &Member) {
        let _ = (topic, member);
    }

    /// A session of this node left a room (or closed).
    fn left(&self, topic: &Topic, member: &Member) {
        let _ = (topic, member);
    }

    /// The members of a room on every node, or `None` when the broker cannot tell right now
    /// (then the caller falls back to this node's members).
    fn members<'a>(&'a self, topic: &'a Topic) -> BrokerFuture<'a, Option<Vec<Member>>> {
        let _ = topic;
        Box::pin(async { None })
    }

    /// Health and traffic counters.
    fn stats(&self) -> BrokerStats {
        BrokerStats::connected()
    }

    /// Called once when the server shuts down, after every session left its rooms (e.g. to
    /// remove this node's presence at once). Runs on a blocking thread: it may wait briefly.
    fn stop(&self) {}
}

/// Delivers messages published by other nodes to this node's sessions.
#[derive(Clone)]
pub struct Inbox {
    pub(crate) endpoints: Vec<Weak<EndpointRegistry>>,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

impl Inbox {
    /// Delivers `message` to this node's members of `topic` (a broadcast from another node).
    /// Slow consumers are handled as for local broadcasts (the room's policy on this node).
    pub fn deliver(&self, topic: &Topic, message: Message) -> Delivery {
        let Some(endpoint) = self.endpoint(topic.endpoint()) else {
            return Delivery::default();
        };
        if topic.is_everyone() {
            let sessions = endpoint.recipients();
            return super::fan_out(&sessions, message, None, &endpoint).unwrap_or_default();
        }
        let members = endpoint.rooms.recipients(topic.room()).unwrap_or_default();
        // The room's policy on this node; `Wait` cannot wait here (closes as `Close`).
        let policy = endpoint
            .rooms
            .policy(topic.room())
            .unwrap_or(endpoint.sending.slow_consumer);
        fan_out_with(&members, message, None, &endpoint, policy).unwrap_or_default()
    }

    /// Delivers a message a distributed [`History`](crate::history::History) store carried
    /// (every node receives every message, its own included, in offset order) to this node's
    /// members of `topic`, stamped with `position`, and to the sessions recovering there. A
    /// message at or below the last offset delivered here is skipped.
    pub fn deliver_positioned(
        &self,
        topic: &Topic,
        position: &crate::history::Position,
        message: &Message,
    ) -> Delivery {
        let Some(endpoint) = self.endpoint(topic.endpoint()) else {
            return Delivery::default();
        };
        let Some(link) = endpoint.state().get::<crate::history::HistoryLink>() else {
            return Delivery::default();
        };
        link.deliver_positioned(&endpoint, topic, position, message)
    }

    /// This node's members of `topic`, for a broker that answers presence queries itself.
    pub fn local_members(&self, topic: &Topic) -> Vec<Member> {
        let Some(endpoint) = self.endpoint(topic.endpoint()) else {
            return Vec::new();
        };
        endpoint
            .rooms
            .open_members(topic.room())
            .iter()
            .map(|s| s.member())
            .collect()
    }

    /// Every (topic, member) of this node, for a broker that re-announces presence after a
    /// reconnection.
    pub fn all_members(&self) -> Vec<(Topic, Member)> {
        let mut out = Vec::new();
        for endpoint in self.endpoints.iter().filter_map(Weak::upgrade) {
            for room in endpoint.rooms.names() {
                let topic = Topic::new(endpoint.path(), &room);
                for s in endpoint.rooms.members(&room) {
                    out.push((topic.clone(), s.member()));
                }
            }
        }
        out
    }

    fn endpoint(&self, path: &str) -> Option<Arc<EndpointRegistry>> {
        self.endpoints
            .iter()
            .filter_map(Weak::upgrade)
            .find(|e| e.path() == path)
    }
}

/// The broker of a server, with this node's id; shared by its endpoints.
pub(crate) struct BrokerLink {
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) node: Arc<str>,
}
