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
//! * A connection's future lives in a [`Conn`], not in a task. Waking it hands it to a
//!   *runner* (below) that polls the future until it waits again (an *activation*): a waiting
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
//!
//! # Runners
//!
//! An activation first was a task of its own, spawned at each wake-up and ended when the
//! future waited. That took idle memory to 0.91 KiB per connection, but every wake-up paid a
//! task: tokio's cells are 128-byte aligned, so a `posix_memalign` and a `free`, about 740
//! instructions a spawn, and the 20-byte echo went from 3,030 to 3,546 instructions per
//! message (`bench/profile endpoint callgrind 3`). Letting each activation linger one turn of
//! the scheduler for another wake-up recovered most of it (3,206), but the many lingering cells
//! fragmented the heap while connections opened (0.96 KiB idle, 1.02 with deflate).
//!
//! So activations run on a pool of long-lived tasks, the *runners*. A runner runs one
//! connection at a time (no connection waits behind another's poll) and, when that one waits,
//! parks itself on the reactor's stack of idle runners. [`Conn::schedule`] pops the runner
//! parked last (its cache still warm), puts the connection in its slot and wakes it: no
//! allocation. Only when no runner is idle does it spawn one (a task and its small shared
//! `Runner`), which joins the pool when its connection waits, unless [`IDLE_RUNNERS`] are idle
//! already: then it ends. The pool grows to the connections run at the same time (a batch of
//! the reactor's events, a broadcast's recipients), up to that bound, and stays there, so the
//! runners' cells are not freed and allocated again among the connections'. With it the echo
//! takes 3,253 instructions per message, with about 200 runners spawned in the whole run
//! (startup included; the rest of the difference with 3,030 is, presumably, the reactor's own
//! work: its epoll set, the schedule and the hand-off), and idle memory fell from 0.90 to
//! 0.82 KiB per connection (0.93 to 0.90 with deflate).
//!
//! An idle runner holds no connection and only a `Weak` of the reactor: when the server's
//! reactor is dropped it wakes them, and they end. A runner never holds a connection's future
//! lock while it waits (the activation's `Pending` after a wake-up during the poll leaves it
//! unlocked), so the end of a drain ([`Reactor::abort_all`]) and the runtime's shutdown
//! (`ClearOnDrop`) drop every future as before.

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
    /// The runners waiting for a connection to run, the one parked last on top (taken first).
    idle: Mutex<Vec<Arc<Runner>>>,
    /// Every runner spawned, for the tests to count them and see them end.
    #[cfg(test)]
    spawned: Arc<Mutex<Vec<Weak<Runner>>>>,
    /// Every connection started, for the tests to see them end.
    #[cfg(test)]
    started: Arc<Mutex<Vec<Weak<Conn>>>>,
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
            idle: Mutex::new(Vec::new()),
            #[cfg(test)]
            spawned: Arc::default(),
            #[cfg(test)]
            started: Arc::default(),
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
        #[cfg(test)]
        lock(&self.started).push(Arc::downgrade(&conn));
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
        // Its task holds a `Weak`: woken, it finds the reactor gone and ends. So do the idle
        // runners.
        let _ = self.wake.wake();
        let idle = std::mem::take(&mut *lock(&self.idle));
        for runner in idle {
            let waker = lock(&runner.slot).waker.take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
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
            run(self);
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

/// Idle runners a reactor keeps at most; a runner whose connection waits when this many are
/// idle ends (see the module docs for the figure).
const IDLE_RUNNERS: usize = 64;

/// Runs a scheduled connection: hands it to an idle runner, or spawns a runner for it when
/// none is idle.
fn run(conn: Arc<Conn>) {
    let runner = lock(&conn.reactor.idle).pop();
    match runner {
        Some(runner) => {
            let waker = {
                let mut slot = lock(&runner.slot);
                slot.conn = Some(conn);
                slot.waker.take()
            };
            // An idle runner always left its waker (see `RunnerTask::poll`). Woken outside
            // the lock, which the runner takes next.
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        None => {
            let runner = Arc::new(Runner::default());
            #[cfg(test)]
            lock(&conn.reactor.spawned).push(Arc::downgrade(&runner));
            let runtime = conn.reactor.runtime.clone();
            drop(runtime.spawn(RunnerTask {
                runner,
                reactor: Arc::downgrade(&conn.reactor),
                conn: Some(conn),
                parked: false,
            }));
        }
    }
}

/// What a runner's task shares with the reactor's idle stack: the connection handed to it,
/// and how to wake it.
#[derive(Default)]
struct Runner {
    slot: Mutex<RunnerSlot>,
}

#[derive(Default)]
struct RunnerSlot {
    /// Given by [`run`] to an idle runner, taken by the runner.
    conn: Option<Arc<Conn>>,
    /// The runner's task, left while it is idle (taken by the wake-up).
    waker: Option<std::task::Waker>,
}

/// A runner: a long-lived task that polls one [`Conn`] at a time until it waits, then waits in
/// the reactor's idle stack for the next one (or ends when enough runners are idle).
struct RunnerTask {
    runner: Arc<Runner>,
    /// Not an `Arc`: an idle runner keeps nothing alive, and ends when the reactor is gone.
    reactor: Weak<Reactor>,
    /// The connection it runs (`None` while idle).
    conn: Option<Arc<Conn>>,
    /// Pushed on the idle stack (perhaps taken from it since, with a connection in the slot).
    parked: bool,
}

impl Future for RunnerTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(conn) = &this.conn {
                // Pending: woken while it ran, polled again after a turn of the scheduler.
                std::task::ready!(conn.activate(cx));
                this.conn = None;
                let Some(reactor) = this.reactor.upgrade() else {
                    return Poll::Ready(());
                };
                // The waker first: the runner can be given a connection once on the stack.
                this.runner.set_waker(cx);
                let mut idle = lock(&reactor.idle);
                if idle.len() >= IDLE_RUNNERS {
                    return Poll::Ready(());
                }
                idle.push(this.runner.clone());
                this.parked = true;
                drop(idle);
                // Perhaps the last `Arc`: the reactor's drop wakes the idle runners, this
                // one included.
                drop(reactor);
            }
            let mut slot = lock(&this.runner.slot);
            if let Some(conn) = slot.conn.take() {
                drop(slot);
                this.parked = false;
                this.conn = Some(conn);
                continue;
            }
            if this.reactor.strong_count() == 0 {
                return Poll::Ready(());
            }
            // Polled while idle without a connection (a wake-up from before it parked, or the
            // reactor being dropped meanwhile): waits again.
            if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                slot.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
    }
}

