//! Mounting: an endpoint type behind a type-erased [`Mount`], and the task of each of its
//! connections (the upgrade, the endpoint's creation, then the driver).

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::configurator::Configurator;
use crate::connection::{self, ConnectionContext, ConnectionSlot};
use crate::endpoint::{Endpoint, EndpointConfig, MessageLimits, MessageMode};
use crate::message::PayloadKind;
use crate::protocol::deflate::DeflateParams;
use crate::session::{EndpointRegistry, Handshake, Session};

/// What the router finds for a path: the endpoint and the registry of its sessions.
pub(crate) struct Route {
    pub(crate) mount: Arc<dyn Mount>,
    pub(crate) registry: Arc<EndpointRegistry>,
}

/// A registered endpoint with its type erased.
pub(crate) trait Mount: Send + Sync + 'static {
    fn config(&self) -> &EndpointConfig;
    fn configurator(&self) -> Option<&dyn Configurator>;
    /// The endpoint's type name and the `State<T>` its hooks take (checked at build).
    fn required_state(&self) -> (&'static str, Vec<crate::state::RequiredState>);
    /// Spawns the whole life of one connection after the `101`: waits for hyper to hand over
    /// the socket, then drives the endpoint. Spawned here, where its type is known, so a
    /// connection costs one task with its state inline (one allocation).
    fn start(
        &self,
        tracker: &TaskTracker,
        on_upgrade: hyper::upgrade::OnUpgrade,
        session: Session,
        slot: ConnectionSlot,
        ctx: Arc<ConnectionContext>,
        deflate: Option<DeflateParams>,
    ) -> tokio::task::AbortHandle;
}

/// An endpoint type and its factory.
pub(crate) struct Mounted<E, F> {
    pub(crate) config: EndpointConfig,
    pub(crate) configurator: Option<Box<dyn Configurator>>,
    pub(crate) factory: Arc<F>,
    /// The message limits of every connection, resolved at the first (the server's limits
    /// do not change once it runs) and shared: 8 bytes per connection instead of 48.
    pub(crate) limits: std::sync::OnceLock<Arc<MessageLimits>>,
    pub(crate) _endpoint: std::marker::PhantomData<fn() -> E>,
}

impl<E, F> Mount for Mounted<E, F>
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    fn config(&self) -> &EndpointConfig {
        &self.config
    }

    fn configurator(&self) -> Option<&dyn Configurator> {
        self.configurator.as_deref()
    }

    fn required_state(&self) -> (&'static str, Vec<crate::state::RequiredState>) {
        (std::any::type_name::<E>(), E::required_state())
    }

    fn start(
        &self,
        tracker: &TaskTracker,
        on_upgrade: hyper::upgrade::OnUpgrade,
        session: Session,
        slot: ConnectionSlot,
        ctx: Arc<ConnectionContext>,
        deflate: Option<DeflateParams>,
    ) -> tokio::task::AbortHandle {
        // The arguments travel boxed: an async block keeps its captures for its whole life, and
        // this one lives as long as the connection; unboxed, they are ordinary locals, gone once
        // used.
        let start = Box::new(Start {
            factory: self.factory.clone(),
            limits: self
                .limits
                .get_or_init(|| {
                    Arc::new(self.config.resolve(
                        &ctx.limits,
                        [
                            E::message_mode(PayloadKind::Text) != MessageMode::Whole,
                            E::message_mode(PayloadKind::Binary) != MessageMode::Whole,
                        ],
                    ))
                })
                .clone(),
            on_upgrade,
            session,
            slot,
            ctx,
            deflate,
            tracked: tracker.token(),
        });
        tracker.spawn(connection_task::<E, F>(start)).abort_handle()
    }
}

/// The task of one connection: waits for hyper to hand over the socket, then drives the
/// endpoint. Everything between the two awaits happens in [`connect`], so that what it borrows
/// is not kept in this future, which lives as long as the connection.
///
/// A plain TCP connection is handed to the server's connection reactor instead
/// (`connection/reactor.rs`): this task ends, and the connection's future runs in short
/// activations, so that while it waits it holds no task.
pub(crate) async fn connection_task<E, F>(start: Box<Start<F>>)
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    let Start {
        factory,
        limits,
        on_upgrade,
        session,
        slot,
        ctx,
        deflate,
        tracked,
    } = Start::unbox(start);
    let upgraded = on_upgrade.await;
    // A `let`, not an `if let`: the scrutinee of an `if let` lives to the end of its block, and
    // would be kept beside the future it is awaited as.
    let Some(connection) = connect(
        factory, limits, upgraded, session, slot, ctx, deflate, tracked,
    ) else {
        return;
    };
    connection.await;
}

