//! Room membership, written as methods of [`Session`]: joining, leaving, presence names,
//! and the endpoint-wide broadcasts. The session wing keeps the data (the session's list of
//! rooms, its name, the endpoint's room table); this file is what it means.

use std::sync::Arc;

use super::broker::{Member, Topic};
use super::fanout::fan_out;
use super::{Delivery, Room, Rooms};
use crate::error::EndpointError;
use crate::message::Encode;
use crate::session::Session;
use crate::util::lock;

impl Session {
    /// Joins a room of this endpoint; returns `false` when already a member or closed. The
    /// session leaves all its rooms when it closes. See [`room`](crate::room).
    pub fn join(&self, room: &str) -> bool {
        let mut mine = lock(&self.inner.rooms);
        let Some(mine) = mine.as_mut() else {
            return false;
        };
        if mine.iter().any(|r| &**r == room) {
            return false;
        }
        let name: Arc<str> = room.into();
        self.inner.endpoint.rooms.add(&name, self);
        if let Some(link) = self.inner.endpoint.broker() {
            link.broker.joined(
                &Topic::new(self.inner.endpoint.path(), room),
                &self.member(),
            );
        }
        edit(mine, |rooms| rooms.push(name));
        true
    }

    /// Joins a room with history, getting first what the session missed: everything after
    /// its last [`Position`](crate::history::Position) (or the room's last messages), in
    /// order, as its members receive them ([`Stamp`](crate::history::Stamp)ed), then the live
    /// messages, with no gap and no duplicate even while others publish. The returned
    /// [`Recovery`](crate::history::Recovery) says whether nothing was lost; see
    /// [`history`](crate::history).
    ///
    /// The missed messages are queued waiting for room (a large replay is paced by the
    /// client's reading); live messages meanwhile are held, within the outbound queue's bound.
    ///
    /// # Errors
    /// [`HistoryError`](crate::history::HistoryError) when the server has no history or the
    /// store fails (the session did not join), or the session closed during the replay.
    pub async fn join_from(
        &self,
        room: &str,
        from: crate::history::Recover,
    ) -> Result<crate::history::Recovery, crate::history::HistoryError> {
        let recovering = self.recover(room, from).await?;
        for message in recovering.stamped() {
            if self.send(message).await.is_err() {
                return Err(crate::history::HistoryError::new(
                    "the session closed during its recovery",
                ));
            }
        }
        let recovery = recovering.recovery.clone();
        recovering.resume();
        Ok(recovery)
    }

    /// The first half of [`join_from`](Session::join_from), for an application that sends
    /// the missed messages itself (say, inside one event): returns them
    /// ([`Recovering::entries`](crate::history::Recovering::entries)) while live messages are
    /// held; [`Recovering::resume`](crate::history::Recovering::resume) (or dropping it)
    /// queues the held ones after whatever was queued meanwhile and makes the session a
    /// member.
    ///
    /// # Errors
    /// As [`join_from`](Session::join_from).
    pub async fn recover(
        &self,
        room: &str,
        from: crate::history::Recover,
    ) -> Result<crate::history::Recovering, crate::history::HistoryError> {
        let link = self.room(room).history_link()?;
        let topic = Topic::new(self.inner.endpoint.path(), room);
        link.0.recover(self, &topic, from).await
    }

    /// Leaves a room; returns `false` when not a member.
    pub fn leave(&self, room: &str) -> bool {
        let mut mine = lock(&self.inner.rooms);
        let Some(mine) = mine.as_mut() else {
            return false;
        };
        let Some(i) = mine.iter().position(|r| &**r == room) else {
            return false;
        };
        edit(mine, |rooms| {
            rooms.swap_remove(i);
        });
        if let Some(link) = self.inner.endpoint.broker() {
            link.broker.left(
                &Topic::new(self.inner.endpoint.path(), room),
                &self.member(),
            );
        }
        self.inner.endpoint.rooms.remove(room, self.id())
    }

    /// The rooms this session is in, in joining order (not kept after a `leave`).
    pub fn rooms(&self) -> Vec<String> {
        lock(&self.inner.rooms)
            .as_ref()
            .map(|r| r.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }

    /// A room of this session's endpoint (whether or not this session is in it).
    pub fn room(&self, name: &str) -> Room {
        Room::new(self.inner.endpoint.clone(), name)
    }

    /// The rooms of this session's endpoint, for broadcasting to all its sessions.
    pub fn endpoint_rooms(&self) -> Rooms {
        Rooms::new(self.inner.endpoint.clone())
    }

    /// Sends `message` to every open session of this endpoint **on this node** (this one
    /// included). See [`room`](crate::room) for what happens to slow consumers.
    ///
    /// # Reach
    /// This node only, with or without a [`Broker`](crate::broker::Broker): brokers carry
    /// rooms, not endpoints. To reach the sessions on every node, have them join a room and use
    /// [`Room::broadcast`].
    ///
    /// # Errors
    /// [`EndpointError::Encode`] when the message cannot be encoded.
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let endpoint = &self.inner.endpoint;
        fan_out(&endpoint.recipients(), message, None, endpoint)
    }

    /// Sends `message` to every open session of this endpoint on this node except this one.
    ///
    /// # Reach
    /// This node only, as [`Session::broadcast`].
    ///
    /// # Errors
    /// As [`Session::broadcast`].
    pub fn broadcast_others(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let endpoint = &self.inner.endpoint;
        fan_out(&endpoint.recipients(), message, Some(self), endpoint)
    }

    /// Leaves every room and refuses further joins (the session closed).
    pub(crate) fn leave_all_rooms(&self) {
        let rooms = Vec::from(lock(&self.inner.rooms).take().unwrap_or_default());
        let link = self.inner.endpoint.broker();
        let member = link.map(|_| self.member());
        for room in rooms {
            self.inner.endpoint.rooms.remove(&room, self.id());
            if let (Some(link), Some(member)) = (link, &member) {
                link.broker
                    .left(&Topic::new(self.inner.endpoint.path(), &room), member);
            }
        }
    }

    /// Sets the display name this session has in cluster-wide presence
    /// ([`Room::members_everywhere`]); by default its id. Set it before joining rooms: brokers
    /// announce a member when it joins.
    pub fn set_name(&self, name: impl Into<String>) {
        *lock(&self.inner.name) = Some(name.into().into());
    }

    /// The display name set with [`Session::set_name`].
    pub fn name(&self) -> Option<String> {
        lock(&self.inner.name).as_ref().map(|n| n.to_string())
    }

    /// This session as a presence [`Member`].
    pub(crate) fn member(&self) -> Member {
        let name = lock(&self.inner.name).clone();
        let node = self.inner.endpoint.broker().map_or("local", |l| &l.node);
        Member {
            node: node.to_owned(),
            session: self.id().as_u64(),
            name: name.map_or_else(|| self.id().to_string(), |n| n.to_string()),
        }
    }
}

/// Changes a session's list of rooms, keeping it exactly as long as it needs to be.
fn edit(rooms: &mut Box<[Arc<str>]>, f: impl FnOnce(&mut Vec<Arc<str>>)) {
    let mut list = Vec::from(std::mem::take(rooms));
    f(&mut list);
    *rooms = list.into_boxed_slice();
}