impl Runner {
    fn set_waker(&self, cx: &Context<'_>) {
        let mut slot = lock(&self.slot);
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
    }
}

impl Drop for RunnerTask {
    fn drop(&mut self) {
        // Dropped while idle (the runtime shutting down): off the stack, so that no
        // connection is handed to a task that is gone.
        if self.parked {
            if let Some(reactor) = self.reactor.upgrade() {
                lock(&reactor.idle).retain(|r| !Arc::ptr_eq(r, &self.runner));
            }
        }
        // Its own waker, which would keep the task's memory while the `Runner` lives.
        let conn = {
            let mut slot = lock(&self.runner.slot);
            slot.waker = None;
            slot.conn.take()
        };
        drop(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    use crate::test::TestServer;
    use crate::{Endpoint, EndpointConfig, HookResult, Message, Server};

    #[derive(Default)]
    struct Echo;

    impl Endpoint for Echo {
        fn config() -> EndpointConfig {
            EndpointConfig::new("/echo")
        }
        async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
            Ok(Some(message))
        }
    }

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn clients(addr: std::net::SocketAddr, n: usize) -> Vec<Client> {
        let mut clients = Vec::new();
        for _ in 0..n {
            let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo"))
                .await
                .unwrap();
            clients.push(ws);
        }
        clients
    }

    /// Every client sends `rounds` messages, all of them before awaiting their echoes.
    async fn echo(clients: &mut [Client], rounds: usize) {
        for round in 0..rounds {
            for ws in clients.iter_mut() {
                ws.send(WsMessage::text(format!("m{round}"))).await.unwrap();
            }
            for ws in clients.iter_mut() {
                let echoed = ws.next().await.unwrap().unwrap();
                assert_eq!(echoed, WsMessage::text(format!("m{round}")));
            }
        }
    }

    fn spawned(reactor: &Reactor) -> usize {
        lock(&reactor.spawned).len()
    }

    /// A connection woken while a runner is idle is given to it: the runners spawned stay
    /// as many as the connections run at the same time, however many messages they echo (a
    /// task per activation would spawn one per message at least).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_runners_run_the_next_activations() {
        let server = TestServer::start(Server::new().endpoint::<Echo>()).await;
        let mut clients = clients(server.addr(), 4).await;
        echo(&mut clients, 5).await;
        let reactor = server
            .handle()
            .reactor()
            .expect("the reactor runs the connections");
        let before = spawned(&reactor);
        echo(&mut clients, 200).await;
        let after = spawned(&reactor);
        // At most one runner per connection running at once, and a margin for the
        // scheduler; 800 messages echoed.
        assert!(
            after - before <= 8,
            "{} runners spawned for 800 echoes ({before} before)",
            after - before
        );
        assert!(
            lock(&reactor.idle).len() <= IDLE_RUNNERS,
            "more idle runners than kept"
        );
        drop(reactor);
        server.shutdown().await;
    }

