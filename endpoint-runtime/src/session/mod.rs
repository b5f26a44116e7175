//! [`Session`]: the handle to one open WebSocket connection.
//!
//! A `Session` is cheap to clone (`Arc`), `Send + Sync`, and can be used from any task. Sends go
//! through a bounded outbound queue (bounded by bytes, [`Limits::outbound_queue_bytes`]) that the
//! connection's own task drains into the socket, flushing once per batch.
//!
//! # Ordering and backpressure
//!
//! Messages sent from one task arrive in the order they were sent. Messages sent concurrently
//! from several tasks are interleaved, each message whole: there is no `TEXT_FULL_WRITING` state
//! to trip over. [`Session::send`] waits while the queue is full; [`Session::try_send`] never
//! waits and reports [`SendError::Full`] instead.
//!
//! # Where things live
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Session`] (the handle) and [`SessionId`] |
//! | `outbound/` | the byte-bounded outbound queue: shared core, sending side, receiving side |
//! | `request` | what the upgrade request said, in one compact block |
//! | `properties` | [`Properties`], typed per-connection values |
//! | `handshake` | [`Handshake`], what `on_open` reads of the handshake |
//! | `registry` | the open sessions of one endpoint and its room table |
//!
//! Room membership and broadcast (`join`, `leave`, `room`, `broadcast`, ...) are methods of
//! [`Session`] too, written in the rooms wing (`rooms/membership.rs`).
//!
//! [`Limits::outbound_queue_bytes`]: crate::Limits::outbound_queue_bytes

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, Uri};

use crate::error::{EndpointError, SendError};
use crate::message::{CloseReason, Encode, Message};
use crate::protocol::deflate::Sharing;
use crate::state::State;
use crate::util::lock;

mod handshake;
pub(crate) mod outbound;
mod properties;
pub(crate) mod registry;
pub(crate) mod request;
pub(crate) mod stream;
mod writer;

pub use handshake::Handshake;
#[cfg(feature = "io-uring")]
pub(crate) use outbound::{Claim, DirectSocket, Held};
pub(crate) use outbound::{OnFull, Outbound, PendingClose, Pushed};
pub use properties::Properties;
pub(crate) use registry::EndpointRegistry;
pub(crate) use request::RequestInfo;
pub use stream::{BinaryStream, MessageStream, TextStream};
pub use writer::{BinaryWriter, TextWriter};

/// A session identifier, unique within the process. Displays as a decimal number.
///
/// ```
/// # use endpoint_runtime::SessionId;
/// assert_eq!(SessionId::from_u64(7).to_string(), "7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    pub(crate) fn next() -> SessionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number behind the id.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// An id from a number (for tests and lookups).
    pub fn from_u64(id: u64) -> Self {
        SessionId(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A session's state, one allocation per connection (see the `session_size` test).
///
/// In declaration order (`repr(C)`): `open` and `sharing` last, just before `out`, whose first
/// bytes are what a broadcast touches per recipient (see `Outbound`'s layout). The order of
/// the others keeps the struct free of padding.
#[repr(C)]
pub(crate) struct SessionInner {
    pub(crate) id: SessionId,
    pub(crate) endpoint: Arc<EndpointRegistry>,
    pub(crate) request: RequestInfo,
    pub(crate) properties: Properties,
    /// Display name for cluster-wide presence.
    pub(crate) name: Mutex<Option<Arc<str>>>,
    /// The connection task, aborted if it outlives the shutdown drain; `None` for a
    /// connection run by the reactor (`connection/reactor.rs`), which the reactor aborts.
    pub(crate) task: Mutex<Option<tokio::task::AbortHandle>>,
    /// The rooms this session is in; `None` once it closed (joining is refused from then on).
    /// A boxed slice rather than a `Vec`: joins and leaves are rare, and a `Vec` would hold
    /// room for four names from the first join on.
    pub(crate) rooms: Mutex<Option<Box<[Arc<str>]>>>,
    /// Idle timeout in milliseconds; 0 = none.
    pub(crate) idle_timeout_ms: AtomicU32,
    /// What a broadcast may share with this session (`protocol::deflate::Sharing`, packed).
    pub(crate) sharing: u16,
    pub(crate) open: AtomicBool,
    /// Set once the connection went to the reactor: a task handle given later is not kept.
    /// (In the byte of padding before `out`.)
    pub(crate) detached: AtomicBool,
    pub(crate) out: Outbound,
}

/// One open WebSocket connection, as seen by handlers and by any task holding a clone.
///
/// The counterpart of Jakarta's `Session` together with its `RemoteEndpoint`s: sending, closing,
/// the handshake data, user properties, and the other open sessions of the same endpoint.
///
/// # Examples
///
/// Sending from a spawned task:
///
/// ```
/// use endpoint_runtime::Session;
///
/// fn start_ticker(session: &Session) {
///     let session = session.clone();
///     tokio::spawn(async move {
///         for n in 0..3 {
///             // waits for room in the queue; fails once the session is closed
///             if session.send(format!("tick {n}")).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

impl Session {
    /// A new open session of `endpoint`, with a queue of `queue_limit` bytes.
    pub(crate) fn new(
        request: RequestInfo,
        properties: Properties,
        endpoint: Arc<EndpointRegistry>,
        queue_limit: usize,
        idle_timeout: Option<Duration>,
        sharing: Sharing,
    ) -> Session {
        Session {
            inner: Arc::new(SessionInner {
                id: SessionId::next(),
                out: Outbound::new(queue_limit),
                open: AtomicBool::new(true),
                sharing: sharing.pack(),
                request,
                properties,
                endpoint,
                rooms: Mutex::new(Some(Box::default())),
                name: Mutex::new(None),
                task: Mutex::new(None),
                detached: AtomicBool::new(false),
                idle_timeout_ms: AtomicU32::new(idle_timeout.map_or(0, duration_ms)),
            }),
        }
    }

    /// The session's id, unique within the process.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// Queues a message for the peer, waiting while the outbound queue is full, at most the
    /// session's [send timeout](Session::set_send_timeout). Resolves once the message is
    /// queued; [`Session::send_flushed`] resolves once it is written to the socket.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the session is closed or closing; [`SendError::Encode`] when
    /// the value cannot be encoded; [`SendError::Timeout`] when the queue had no room within
    /// the send timeout: the peer is not reading, and the session is being closed with 1008
    /// (`on_error` gets [`EndpointError::SendTimeout`]), as Tomcat closes a session whose
    /// blocking send timed out. The timeout also bounds a handler that awaits `send` while the
    /// peer has gone away: its connection reads nothing while the handler runs.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before it completes, the message was not queued.
    pub async fn send(&self, message: impl Encode) -> Result<(), SendError> {
        let msg = encode(message)?;
        self.push_bounded(msg.into()).await
    }

    /// Sends a message and resolves once it is **written to the socket** (handed to the
    /// kernel: Java's `Future<Void>` from `getAsyncRemote().sendText`, or its `SendHandler`),
    /// not only queued. Waiting for room and for the write together take at most the session's
    /// [send timeout](Session::set_send_timeout).
    ///
    /// Written is not received: the bytes may still be in the kernel's buffers or on the
    /// network. For the peer's word, have it answer.
    ///
    /// ```
    /// # async fn demo(session: endpoint_runtime::Session) -> Result<(), endpoint_runtime::SendError> {
    /// session.send_flushed("last words").await?;
    /// // The message is on its way: closing now cannot overtake it.
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Session::send`]; [`SendError::Closed`] also when the session ended before the
    /// message was written (including while the close handshake wrote it).
    ///
    /// # Cancel safety
    /// Dropping the future after the message was queued does not take it back: it is still
    /// sent, only not waited for.
    pub async fn send_flushed(&self, message: impl Encode) -> Result<(), SendError> {
        let msg = encode(message)?;
        let out = &self.inner.out;
        let started = tokio::time::Instant::now();
        let seq = {
            let push = out.push_tracked(msg.into());
            tokio::pin!(push);
            if let std::task::Poll::Ready(r) = futures::poll!(push.as_mut()) {
                r?
            } else {
                self.bounded(push, None).await?
            }
        };
        if out.written(seq)? {
            return Ok(());
        }
        let left = self
            .send_timeout()
            .map(|t| t.saturating_sub(started.elapsed()));
        self.bounded(out.wait_written(seq), Some(left)).await
    }

    /// The session's send timeout: how long [`send`](Session::send),
    /// [`send_flushed`](Session::send_flushed) and a handler's reply wait for room (and
    /// `send_flushed` for the write) before the session is closed as not reading (1008). Like
    /// Tomcat's `BLOCKING_SEND_TIMEOUT` user property; `None` waits as long as the session is
    /// open. Takes effect for the next send. Server default:
    /// [`Limits::send_timeout`](crate::Limits::send_timeout) (20 s).
    ///
    /// Kept with the session's [`Properties`], where it costs nothing to sessions that keep the
    /// default.
    pub fn set_send_timeout(&self, timeout: Option<Duration>) {
        self.inner.properties.insert(SendTimeout(timeout));
    }

    /// The send timeout in force (see [`Session::set_send_timeout`]).
    pub fn send_timeout(&self) -> Option<Duration> {
        self.inner
            .properties
            .with(|t: &SendTimeout| t.0)
            .unwrap_or(self.inner.endpoint.sending.send_timeout)
    }

    /// Queues, waiting for room at most the send timeout: `Session::send` and the driver's
    /// replies. The timeout is looked up (and a timer made) only when the queue is full.
    pub(crate) async fn push_bounded(
        &self,
        msg: crate::protocol::frame::Outgoing,
    ) -> Result<(), SendError> {
        let push = self.inner.out.push(msg);
        tokio::pin!(push);
        if let std::task::Poll::Ready(r) = futures::poll!(push.as_mut()) {
            return r;
        }
        self.bounded(push, None).await
    }

    /// Runs `fut` for at most `limit` (`None`: the send timeout); past it the session is closed
    /// as not reading and `SendError::Timeout` returned.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, SendError>>,
        limit: Option<Option<Duration>>,
    ) -> Result<T, SendError> {
        let full = self.send_timeout();
        let Some(limit) = limit.unwrap_or(full) else {
            return fut.await;
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => {
                let after = full.unwrap_or(limit);
                self.inner
                    .out
                    .request_close(PendingClose::SendTimeout(after));
                Err(SendError::Timeout(after))
            }
        }
    }

    /// Queues a message without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the queue has no room, [`SendError::Closed`] once closed,
    /// [`SendError::Encode`] when the value cannot be encoded.
    pub fn try_send(&self, message: impl Encode) -> Result<(), SendError> {
        let msg = encode(message)?;
        self.inner.out.try_push(msg.into())
    }

    /// Sends a ping; the peer's pong reaches an `#[on_message]` handler taking `Pong`.
    ///
    /// # Errors
    /// As [`Session::try_send`]; a payload over 125 bytes is cut to 125.
    pub fn ping(&self, payload: impl Into<bytes::Bytes>) -> Result<(), SendError> {
        let mut payload: bytes::Bytes = payload.into();
        payload.truncate(125);
        self.inner
            .out
            .try_push_control(Message::Ping(payload).into())
    }

    /// Starts closing the session with `reason`: messages already queued are sent first, then the
    /// close frame; `on_close` runs once the close handshake ends. Further sends fail. Closing
    /// a session that is already closing does nothing (the first close wins).
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent on the wire (RFC 6455
    /// 7.4: `1005`, `1006` and `1015` are for reporting only; `1004`, codes under `1000`,
    /// unassigned `1016..=2999` and codes over `4999` are not codes at all): nothing happens
    /// then, the session stays open. Java's `Session.close` throws for these too.
    ///
    /// ```
    /// # use endpoint_runtime::{CloseCode, CloseReason, SendError, Session};
    /// fn kick(session: &Session) -> Result<(), SendError> {
    ///     session.close(CloseReason::new(CloseCode::POLICY_VIOLATION, "kicked"))
    /// }
    /// ```
    pub fn close(&self, reason: CloseReason) -> Result<(), SendError> {
        let code = reason.code();
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.as_u16()));
        }
        self.inner
            .out
            .request_close(PendingClose::Requested(reason));
        Ok(())
    }

    /// Starts closing with a reason the runtime chose (always a sendable code).
    pub(crate) fn close_internal(&self, reason: CloseReason) {
        debug_assert!(reason.code().is_sendable());
        self.inner
            .out
            .request_close(PendingClose::Requested(reason));
    }

    /// Whether the session is open: handshake done, no close sent or received.
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire) && !self.inner.out.is_closed()
    }

    /// The raw (percent-decoded) value of a path variable of the endpoint's URI template.
    ///
    /// For `/chat/{room}` and a request to `/chat/rust%20lang`, `path_param("room")` is
    /// `Some("rust lang")`.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.inner.request.path_param(name)
    }

    /// All path variables, in template order.
    pub fn path_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner.request.path_params()
    }

    /// The raw query string of the upgrade request, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.inner.request.query()
    }

    /// The first value of a query parameter, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::util::query_param(self.query()?, name)
    }

    /// Every value of a repeated query parameter, percent-decoded, in order.
    pub fn query_params(&self, name: &str) -> Vec<String> {
        self.query()
            .map(|q| crate::util::query_params(q, name))
            .unwrap_or_default()
    }

    /// The request URI of the upgrade request (path and query).
    pub fn request_uri(&self) -> &Uri {
        self.inner.request.uri()
    }

    /// The headers of the upgrade request. The session keeps them in a compact form and builds
    /// this map the first time it is asked for, then keeps it.
    ///
    /// Without those the opening handshake consumed, which the session does not keep:
    /// `Connection`, `Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and
    /// `Sec-WebSocket-Extensions` (their outcome is [`Session::subprotocol`] and
    /// [`Session::extensions`]; `Sec-WebSocket-Protocol`, the client's list, stays). A
    /// [`Configurator`](crate::Configurator) sees every header of the request.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.request.headers()
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.request.remote_addr()
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.inner.request.subprotocol()
    }

    /// The extensions negotiated in the handshake, as the server's `Sec-WebSocket-Extensions`
    /// answered them (e.g. `permessage-deflate; server_no_context_takeover`), like Jakarta's
    /// `getNegotiatedExtensions()`; `None` without any.
    ///
    /// Not kept as text (every idle connection would pay for it): the session keeps the answer
    /// in 12 bits and spells it out again here.
    pub fn extensions(&self) -> Option<String> {
        self.inner
            .request
            .extensions()
            .map(crate::protocol::deflate::response_of)
    }

    /// Whether the connection is encrypted (`wss://`), like Jakarta's `isSecure()`.
    pub fn is_secure(&self) -> bool {
        self.inner.request.secure()
    }

    /// Typed per-connection properties (set by a configurator during the handshake, or by
    /// handlers).
    pub fn properties(&self) -> &Properties {
        &self.inner.properties
    }

    /// Shared state registered with [`Server::state`](crate::Server::state).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        self.inner.endpoint.state().get::<T>()
    }

    /// A snapshot of the open sessions of the same endpoint (this one included while open), like
    /// Jakarta's `getOpenSessions()`.
    pub fn open_sessions(&self) -> Vec<Session> {
        self.inner.endpoint.snapshot()
    }

    /// The URI template of the endpoint this session belongs to.
    pub fn endpoint_path(&self) -> &'static str {
        self.inner.endpoint.path()
    }

    /// Closes the session (1001, "idle timeout") after `timeout` without a message in either
    /// direction; `None` disables it. Like Jakarta's `setMaxIdleTimeout`. Takes effect at once.
    /// Kept in milliseconds, 32 bits: a timeout over 49 days is taken as 49 days.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.inner
            .idle_timeout_ms
            .store(timeout.map_or(0, duration_ms), Ordering::Relaxed);
        self.inner.out.wake_connection();
    }

    /// The idle timeout in force.
    pub fn idle_timeout(&self) -> Option<Duration> {
        match self.inner.idle_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms.into())),
        }
    }

    /// Bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.inner.out.queued_bytes()
    }
}

