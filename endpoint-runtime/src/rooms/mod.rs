//! Rooms and broadcast: named groups of sessions of one endpoint, and fan-out to them.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Room`], [`LocalRoom`], [`Rooms`], [`Delivery`] |
//! | `membership` | `Session::join`, `leave`, `room`, `broadcast`, presence names |
//! | `fanout` | one message to many sessions, encoded once, written directly to idle sockets |
//! | [`broker`] | the [`Broker`](broker::Broker) trait: rooms across processes |
//! | `hub` | [`Hub`]: pushes to an endpoint's rooms and sessions from outside its handlers |
//! | `redis` | `RedisBroker` (feature `redis`) |
//! | [`history`] | positions, history and recovery: [`Room::publish`], [`Session::join_from`] |
//!
//! A session joins rooms with [`Session::join`] and leaves them with [`Session::leave`]; it
//! leaves all of them when it closes, however it closes. Rooms belong to an endpoint: two
//! endpoints may each have a room called `lobby`, and they are different rooms.
//!
//! # Reach: this node, or every node
//!
//! Which broadcasts cross nodes is in the name, as socketioxide's `.local()`:
//!
//! | call | reaches |
//! |---|---|
//! | [`Room::broadcast`], [`Room::broadcast_except`] | the room's members on **every node** (through the [`Broker`](broker::Broker), when the server has one) |
//! | [`Room::local`]`()`[`.broadcast(..)`](LocalRoom::broadcast) | the room's members on **this node** only |
//! | [`Session::broadcast`], [`Session::broadcast_others`], [`Rooms::broadcast`] | every session of the endpoint on **this node** only (brokers carry rooms, not endpoints) |
//!
//! Without a broker every node is alone, and the two reaches are the same.
//!
//! # Fan-out
//!
//! A broadcast encodes the message once; every recipient's queue receives a clone that shares
//! the same bytes. No lock is held while queueing: the broadcast works on the room's members as
//! one shared slice, made by the first broadcast after a join or leave and shared by the
//! broadcasts after it until the next one (`session/registry.rs::Members`), so a steady room's
//! broadcast copies no member and touches no member's reference count.
//!
//! A recipient whose connection is idle (a plain TCP connection with nothing queued or being
//! written) gets the frame written to its socket by the broadcast itself, as uWebSockets does:
//! no queue entry, no wake-up of its connection task. Whatever the socket does not take is
//! written by the connection task before anything else, and a socket that takes nothing gets
//! the message through the queue. Either way the order below holds, and the message counts as
//! traffic for the recipient's idle timeout.
//!
//! # Slow consumers
//!
//! What a broadcast does to a member whose queue is full is a policy, per endpoint
//! (`#[server_endpoint(slow_consumer = drop)]`) and per room ([`Room::set_slow_consumer`]):
//! close (the default, below), drop with a notice, or wait; see [`SlowConsumer`]. Under the
//! default:
//!
//! A broadcast never waits. Each session's outbound queue is bounded by bytes
//! ([`Limits::outbound_queue_bytes`](crate::Limits::outbound_queue_bytes)); a session whose queue
//! would overflow is closed with `1008 Policy Violation` ("outbound queue exceeded ..."), its
//! `on_error` receives [`EndpointError::SlowConsumer`] and its
//! `on_close` runs. Nothing is dropped silently: each recipient either gets the message, in
//! order, or is closed. (Compare `tokio::sync::broadcast`, whose receivers *lag* and silently
//! lose messages.)
//!
//! # Ordering
//!
//! Broadcasts made one after the other from one task reach every recipient in that order.
//!
//! # Examples
//!
//! ```
//! use endpoint_runtime::{EndpointError, Session};
//!
//! fn join_and_greet(session: &Session, room: &str) -> Result<(), EndpointError> {
//!     session.join(room);
//!     let delivery = session.room(room).broadcast_except(format!("{} joined", session.id()), session)?;
//!     tracing::debug!(delivered = delivery.delivered, "greeted");
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::config::SlowConsumer;
use crate::error::EndpointError;
use crate::message::{Encode, Message};
use crate::session::{EndpointRegistry, Session};