    /// When the server has stopped, nothing the runner pool holds keeps a connection or the
    /// reactor alive (idle runners hold no connection, and only a `Weak` of the reactor).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runners_keep_nothing_alive_after_the_server_stops() {
        let server = TestServer::start(Server::new().endpoint::<Echo>()).await;
        let mut clients = clients(server.addr(), 3).await;
        echo(&mut clients, 50).await;
        let reactor = server
            .handle()
            .reactor()
            .expect("the reactor runs the connections");
        assert!(
            !lock(&reactor.idle).is_empty(),
            "the connections wait, their runners are idle"
        );
        let conns = reactor.started.clone();
        let reactor = {
            let weak = Arc::downgrade(&reactor);
            drop(reactor);
            weak
        };
        // The handle goes with the server: nothing of the test holds the server's state.
        let stop = tokio::spawn(server.shutdown());
        // Each client is closed with 1001, then its connection ends.
        for ws in &mut clients {
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
        stop.await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let live = lock(&conns).iter().filter(|c| c.strong_count() > 0).count();
            // And the reactor itself (its epoll set, its waker): the server's state held it.
            if live == 0 && reactor.strong_count() == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{live} connections alive after the server stopped, the reactor {}",
                if reactor.strong_count() == 0 {
                    "gone"
                } else {
                    "alive"
                }
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The clients still hold their sockets: the server's side is closed.
        for ws in &mut clients {
            assert!(matches!(ws.next().await, None | Some(Err(_))));
        }
    }

    /// Idle runners are reused without the server around it, and end when the reactor is
    /// dropped: they keep neither it nor a connection alive.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_runners_end_with_the_reactor() {
        let reactor = Reactor::start().unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        let mut senders = Vec::new();
        let mut conns = Vec::new();
        let (ack, mut acks) = tokio::sync::mpsc::unbounded_channel::<()>();
        for _ in 0..3 {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let ack = ack.clone();
            let future = async move {
                while rx.recv().await.is_some() {
                    let _ = ack.send(());
                }
            };
            let conn = Conn::new(reactor.clone(), tracker.token(), future);
            conns.push(Arc::downgrade(&conn));
            conn.schedule();
            senders.push(tx);
        }
        // Each message wakes a connection that waits: an activation each.
        for _ in 0..300 {
            for tx in &senders {
                tx.send(()).unwrap();
            }
            for _ in &senders {
                acks.recv().await.unwrap();
            }
        }
        let runners = reactor.spawned.clone();
        let spawned = lock(&runners).len();
        assert!(spawned <= 8, "{spawned} runners spawned for 900 wake-ups");
        assert!(!lock(&reactor.idle).is_empty());
        drop(senders);
        drop(reactor);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let conns = conns.iter().filter(|c| c.strong_count() > 0).count();
            let runners = lock(&runners)
                .iter()
                .filter(|r| r.strong_count() > 0)
                .count();
            if conns == 0 && runners == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{conns} connections and {runners} runners alive after the reactor's end"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

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
