//! The connection reactor: plain TCP WebSocket connections without a task of their own while
//! they wait, and without tokio's per-socket registration.
//!
//! An idle connection is what a WebSocket server holds most of. Run the usual way, each one
//! keeps a tokio task (its cell 128-byte aligned, the connection future inside) and tokio's
//! `ScheduledIo` for its socket (an `Arc` of a 128-byte-aligned value): about 1 KiB before the
//! session itself. uWebSockets keeps a socket and its user data in one allocation and no task;
//! this module is the same idea on tokio:
//!
//! * The sockets are registered, edge-triggered, with an epoll set of the server's own
//!   (`mio::Poll`), which tokio watches as one file descriptor (`AsyncFd`): one task, the
//!   reactor's, turns its events into readiness bits in the session (`Outbound::ready`, used
//!   by `transport.rs`) and wakes the connections.
//! * A connection's future lives in a [`Conn`], not in a task. Waking it spawns a short task
//!   (an *activation*) that polls the future until it waits again, then ends: a waiting
//!   connection is its future, boxed, and the `Conn` around it (about 80 bytes).
//!
//! Hand-written because no crate does this: async executors own their tasks for their whole
//! life (`async-task` included: a task is its allocation), and tokio offers no readiness
//! callback without a registration per socket.
//!
//! Every wake-up of a connection goes through [`Conn::schedule`], whatever woke it (the
//! reactor, a queued message, the server's timers, a tokio timer or channel inside a hook):
//! the future is always polled with the `Conn`'s waker. The state machine is tokio's task
//! state reduced to what one future needs (idle, scheduled, running, notified, done, and an
//! abort flag for the end of a shutdown drain).

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::{waker_ref, ArcWake};
use mio::{Events, Interest, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::warn;

use super::transport::{READ, TICK, WRITE};
use crate::session::Session;
use crate::util::lock;

/// The reactor's own token: the `mio::Waker` that tells its task the reactor was dropped.
const WAKE: Token = Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// A server's epoll set of plain TCP connections, and the table of its tokens.
pub(crate) struct Reactor {
    registry: mio::Registry,
    conns: Mutex<Slab<Entry>>,
    runtime: tokio::runtime::Handle,
    wake: mio::Waker,
}

/// A registered connection: the session (whose `Outbound::ready` the events set) and the
/// connection to wake.
struct Entry {
    session: Session,
    conn: Arc<Conn>,
}

impl Reactor {
    /// A reactor on the current tokio runtime, with its task spawned.
    pub(crate) fn start() -> io::Result<Arc<Reactor>> {
        let poll = mio::Poll::new()?;
        let reactor = Arc::new(Reactor {
            registry: poll.registry().try_clone()?,
            wake: mio::Waker::new(poll.registry(), WAKE)?,
            conns: Mutex::new(Slab::new()),
            runtime: tokio::runtime::Handle::current(),
        });
        // The safe constructor, deprecated for a descriptor that could be closed while
        // registered: this one is owned by the `AsyncFd` itself (the `mio::Poll` inside), so
        // it cannot be (and the crate forbids `unsafe`).
        #[allow(deprecated)]
        let poll = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        reactor
            .runtime
            .spawn(run_reactor(poll, Arc::downgrade(&reactor)));
        Ok(reactor)
    }

    /// Registers `session`'s TCP stream and starts `conn` (its first activation).
    ///
    /// # Errors
    /// When the session holds no stream, or epoll refuses it (its limit of watches); the
    /// connection's future is dropped then, which closes the socket.
    pub(crate) fn start_conn(&self, session: Session, conn: Arc<Conn>) -> io::Result<()> {
        let fd = session
            .outbound()
            .with_stream(|s| s.map(|s| s.as_raw_fd()))
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        {
            // Under the table's lock: no event for the token is looked up before its entry.
            let mut conns = lock(&self.conns);
            let entry = conns.vacant_entry();
            let key = entry.key();
            let Ok(key32) = u32::try_from(key) else {
                return Err(io::Error::other("too many connections for the reactor"));
            };
            self.registry.register(
                &mut mio::unix::SourceFd(&fd),
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conn.key.store(key32, Ordering::Release);
            entry.insert(Entry {
                session,
                conn: conn.clone(),
            });
        }
        conn.schedule();
        Ok(())
    }

    /// Forgets a finished connection (its socket is closed already, which took it out of the
    /// epoll set).
    fn remove(&self, conn: &Arc<Conn>) {
        let key = conn.key.load(Ordering::Acquire) as usize;
        let entry = {
            let mut conns = lock(&self.conns);
            match conns.get(key) {
                Some(e) if Arc::ptr_eq(&e.conn, conn) => Some(conns.remove(key)),
                _ => None,
            }
        };
        drop(entry);
    }

    /// Drops every connection left (the end of a shutdown drain): each future is dropped by
    /// an activation of its own, as an aborted tokio task would be.
    pub(crate) fn abort_all(&self) {
        let conns: Vec<Arc<Conn>> = lock(&self.conns)
            .iter()
            .map(|(_, e)| e.conn.clone())
            .collect();
        for conn in conns {
            conn.abort();
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // Its task holds a `Weak`: woken, it finds the reactor gone and ends.
        let _ = self.wake.wake();
    }
}

/// The reactor's task: waits until the epoll set has events, turns each into readiness bits
/// and a wake-up, until the reactor is dropped.
async fn run_reactor(mut poll: AsyncFd<mio::Poll>, reactor: Weak<Reactor>) {
    // Dropped with the runtime: the connections it holds are dropped too (they would keep
    // each other alive otherwise: a connection's future holds the server's context).
    let _clear = ClearOnDrop(reactor.clone());
    let mut events = Events::with_capacity(EVENTS);
    let mut woken: Vec<Arc<Conn>> = Vec::new();
    loop {
        let Ok(mut guard) = poll.readable_mut().await else {
            return;
        };
        // Cleared first: an event that comes after the `epoll_wait` below makes the set
        // readable again.
        guard.clear_ready();
        loop {
            if let Err(e) = guard
                .get_inner_mut()
                .poll(&mut events, Some(Duration::ZERO))
            {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!(error = %e, "connection reactor failed");
                return;
            }
            let Some(reactor) = reactor.upgrade() else {
                return;
            };
            let mut n = 0;
            {
                let conns = lock(&reactor.conns);
                for event in events.iter() {
                    n += 1;
                    let Some(entry) = conns.get(event.token().0) else {
                        continue;
                    };
                    let mut bits = 0;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        bits |= READ;
                    }
                    if event.is_writable() || event.is_write_closed() || event.is_error() {
                        bits |= WRITE;
                    }
                    let ready = &entry.session.outbound().ready;
                    let _ = ready.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                        Some(v.wrapping_add(TICK) | bits)
                    });
                    woken.push(entry.conn.clone());
                }
            }
            // Outside the table's lock: an activation that ends at once removes its entry.
            for conn in woken.drain(..) {
                conn.schedule();
            }
            drop(reactor);
            if n < EVENTS {
                break;
            }
        }
    }
}