/// Hands a plain TCP connection to the server's reactor and gives nothing back, or gives the
/// connection back to be awaited in this task (TLS, HTTP/2, a wrapped stream). The reactor's
/// future is dropped, closing the socket, when the reactor cannot take it.
fn to_reactor<C: Future<Output = ()> + Send + 'static>(
    connection: C,
    session: Session,
    ctx: &ConnectionContext,
    tracked: tokio_util::task::task_tracker::TaskTrackerToken,
) -> Option<C> {
    if !session.outbound().with_stream(|s| s.is_some()) {
        return Some(connection);
    }
    session.detach_task();
    let reactor = ctx.reactor()?.clone();
    let conn = connection::reactor::Conn::new(reactor.clone(), tracked, connection);
    if let Err(e) = reactor.start_conn(session, conn) {
        warn!(error = %e, "the connection reactor refused a connection");
    }
    None
}

/// Creates the endpoint and the connection's driver (or the 1011 refusal when the endpoint's
/// factory panics); `None` when the upgrade failed, or when the connection went to the
/// reactor (see [`to_reactor`]).
#[allow(clippy::too_many_arguments)]
fn connect<E, F>(
    factory: Arc<F>,
    limits: Arc<MessageLimits>,
    upgraded: hyper::Result<hyper::upgrade::Upgraded>,
    session: Session,
    slot: ConnectionSlot,
    ctx: Arc<ConnectionContext>,
    deflate: Option<DeflateParams>,
    tracked: tokio_util::task::task_tracker::TaskTrackerToken,
) -> Option<impl Future<Output = ()> + Send + 'static>
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    let upgraded = match upgraded {
        Ok(upgraded) => upgraded,
        Err(e) => {
            debug!(session = %session.id(), error = %e, "upgrade failed");
            return None;
        }
    };
    let handshake = Handshake::new(session.clone());
    let (handle, reactor_ctx) = (session.clone(), ctx.clone());
    let connection = match connection::catch(|| factory(&handshake)) {
        Ok(endpoint) => futures::future::Either::Left(
            connection::run(endpoint, upgraded, session, handshake, limits, ctx, deflate).map(drop),
        ),
        Err(panic) => {
            warn!(session = %session.id(), %panic, "endpoint factory panicked");
            // Boxed: a refusal is rare, and its future (a close timeout inside) is larger.
            futures::future::Either::Right(Box::pin(connection::refuse(upgraded, session, ctx)))
        }
    };
    // The slot is given back with the future, wherever it runs.
    let connection = connection.map(move |()| drop(slot));
    to_reactor(connection, handle, &reactor_ctx, tracked)
}

/// What a connection task starts from.
pub(crate) struct Start<F> {
    factory: Arc<F>,
    limits: Arc<MessageLimits>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    session: Session,
    slot: ConnectionSlot,
    ctx: Arc<ConnectionContext>,
    deflate: Option<DeflateParams>,
    /// Keeps the server's drain waiting while the connection lives, also in the reactor.
    tracked: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl<F> Start<F> {
    /// Moves the arguments out, freeing the box at once (the point of the box is the size of
    /// the async block that captures it).
    #[allow(clippy::boxed_local)]
    fn unbox(start: Box<Self>) -> Self {
        *start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HookResult, Message};

    #[derive(Default)]
    struct Echo;

    impl Endpoint for Echo {
        fn config() -> EndpointConfig {
            EndpointConfig::new("/e")
        }
        async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
            Ok(Some(m))
        }
    }

    /// The task of a connection is its one allocation besides the session: printed by
    /// `cargo test -p endpoint-runtime task_size -- --nocapture`.
    #[test]
    fn task_size() {
        fn size_of_task<A, F: Future>(_: fn(A) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let task = size_of_task(connection_task::<Echo, fn(&Handshake) -> Echo>);
        eprintln!("connection task: {task} bytes");
        // What a plain TCP connection keeps boxed in the reactor while it waits: the driver's
        // future, the refusal's (boxed: it is rare) and the slot.
        #[allow(clippy::type_complexity)]
        fn size_of_boxed<A, B, C, D, G, H, I, J, F>(
            _: fn(A, B, C, D, G, H, I, J) -> Option<F>,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        let boxed = size_of_boxed(connect::<Echo, fn(&Handshake) -> Echo>);
        eprintln!("a waiting connection's future: {boxed} bytes");
        assert!(
            boxed <= 304,
            "a waiting connection's future grew to {boxed} bytes"
        );
        // 304 bytes (312 with every feature): the task of a TLS or HTTP/2 connection for its
        // whole life; a plain TCP connection's task ends once it handed the connection to the
        // reactor.
        assert!(task <= 312, "the connection task grew to {task} bytes");
    }
}
