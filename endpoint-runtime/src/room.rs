//! Rooms and broadcast: named groups of sessions of one endpoint, and fan-out to them.
//!
//! A session joins rooms with [`Session::join`] and leaves them with [`Session::leave`]; it
//! leaves all of them when it closes, however it closes. Rooms belong to an endpoint: two
//! endpoints may each have a room called `lobby`, and they are different rooms.
//!
//! # Fan-out
//!
//! [`Room::broadcast`] (and [`Session::broadcast`] for every session of the endpoint) encodes the
//! message once; every recipient's queue receives a clone that shares the same bytes. No lock is
//! held while queueing: the members are copied out first.
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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::broker::{Member, Topic};
use crate::error::EndpointError;
use crate::message::Encode;
use crate::session::{with_direct_frame, ById, EndpointShared, Pushed, Session, SessionId};
use crate::stats;

/// The rooms of one endpoint: room name -> members.
#[derive(Default)]
pub(crate) struct RoomTable {
    rooms: RwLock<HashMap<Arc<str>, HashSet<ById>>>,
}

impl RoomTable {
    pub(crate) fn add(&self, room: &Arc<str>, session: &Session) -> bool {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(room.clone())
            .or_default()
            .replace(ById(session.clone()))
            .is_none()
    }

    pub(crate) fn remove(&self, room: &str, id: SessionId) -> bool {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
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
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(room)
            .map(|m| m.iter().map(|s| s.0.clone()).collect())
            .unwrap_or_default()
    }

    /// Members that are still open, copied out in one pass (a broadcast to 10,000 touches each
    /// session as few times as it can).
    pub(crate) fn open_members(&self, room: &str) -> Vec<Session> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms
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
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(room)
            .map_or(0, |m| m.iter().filter(|s| s.0.is_open()).count())
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.keys().map(|k| k.to_string()).collect()
    }
}

/// What a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a Delivery says how many sessions were closed as slow consumers"]
pub struct Delivery {
    /// Sessions that received the message: queued, or written to their socket at once.
    pub delivered: usize,
    /// Sessions closed with 1008 because their queue overflowed.
    pub overflowed: usize,
}

/// A room of an endpoint, by name. Cheap to create; holds no members itself.
///
/// Get one with [`Session::room`] (the session's endpoint) or [`Rooms::room`].
#[derive(Clone)]
pub struct Room {
    endpoint: Arc<EndpointShared>,
    name: Arc<str>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("endpoint", &self.endpoint.path)
            .field("name", &self.name)
            .finish()
    }
}

impl Room {
    pub(crate) fn new(endpoint: Arc<EndpointShared>, name: &str) -> Self {
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

    /// How many open sessions are in the room (see [`Room::members`]).
    pub fn len(&self) -> usize {
        self.endpoint.rooms.count_open(&self.name)
    }

    /// Whether the room has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `message` to every member. See the [module docs](self) for slow consumers.
    ///
    /// # Errors
    /// [`EndpointError::Encode`] when the message cannot be encoded (nothing was sent).
    ///
    /// With a [`Broker`](crate::broker::Broker), the message also goes to the room's members on
    /// the other nodes.
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let message = message.encode()?;
        let delivery = fan_out(self.members(), message.clone(), None)?;
        self.publish(&message);
        Ok(delivery)
    }

    /// Sends `message` to every member but `except` (usually the sender).
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast_except(
        &self,
        message: impl Encode,
        except: &Session,
    ) -> Result<Delivery, EndpointError> {
        let message = message.encode()?;
        let delivery = fan_out(self.members(), message.clone(), Some(except.id()))?;
        self.publish(&message);
        Ok(delivery)
    }

    /// The members on every node: asks the [`Broker`](crate::broker::Broker) when there is one
    /// (falling back to this node's members when it cannot answer), else this node's members.
    /// Sorted by name.
    pub async fn members_everywhere(&self) -> Vec<Member> {
        if let Some(link) = self.endpoint.broker.get() {
            let topic = Topic::new(self.endpoint.path, &self.name);
            if let Some(mut members) = link.broker.members(&topic).await {
                members.sort_by(|a, b| a.name.cmp(&b.name).then(a.session.cmp(&b.session)));
                return members;
            }
        }
        let mut members: Vec<Member> = self.members().iter().map(Session::member).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name).then(a.session.cmp(&b.session)));
        members
    }

    fn publish(&self, message: &crate::Message) {
        if let Some(link) = self.endpoint.broker.get() {
            link.broker
                .publish(&Topic::new(self.endpoint.path, &self.name), message);
        }
    }
}

/// The rooms of one endpoint, reachable without a session (e.g. from a background task).
#[derive(Clone)]
pub struct Rooms {
    pub(crate) endpoint: Arc<EndpointShared>,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rooms")
            .field("endpoint", &self.endpoint.path)
            .finish()
    }
}

impl Rooms {
    /// A room by name.
    pub fn room(&self, name: &str) -> Room {
        Room::new(self.endpoint.clone(), name)
    }

    /// Names of the rooms that have members.
    pub fn names(&self) -> Vec<String> {
        self.endpoint.rooms.names()
    }

    /// A snapshot of the endpoint's open sessions.
    pub fn sessions(&self) -> Vec<Session> {
        self.endpoint.snapshot()
    }

    /// Sends `message` to every open session of the endpoint.
    ///
    /// # Errors
    /// As [`Room::broadcast`].
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        fan_out(self.endpoint.snapshot(), message, None)
    }
}

/// Encodes once, queues a shared clone on every recipient (or, to an idle one, writes the frame
/// encoded once for all of them).
pub(crate) fn fan_out(
    recipients: Vec<Session>,
    message: impl Encode,
    except: Option<SessionId>,
) -> Result<Delivery, EndpointError> {
    let message = message.encode()?.into_tungstenite();
    let mut delivery = Delivery::default();
    with_direct_frame(&message, |frame| {
        for session in recipients {
            if Some(session.id()) == except {
                continue;
            }
            match session.inner.out.push_or_overflow(&message, frame) {
                Pushed::Queued => delivery.delivered += 1,
                Pushed::Written => {
                    // Counted here: the connection task never sees this message.
                    let counters = &session.inner.shared.counters;
                    stats::add(&counters.messages_out, 1);
                    stats::add(&counters.bytes_out, message.len() as u64);
                    delivery.delivered += 1;
                }
                Pushed::Overflowed => delivery.overflowed += 1,
                Pushed::Closed => {}
            }
        }
    });
    Ok(delivery)
}