/// Drops the reactor's connections when its task is dropped while the reactor lives (the
/// runtime shutting down).
struct ClearOnDrop(Weak<Reactor>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        let Some(reactor) = self.0.upgrade() else {
            return;
        };
        let conns = std::mem::take(&mut *lock(&reactor.conns));
        for (_, entry) in conns {
            // The future is dropped here, as the runtime drops a task's: a waiting
            // connection's session holds its waker, which holds the `Conn`, so dropping the
            // entry alone would keep the socket open. (An activation that still runs holds the
            // lock: it drops the future itself when it ends.)
            entry.conn.state.store(DONE, Ordering::Release);
            let future = entry.conn.future.try_lock().ok().and_then(|mut f| f.take());
            drop(future);
        }
    }
}

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;
const STATE: u8 = 0b111;
/// Drop the future at the next activation instead of polling it.
const ABORT: u8 = 0b1000;

/// The future of a connection, between activations (see the module docs).
pub(crate) struct Conn {
    state: AtomicU8,
    /// Its token in the reactor's table (`u32::MAX` until registered); 32 bits, beside the
    /// state, keep a `Conn` in 64 bytes with the allocator's header.
    key: AtomicU32,
    reactor: Arc<Reactor>,
    /// Locked only by the activation that runs it (the state says which), so never waited on.
    future: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl Conn {
    /// A connection of `reactor` running `future`; `tracked` keeps the server's drain waiting
    /// for it, as its task did (inside the future: it ends with it).
    pub(crate) fn new(
        reactor: Arc<Reactor>,
        tracked: TaskTrackerToken,
        future: impl Future<Output = ()> + Send + 'static,
    ) -> Arc<Conn> {
        let future = with_token(future, tracked);
        Arc::new(Conn {
            state: AtomicU8::new(IDLE),
            key: AtomicU32::new(u32::MAX),
            reactor,
            future: Mutex::new(Some(Box::pin(future))),
        })
    }

    /// Wakes the connection: an activation is spawned unless one is running or due.
    pub(crate) fn schedule(self: Arc<Self>) {
        let mut now = self.state.load(Ordering::Acquire);
        loop {
            let next = match now & STATE {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self.state.compare_exchange_weak(
                now,
                (now & ABORT) | next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if now & STATE == IDLE {
            let runtime = self.reactor.runtime.clone();
            drop(runtime.spawn(Activation(self)));
        }
    }

    fn abort(self: Arc<Self>) {
        self.state.fetch_or(ABORT, Ordering::AcqRel);
        self.schedule();
    }

    /// One activation's poll: runs the future until it waits with nothing new to do.
    fn activate(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<()> {
        let was = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some(RUNNING | (s & ABORT))
            })
            .unwrap_or(RUNNING);
        let mut slot = lock(&self.future);
        let done = match slot.as_mut() {
            Some(_) if was & ABORT != 0 => true,
            Some(future) => {
                let waker = waker_ref(self);
                future
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
            }
            None => true,
        };
        if done {
            // Dropped outside the lock: what its drop wakes finds the state running.
            let future = slot.take();
            drop(slot);
            drop(future);
            self.state.store(DONE, Ordering::Release);
            self.reactor.remove(self);
            return Poll::Ready(());
        }
        drop(slot);
        let mut now = self.state.load(Ordering::Acquire);
        loop {
            let next = if now & STATE == NOTIFIED {
                SCHEDULED
            } else {
                IDLE
            };
            match self.state.compare_exchange_weak(
                now,
                (now & ABORT) | next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if next == IDLE => return Poll::Ready(()),
                Ok(_) => {
                    // Woken while it ran: polled again by the same activation after a turn
                    // of the scheduler (and a fresh cooperative budget).
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(actual) => now = actual,
            }
        }
    }
}

/// `future`, then `tracked` dropped. A combinator, not an `async` block: a block would keep
/// the future twice (captured, and as the awaited value), twice the bytes of every waiting
/// connection.
fn with_token<F: Future<Output = ()>>(
    future: F,
    tracked: TaskTrackerToken,
) -> impl Future<Output = ()> {
    futures::FutureExt::map(future, move |()| drop(tracked))
}

impl ArcWake for Conn {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.clone().schedule();
    }

    fn wake(self: Arc<Self>) {
        self.schedule();
    }
}

/// A task that polls a [`Conn`] until it waits.
struct Activation(Arc<Conn>);

impl Future for Activation {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.activate(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a waiting connection holds besides its future and its session: a `Conn` (in an
    /// `Arc`) and its entry in the reactor's table. 56 bytes with the `Arc`'s counts fit the
    /// allocator's 64-byte chunk (with its 8-byte header). Printed by
    /// `cargo test -p endpoint-runtime conn_size -- --nocapture`.
    #[test]
    fn conn_size() {
        // The future a `Conn` boxes is the connection's and the tracker's token, no more.
        let future = [0u64; 50];
        let connection = async move {
            std::hint::black_box(&future);
        };
        let inner = std::mem::size_of_val(&connection);
        let tracker = tokio_util::task::TaskTracker::new();
        let boxed = std::mem::size_of_val(&with_token(connection, tracker.token()));
        assert!(boxed <= inner + 16, "{inner} bytes boxed as {boxed}");
        let conn = std::mem::size_of::<Conn>();
        let entry = std::mem::size_of::<Entry>();
        eprintln!("Conn: {conn} bytes (+16 for the Arc's counts), table entry: {entry} bytes");
        assert!(conn + 16 <= 56, "Conn grew to {conn} bytes");
        assert!(
            entry <= 16,
            "the reactor's table entry grew to {entry} bytes"
        );
    }
}
