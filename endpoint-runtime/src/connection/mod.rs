//! The connection: one task per WebSocket connection, from the completed upgrade to `on_close`.
//!
//! | file | what it holds |
//! |---|---|
//! | `driver` | the task: the endpoint's hooks one at a time, the outbound queue drained meanwhile, every ending funnelled into one `on_close`; **the one place where a [`Session`](crate::Session) meets its bytes** |
//! | `io` | frames read from and written to the transport through per-thread scratch buffers |
//! | `transport` | the TCP or TLS stream recovered from hyper's upgrade |
//! | `timer` | keep-alive and idle deadlines of all connections, one watcher task per server |
//! | `reactor` | plain TCP connections: their sockets in an epoll set of the server's own, their futures run by short activations instead of a task each, so a waiting connection holds neither a task nor tokio's registration |
//!
//! Below the driver nothing names the user's types: `io` and `transport` see bytes, frames
//! (`protocol/`) and the place a plain TCP stream lives (the session's outbound queue, which
//! broadcasts write to directly), as hyper's `conn` sees bytes and `dispatch` alone sees the
//! user's service.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::config::Limits;
use crate::stats::Counters;

mod driver;
mod io;
pub(crate) mod reactor;
pub(crate) mod timer;
mod transport;

pub(crate) use driver::{catch, refuse, run};

/// What every connection of one server shares; each driver holds it from its start.
pub(crate) struct ConnectionContext {
    pub(crate) limits: Limits,
    pub(crate) counters: Arc<Counters>,
    /// Keep-alive and idle deadlines of all connections.
    pub(crate) timers: timer::Timers,
    /// Set when the server starts shutting down: a connection that opens from then on is
    /// closed with 1001 at once.
    pub(crate) shutting_down: AtomicBool,
    /// Open WebSocket sessions (upgraded, not yet finished), against `max_connections`.
    pub(crate) open: AtomicUsize,
    /// The connections are a client's (`client/`): frames go out masked.
    pub(crate) client: bool,
    /// The reactor of the plain TCP connections, started with the first one (`None` when
    /// it could not start: those connections are then closed).
    pub(crate) reactor: OnceLock<Option<Arc<reactor::Reactor>>>,
}

impl ConnectionContext {
    /// The connection reactor, started on the current runtime at the first call.
    pub(crate) fn reactor(&self) -> Option<&Arc<reactor::Reactor>> {
        self.reactor
            .get_or_init(|| match reactor::Reactor::start() {
                Ok(reactor) => Some(reactor),
                Err(e) => {
                    tracing::error!(error = %e, "the connection reactor could not start");
                    None
                }
            })
            .as_ref()
    }
}

/// Counts an open session against [`Limits::max_connections`] until dropped.
pub(crate) struct ConnectionSlot(Arc<ConnectionContext>);

impl ConnectionSlot {
    /// A slot, or `None` at `max_connections`.
    pub(crate) fn acquire(connections: &Arc<ConnectionContext>) -> Option<Self> {
        let max = connections.limits.max_connections;
        connections
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(connections.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}