pub mod broker;
mod fanout;
pub mod history;
pub(crate) mod hub;
mod membership;
#[cfg(feature = "redis")]
pub mod redis;

use broker::{Member, Topic};
use fanout::fan_out_wait;
pub(crate) use fanout::{fan_out, fan_out_with};
pub use hub::Hub;

/// What a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a Delivery says how many sessions were closed as slow consumers"]
pub struct Delivery {
    /// Sessions of this node that received the message: queued, or written to their socket at
    /// once. (Other nodes deliver a cluster-wide broadcast themselves, and do not report back.)
    pub delivered: usize,
    /// Sessions closed with 1008 because their queue overflowed (or, waiting, because their
    /// send timeout passed).
    pub overflowed: usize,
    /// Sessions that missed this message because their queue was full (the
    /// [`SlowConsumer::Drop`] policy); each is told in `on_error`.
    pub dropped: usize,
}

/// A room of an endpoint, by name. Cheap to create; holds no members itself.
///
/// Get one with [`Session::room`] (the session's endpoint) or [`Rooms::room`]. Its broadcasts
/// reach the members on every node (see [Reach](self#reach-this-node-or-every-node));
/// [`Room::local`] is the same room on this node only.
#[derive(Clone)]
pub struct Room {
    endpoint: Arc<EndpointRegistry>,
    name: Arc<str>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("endpoint", &self.endpoint.path())
            .field("name", &self.name)
            .finish()
    }
}

impl Room {
    pub(crate) fn new(endpoint: Arc<EndpointRegistry>, name: &str) -> Self {
        Room {
            endpoint,
            name: name.into(),
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of the members on this server.
    ///
    /// Sessions that are closing (closed by the application, or for a full queue) are left out,
    /// though they stay in the room's table until their connection task ends.
    pub fn members(&self) -> Vec<Session> {
        self.endpoint.rooms.open_members(&self.name)
    }

    /// How many open sessions are in the room on this server (see [`Room::members`]).
    pub fn len(&self) -> usize {
        self.endpoint.rooms.count_open(&self.name)
    }

    /// Whether the room has no member on this server.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `message` to every member, on every node. See the [module docs](self) for slow
    /// consumers.
    ///
    /// # Reach
    /// Cluster-wide: this node's members get it at once; with a
    /// [`Broker`](crate::broker::Broker), the message also goes to the room's members on the
    /// other nodes. [`Room::local`] stays on this node.
    ///
    /// # Errors
    /// [`EndpointError::Encode`] when the message cannot be encoded (nothing was sent).
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let message = message.encode()?;
        let delivery = self.local().broadcast(message.clone())?;
        self.forward(&message);
        Ok(delivery)
    }

    /// Sends `message` to every member but `except` (usually the sender), on every node.
    ///
    /// # Reach
    /// Cluster-wide, as [`Room::broadcast`].
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast_except(
        &self,
        message: impl Encode,
        except: &Session,
    ) -> Result<Delivery, EndpointError> {
        let message = message.encode()?;
        let delivery = self.local().broadcast_except(message.clone(), except)?;
        self.forward(&message);
        Ok(delivery)
    }

    /// Sends `message` to every member, on every node, through the room's stream: it gets a
    /// [`Position`](history::Position) (returned, and stamped on what members receive, see
    /// [`Stamp`](history::Stamp)) and is kept in the room's history, so that a session that
    /// comes back with [`Session::join_from`] gets what it missed. Needs
    /// [`Server::history`](crate::Server::history).
    ///
    /// ```
    /// # async fn demo(session: &endpoint_runtime::Session) -> Result<(), endpoint_runtime::history::HistoryError> {
    /// let published = session.room("lobby").publish(r#"{"text":"hi"}"#).await?;
    /// tracing::debug!(offset = published.position.offset, "published");
    /// # Ok(()) }
    /// ```
    ///
    /// # Order
    /// Messages published in a room reach every member in offset order.
    ///
    /// # Errors
    /// [`HistoryError`](history::HistoryError) when the server has no history, the message
    /// cannot be encoded, or the store fails (nothing was delivered then).
    pub async fn publish(
        &self,
        message: impl Encode,
    ) -> Result<history::Published, history::HistoryError> {
        let message = history::encode(message)?;
        let link = self.history_link()?;
        let topic = Topic::new(self.endpoint.path(), &self.name);
        let published = link
            .0
            .publish(&self.endpoint, &topic, message.clone())
            .await?;
        if !link.distributed() {
            // Delivered here; other nodes get it through the broker, stamped with this node's
            // position (cluster-wide positions need a distributed store: `RedisHistory`).
            self.forward(&link.stamp(&published.position, &message));
        }
        Ok(published)
    }

    /// The room's last position and its newest `limit` messages as published (not stamped),
    /// oldest first: a read of the history without joining.
    ///
    /// # Errors
    /// As [`Room::publish`].
    pub async fn history(
        &self,
        limit: usize,
    ) -> Result<(history::Position, Vec<history::Entry>), history::HistoryError> {
        let link = self.history_link()?;
        link.read_newest(&Topic::new(self.endpoint.path(), &self.name), limit)
            .await
    }

    pub(crate) fn history_link(
        &self,
    ) -> Result<crate::state::State<history::HistoryLink>, history::HistoryError> {
        self.endpoint
            .state()
            .get::<history::HistoryLink>()
            .ok_or_else(|| {
                history::HistoryError::new(
                    "the server has no room history: add one with Server::history(RoomHistory::memory())",
                )
            })
    }

    /// The same room, on this node only: its broadcasts do not go through the broker.
    ///
    /// ```
    /// # fn demo(session: &endpoint_runtime::Session) -> Result<(), endpoint_runtime::EndpointError> {
    /// // Only the members connected to this process see it, whatever the broker.
    /// let delivery = session.room("lobby").local().broadcast("this node restarts in 5 min")?;
    /// # let _ = delivery;
    /// # Ok(()) }
    /// ```
    pub fn local(&self) -> LocalRoom<'_> {
        LocalRoom { room: self }
    }