/// A session's own send timeout, in its properties (see `Session::set_send_timeout`).
#[derive(Clone, Copy)]
struct SendTimeout(Option<Duration>);

/// An idle timeout in whole milliseconds, at least 1; 32 bits hold up to 49 days, and a longer
/// timeout is taken as that (which no connection notices).
fn duration_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

fn encode(message: impl Encode) -> Result<Message, SendError> {
    message.encode().map_err(|e| match e {
        EndpointError::Encode(e) => SendError::Encode(e.to_string()),
        other => SendError::Encode(other.to_string()),
    })
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("uri", &format_args!("{}", self.inner.request.uri_str()))
            .field("open", &self.is_open())
            .finish()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Session {}

impl std::hash::Hash for Session {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

/// The crate's view of a session, for the connection driver and the server: what the user's
/// handle does not show.
impl Session {
    /// The session's outbound queue (the driver uses its receiving side).
    pub(crate) fn outbound(&self) -> &Outbound {
        &self.inner.out
    }

    /// What a broadcast may share with this session (the plain frame, a payload compressed once
    /// for every recipient with the same settings, or nothing: it compresses its own).
    pub(crate) fn sharing(&self) -> Sharing {
        Sharing::unpack(self.inner.sharing)
    }

    /// The registry of the session's endpoint.
    pub(crate) fn registry(&self) -> &Arc<EndpointRegistry> {
        &self.inner.endpoint
    }

    /// Marks the session no longer open (the close handshake began or the connection ended).
    pub(crate) fn mark_ended(&self) {
        self.inner.open.store(false, Ordering::Release);
    }

    /// The idle timeout in milliseconds; 0 = none.
    pub(crate) fn idle_timeout_ms(&self) -> u32 {
        self.inner.idle_timeout_ms.load(Ordering::Relaxed)
    }

    /// Keeps the handle of the session's connection task, aborted if it outlives the
    /// shutdown drain.
    pub(crate) fn set_task(&self, task: tokio::task::AbortHandle) {
        let mut slot = lock(&self.inner.task);
        if !self.inner.detached.load(Ordering::Acquire) {
            *slot = Some(task);
        }
    }

    /// Forgets the connection task's handle: the connection went to the reactor and its
    /// first task ended (a handle would keep that task's memory allocated).
    pub(crate) fn detach_task(&self) {
        let mut slot = lock(&self.inner.task);
        self.inner.detached.store(true, Ordering::Release);
        let task = slot.take();
        drop(slot);
        drop(task);
    }

    /// Aborts the connection task (the end of a shutdown drain).
    pub(crate) fn abort_task(&self) {
        if let Some(task) = lock(&self.inner.task).as_ref() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send that finds room keeps nothing in the session's cold state; one that has to
    /// wait makes it (for its `Notify`).
    #[tokio::test]
    async fn a_send_with_room_leaves_no_cold_state() {
        let out: Outbound = Outbound::new(1024);
        out.push(Message::text("hello").into()).await.unwrap();
        assert!(!out.holds_cold(), "a send with room made the cold state");
        let full: Outbound = Outbound::new(4);
        full.push(Message::text("1234").into()).await.unwrap();
        let waiting = full.push(Message::text("more").into());
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        assert!(full.holds_cold(), "a waiting send needs the Notify");
    }

    /// Guards the memory every idle connection pays for its session: `SessionInner` is one
    /// allocation (in an `Arc`) per connection, held as long as the connection is open, so a
    /// rarely used part stored inline costs its full size on each of possibly 100,000s of idle
    /// connections. Raise the bound only for something every session needs.
    #[test]
    fn session_size() {
        use std::mem::size_of;
        let size = size_of::<SessionInner>();
        eprintln!(
            "session: {size} bytes (outbound: {}, request: {}, properties: {})",
            size_of::<Outbound>(),
            size_of::<RequestInfo>(),
            size_of::<Properties>(),
        );
        // 296 since the keep-alive deadline moved here from a timer of its own per connection,
        // kept so when the TCP stream moved here too (direct writes): the URI and headers share
        // one lazy slot, the queue is a `Vec`, rare state is boxed, the idle timeout is 32 bits.
        // 264 since the stream is a std one (the reactor's, `connection/reactor.rs`) rather
        // than tokio's with its registration handle.
        assert!(size <= 264, "SessionInner grew to {size} bytes");
    }

    /// Guards the layout a fan-out relies on (see `Outbound`'s docs): what a broadcast touches
    /// per recipient stays in 64 contiguous bytes, from `sharing` to the stream at the start of
    /// the locked state.
    #[test]
    fn what_a_broadcast_touches_is_together() {
        use std::mem::offset_of;
        let start = offset_of!(SessionInner, sharing);
        assert_eq!(offset_of!(SessionInner, open), start + 2);
        let out = offset_of!(SessionInner, out);
        assert_eq!(
            out,
            start + 4,
            "`open` and `sharing` just before the outbound queue"
        );
        let state = out + Outbound::<std::net::TcpStream>::state_offset();
        // The lock word and its poison flag, then the state: the stream first (a std stream:
        // its descriptor is its first 4 bytes).
        let end = state + 8 + 4;
        assert!(end - start <= 64, "spread over {} bytes", end - start);
    }
}
