//! [`Hub`]: pushes to an endpoint's rooms and sessions from outside its handlers (timers, HTTP
//! handlers, background tasks: Tomcat's snake timer), obtainable before the server is bound.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use super::broker::Topic;
use super::{fan_out, Delivery, Room, Rooms};
use crate::endpoint::Endpoint;
use crate::error::EndpointError;
use crate::message::Encode;
use crate::session::{EndpointRegistry, Session};

/// The registry a hub reaches, filled when the server is built.
pub(crate) type HubSlot = Arc<OnceLock<Arc<EndpointRegistry>>>;

/// The room name a broadcast to every session of an endpoint travels under between nodes
/// ([`Topic::is_everyone`]); no session can join it (room names never start with NUL here).
pub(crate) const EVERYONE: &str = "\0everyone";

/// Pushes to the rooms and sessions of endpoint `E`, from anywhere: a timer task, an HTTP
/// handler, a background job. Like Tomcat's snake timer, which broadcasts to every snake
/// from outside the endpoint, without a session in hand.
///
/// Get one from the builder with [`Server::hub`](crate::Server::hub), before `bind`, and move
/// it into the task (or register it as state, `server.state(hub.clone())`, for handlers of
/// other endpoints). It is typed by the endpoint, so no path is spelled (with or without the
/// server's context path). Until the server is built (`bind`, `listen`, `into_service`) its
/// pushes fail with [`EndpointError::NotServing`]; after that they reach:
///
/// | call | reaches |
/// |---|---|
/// | [`Hub::room`]`(name).broadcast(..)` | the room's members on **every node** (through the broker) |
/// | [`Hub::room`]`(name).local().broadcast(..)` | the room's members on **this node** |
/// | [`Hub::broadcast`] | every session of the endpoint on **every node** (through the broker) |
/// | [`Hub::broadcast_local`] | every session of the endpoint on **this node** |
///
/// ```
/// use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Server, Session};
/// use std::time::Duration;
/// # #[derive(Default)] struct Snake;
/// # impl Endpoint for Snake {
/// #     fn config() -> EndpointConfig { EndpointConfig::new("/websocket/snake") }
/// #     async fn on_message(&mut self, _: &Session, _: Message) -> HookResult { Ok(None) }
/// # }
///
/// # async fn demo() -> std::io::Result<()> {
/// let server = Server::new().endpoint::<Snake>();
/// let hub = server.hub::<Snake>();
/// tokio::spawn(async move {
///     let mut tick = tokio::time::interval(Duration::from_millis(100));
///     loop {
///         tick.tick().await;
///         // Every snake, on every node: the game's state.
///         let _ = hub.broadcast("{\"type\": \"update\"}");
///     }
/// });
/// let bound = server.bind("127.0.0.1:0").await?;
/// # drop(bound);
/// # Ok(()) }
/// ```
pub struct Hub<E> {
    slot: HubSlot,
    path: &'static str,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E> Clone for Hub<E> {
    fn clone(&self) -> Self {
        Hub {
            slot: self.slot.clone(),
            path: self.path,
            _endpoint: PhantomData,
        }
    }
}

impl<E> fmt::Debug for Hub<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("endpoint", &self.path)
            .field("serving", &self.slot.get().is_some())
            .finish()
    }
}

impl<E: Endpoint> Hub<E> {
    pub(crate) fn new(slot: HubSlot) -> Self {
        Hub {
            slot,
            path: E::config().path(),
            _endpoint: PhantomData,
        }
    }

    fn registry(&self) -> Result<&Arc<EndpointRegistry>, EndpointError> {
        self.slot.get().ok_or(EndpointError::NotServing(self.path))
    }

    /// Whether the server serving `E` has been built (pushes reach its sessions).
    pub fn is_serving(&self) -> bool {
        self.slot.get().is_some()
    }

    /// A room of `E`: [`Room::broadcast`] reaches its members on every node,
    /// [`Room::local`] this node's.
    ///
    /// # Errors
    /// [`EndpointError::NotServing`] before the server is built.
    pub fn room(&self, name: &str) -> Result<Room, EndpointError> {
        Ok(Room::new(self.registry()?.clone(), name))
    }

    /// The rooms of `E` on this node (names, sessions).
    ///
    /// # Errors
    /// [`EndpointError::NotServing`] before the server is built.
    pub fn rooms(&self) -> Result<Rooms, EndpointError> {
        Ok(Rooms::new(self.registry()?.clone()))
    }

    /// A snapshot of `E`'s open sessions on this node (empty before the server is built).
    pub fn sessions(&self) -> Vec<Session> {
        self.slot.get().map(|r| r.snapshot()).unwrap_or_default()
    }

    /// Sends `message` to every session of `E` on every node: this node's at once, the
    /// others' through the server's [`Broker`](crate::broker::Broker) (as a broadcast to the
    /// reserved topic [`Topic::everyone`]). The endpoint's slow-consumer policy applies.
    ///
    /// # Errors
    /// [`EndpointError::NotServing`] before the server is built; [`EndpointError::Encode`]
    /// when the message cannot be encoded.
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let registry = self.registry()?;
        let message = message.encode()?;
        let delivery = fan_out(&registry.recipients(), message.clone(), None, registry)?;
        if let Some(link) = registry.broker() {
            link.broker
                .publish(&Topic::everyone(registry.path()), &message);
        }
        Ok(delivery)
    }

    /// Sends `message` to every session of `E` on this node only.
    ///
    /// # Errors
    /// As [`Hub::broadcast`].
    pub fn broadcast_local(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        let registry = self.registry()?;
        fan_out(&registry.recipients(), message, None, registry)
    }
}