    /// The members on every node: asks the [`Broker`](crate::broker::Broker) when there is one
    /// (falling back to this node's members when it cannot answer), else this node's members.
    /// Sorted by name.
    pub async fn members_everywhere(&self) -> Vec<Member> {
        if let Some(link) = self.endpoint.broker() {
            let topic = Topic::new(self.endpoint.path(), &self.name);
            if let Some(mut members) = link.broker.members(&topic).await {
                members.sort_by(|a, b| a.name.cmp(&b.name).then(a.session.cmp(&b.session)));
                return members;
            }
        }
        let mut members: Vec<Member> = self.members().iter().map(Session::member).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name).then(a.session.cmp(&b.session)));
        members
    }

    /// Sets what this room's broadcasts do to a member whose queue is full, on this node (each
    /// node sets its own; broadcasts from other nodes follow it too). Without it the
    /// endpoint's policy applies ([`EndpointConfig::slow_consumer`](crate::EndpointConfig::slow_consumer),
    /// by default `Close`). See [`SlowConsumer`].
    ///
    /// ```
    /// # fn demo(rooms: &endpoint_runtime::Rooms) {
    /// use endpoint_runtime::SlowConsumer;
    /// // A price ticker: a member that falls behind misses ticks (and is told), is never closed.
    /// rooms.room("ticker").set_slow_consumer(SlowConsumer::Drop);
    /// # }
    /// ```
    pub fn set_slow_consumer(&self, policy: SlowConsumer) {
        self.endpoint.rooms.set_policy(&self.name, policy);
    }

    /// The slow-consumer policy in force for this room (its own, or the endpoint's).
    pub fn slow_consumer(&self) -> SlowConsumer {
        self.endpoint
            .rooms
            .policy(&self.name)
            .unwrap_or(self.endpoint.sending.slow_consumer)
    }

    /// Sends `message` to every member, on every node, waiting for room in the queues of
    /// members that have none when the room's policy is [`SlowConsumer::Wait`] (one after the
    /// other, each at most its send timeout, after which it is closed with 1008 as not
    /// reading): Java's loop over `getBasicRemote().sendText`. Under the other policies it is
    /// [`Room::broadcast`]. Other nodes cannot wait for this one's call: their members are
    /// delivered to as by `broadcast`.
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub async fn broadcast_wait(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let message = message.encode()?;
        let delivery = self.local().broadcast_wait(message.clone()).await?;
        self.forward(&message);
        Ok(delivery)
    }

    fn forward(&self, message: &Message) {
        if let Some(link) = self.endpoint.broker() {
            link.broker
                .publish(&Topic::new(self.endpoint.path(), &self.name), message);
        }
    }
}

/// A room on this node only: [`Room::local`].
#[derive(Debug, Clone, Copy)]
pub struct LocalRoom<'a> {
    room: &'a Room,
}

impl LocalRoom<'_> {
    /// Sends `message` to every member connected to this node; never through the broker.
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let endpoint = &self.room.endpoint;
        let policy = self.room.slow_consumer();
        fan_out_with(&self.recipients(), message, None, endpoint, policy)
    }

    /// The members a broadcast goes to, shared with the other broadcasts until membership
    /// changes (`session/registry.rs::Members`).
    fn recipients(&self) -> Arc<[Session]> {
        let room = &self.room;
        room.endpoint
            .rooms
            .recipients(&room.name)
            .unwrap_or_default()
    }

    /// [`Room::broadcast_wait`] on this node only.
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub async fn broadcast_wait(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let endpoint = &self.room.endpoint;
        match self.room.slow_consumer() {
            SlowConsumer::Wait => fan_out_wait(&self.recipients(), message, None, endpoint).await,
            policy => fan_out_with(&self.recipients(), message, None, endpoint, policy),
        }
    }

    /// Sends `message` to every member connected to this node but `except`.
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast_except(
        &self,
        message: impl Encode,
        except: &Session,
    ) -> Result<Delivery, EndpointError> {
        let endpoint = &self.room.endpoint;
        let policy = self.room.slow_consumer();
        fan_out_with(&self.recipients(), message, Some(except), endpoint, policy)
    }
}

/// The rooms of one endpoint, reachable without a session (e.g. from a background task).
#[derive(Clone)]
pub struct Rooms {
    endpoint: Arc<EndpointRegistry>,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rooms")
            .field("endpoint", &self.endpoint.path())
            .finish()
    }
}

impl Rooms {
    pub(crate) fn new(endpoint: Arc<EndpointRegistry>) -> Self {
        Rooms { endpoint }
    }

    /// A room by name.
    pub fn room(&self, name: &str) -> Room {
        Room::new(self.endpoint.clone(), name)
    }

    /// Names of the rooms that have members on this node.
    pub fn names(&self) -> Vec<String> {
        self.endpoint.rooms.names()
    }

    /// A snapshot of the endpoint's open sessions on this node.
    pub fn sessions(&self) -> Vec<Session> {
        self.endpoint.snapshot()
    }

    /// Sends `message` to every open session of the endpoint on this node.
    ///
    /// # Reach
    /// This node only, as [`Session::broadcast`].
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        fan_out(&self.endpoint.recipients(), message, None, &self.endpoint)
    }

    /// [`Rooms::broadcast`], waiting for room in full queues when the endpoint's policy is
    /// [`SlowConsumer::Wait`] (see [`Room::broadcast_wait`]).
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub async fn broadcast_wait(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let sessions = self.endpoint.recipients();
        match self.endpoint.sending.slow_consumer {
            SlowConsumer::Wait => fan_out_wait(&sessions, message, None, &self.endpoint).await,
            _ => fan_out(&sessions, message, None, &self.endpoint),
        }
    }
}
