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
//! [`Limits::outbound_queue_bytes`]: crate::Limits::outbound_queue_bytes

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use futures::task::AtomicWaker;
use http::{HeaderMap, Uri};
use tokio::sync::Notify;

use crate::broker::{BrokerLink, Member, Topic};
use crate::error::{EndpointError, SendError};
use crate::message::{CloseCode, CloseReason, Encode, Message};
use crate::room::{fan_out, Delivery, Room, RoomTable, Rooms};
use crate::server::Shared;
use crate::state::State;
use crate::util::lock;

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

/// What the HTTP upgrade request said, kept for the lifetime of the session.
///
/// Everything lives in one compact block: one allocation per session whatever the number of
/// headers and path variables, and nothing pointing into hyper's 8 KiB read buffer (which would
/// stay allocated as long as the session kept a reference into it). The `Uri` and `HeaderMap`
/// handed out by [`Session::request_uri`] and [`Session::headers`] are built from the block the
/// first time they are asked for, then kept (a `HeaderMap` costs about 100 bytes per header; an
/// idle session whose endpoint never looks at its headers should not pay that).
pub(crate) struct RequestInfo {
    /// In order: a tag byte (bit 7: TLS; low bits: the kind of peer address) and the address's
    /// fields; the URI (path and query); the subprotocol (length + 1, 0 for none); the number
    /// of path variables, then each name and value; then the headers, each name and value, up
    /// to the end. Every length and count is a LEB128 varint.
    block: Box<[u8]>,
    /// The URI and headers as `http` types, parsed together on first use (one lazy slot
    /// rather than two: 16 bytes less per session).
    parsed: OnceLock<Box<(Uri, HeaderMap)>>,
}

const SECURE: u8 = 0x80;
const NO_ADDR: u8 = 0;
const V4: u8 = 4;
const V6: u8 = 6;

impl RequestInfo {
    pub(crate) fn new(
        uri: &Uri,
        headers: &HeaderMap,
        path_params: &[(String, String)],
        remote_addr: Option<SocketAddr>,
        subprotocol: Option<&str>,
        secure: bool,
    ) -> Self {
        // The origin form is all a session needs (and what it has always kept); anything else
        // keeps the whole URI.
        let uri = match uri.path_and_query() {
            Some(pq) => std::borrow::Cow::Borrowed(pq.as_str()),
            None => std::borrow::Cow::Owned(uri.to_string()),
        };
        let secure = if secure { SECURE } else { 0 };
        let mut block = Vec::with_capacity(
            40 + uri.len()
                + path_params
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + headers
                    .iter()
                    .map(|(k, v)| k.as_str().len() + v.len() + 4)
                    .sum::<usize>(),
        );
        match remote_addr {
            None => block.push(secure | NO_ADDR),
            Some(SocketAddr::V4(a)) => {
                block.push(secure | V4);
                block.extend_from_slice(&a.ip().octets());
                block.extend_from_slice(&a.port().to_le_bytes());
            }
            Some(SocketAddr::V6(a)) => {
                block.push(secure | V6);
                block.extend_from_slice(&a.ip().octets());
                block.extend_from_slice(&a.port().to_le_bytes());
                block.extend_from_slice(&a.flowinfo().to_le_bytes());
                block.extend_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        put_field(&mut block, uri.as_bytes());
        match subprotocol {
            None => put_varint(&mut block, 0),
            Some(p) => {
                put_varint(&mut block, p.len() + 1);
                block.extend_from_slice(p.as_bytes());
            }
        }
        put_varint(&mut block, path_params.len());
        for (name, value) in path_params {
            put_field(&mut block, name.as_bytes());
            put_field(&mut block, value.as_bytes());
        }
        for (name, value) in headers {
            put_field(&mut block, name.as_str().as_bytes());
            put_field(&mut block, value.as_bytes());
        }
        RequestInfo {
            block: block.into_boxed_slice(),
            parsed: OnceLock::new(),
        }
    }

    pub(crate) fn secure(&self) -> bool {
        self.block.first().is_some_and(|t| t & SECURE != 0)
    }

    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.fields().remote
    }

    /// The URI (path and query) as it is stored.
    pub(crate) fn uri_str(&self) -> &str {
        utf8(self.fields().uri)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.uri_str().split_once('?').map(|(_, q)| q)
    }

    pub(crate) fn uri(&self) -> &Uri {
        &self.parsed().0
    }

    pub(crate) fn subprotocol(&self) -> Option<&str> {
        self.fields().subprotocol.map(utf8)
    }

    /// The path variables, in template order.
    pub(crate) fn path_params(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut params = self.fields().params;
        let n = params.varint().unwrap_or(0);
        (0..n).map_while(move |_| Some((utf8(params.field()?), utf8(params.field()?))))
    }

    pub(crate) fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.parsed().1
    }

    fn parsed(&self) -> &(Uri, HeaderMap) {
        self.parsed.get_or_init(|| {
            let uri = Uri::try_from(self.uri_str()).unwrap_or_default();
            let mut rest = self.fields().params;
            let n = rest.varint().unwrap_or(0);
            for _ in 0..n * 2 {
                rest.field();
            }
            let mut map = HeaderMap::new();
            while let (Some(name), Some(value)) = (rest.field(), rest.field()) {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(name),
                    http::HeaderValue::from_bytes(value),
                ) {
                    map.append(n, v);
                }
            }
            Box::new((uri, map))
        })
    }

    /// The fixed fields at the start of the block; `params` is positioned at the path
    /// variables' count.
    fn fields(&self) -> Fields<'_> {
        let mut r = Reader(&self.block);
        let remote = match r.bytes(1).map_or(NO_ADDR, |t| t[0] & !SECURE) {
            V4 => r.bytes(6).map(|b| {
                let ip: [u8; 4] = b[..4].try_into().unwrap_or_default();
                SocketAddr::from((ip, u16::from_le_bytes([b[4], b[5]])))
            }),
            V6 => r.bytes(26).map(|b| {
                let ip: [u8; 16] = b[..16].try_into().unwrap_or_default();
                let le4 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip.into(),
                    u16::from_le_bytes([b[16], b[17]]),
                    le4(18),
                    le4(22),
                ))
            }),
            _ => None,
        };
        let uri = r.field().unwrap_or_default();
        let subprotocol = match r.varint() {
            None | Some(0) => None,
            Some(n) => r.bytes(n - 1),
        };
        Fields {
            remote,
            uri,
            subprotocol,
            params: r,
        }
    }
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("uri", &self.uri_str())
            .field("remote_addr", &self.remote_addr())
            .field("secure", &self.secure())
            .finish_non_exhaustive()
    }
}

struct Fields<'a> {
    remote: Option<SocketAddr>,
    uri: &'a [u8],
    subprotocol: Option<&'a [u8]>,
    params: Reader<'a>,
}

/// Reads the varint-prefixed fields of a `RequestInfo` block.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<usize> {
        let mut n = 0usize;
        let mut shift = 0u32;
        loop {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
            shift += 7;
        }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (field, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(field)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()?;
        self.bytes(n)
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    put_varint(out, field.len());
    out.extend_from_slice(field);
}

/// The block's text fields were written from `&str`s.
fn utf8(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A typed per-connection map, like Jakarta's `Session.getUserProperties()` but keyed by type.
///
/// ```
/// # use endpoint_runtime::Properties;
/// #[derive(Clone, Debug, PartialEq)]
/// struct User(String);
///
/// let props = Properties::default();
/// props.insert(User("ada".into()));
/// assert_eq!(props.get::<User>(), Some(User("ada".into())));
/// assert!(props.remove::<User>().is_some());
/// assert!(!props.contains::<User>());
/// ```
#[derive(Default)]
pub struct Properties {
    /// Created on the first insert: most sessions never store anything, and an empty map
    /// inline would cost every one of them its full size.
    map: RwLock<Option<Box<PropertyMap>>>,
}

type PropertyMap = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

impl Properties {
    /// Stores a value, returning the previous value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with(|v: &T| v.clone())
    }

    /// Runs `f` on the stored value of type `T` without cloning it.
    pub fn with<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .map(f)
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.as_ref()
            .is_some_and(|m| m.contains_key(&TypeId::of::<T>()))
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .map
            .read()
            .map(|m| m.as_ref().map_or(0, |m| m.len()))
            .unwrap_or(0);
        f.debug_struct("Properties").field("len", &n).finish()
    }
}

/// The outbound side of a session: a byte-bounded queue drained by the connection task.
///
/// Messages from other tasks go through `state` (a mutex held for a push or a swap). The
/// connection task's own replies skip it when nothing is queued: they go straight into its
/// batch, counted in `bytes` like queued messages, so the bound covers both.
///
/// # Direct writes
///
/// A plain TCP connection's stream lives in `state` too, and the connection task locks it for
/// each read or write. A broadcast then writes to an *idle* subscriber's socket itself, under
/// the same lock, as uWebSockets does: no queue, no wake-up, no task poll per recipient. Idle
/// means the connection task has nothing queued, batched, or partly written (`idle`, cleared
/// by the task before it takes anything to write and set again once everything is written).
/// What the socket does not take is kept in `raw` and written by the task before anything
/// else; a socket that takes nothing sends the message through the queue as usual.
pub(crate) struct Outbound {
    state: Mutex<OutState>,
    /// Wakes the connection task when something was queued or a close was requested.
    pub(crate) writer: AtomicWaker,
    limit: usize,
    /// Payload bytes queued or batched and not yet handed to the socket.
    bytes: AtomicUsize,
    /// Lock-free mirrors for the hot path, written under the lock: whether the queue may hold
    /// messages, whether the session stopped accepting them (exact when read under the lock),
    /// whether a close may be pending.
    queued: AtomicBool,
    closed: AtomicBool,
    close_pending: AtomicBool,
    /// How many senders wait for room.
    waiting: AtomicU32,
    /// Whether a broadcast may write to the socket itself (see the type's docs).
    idle: AtomicBool,
    /// Whether `raw` holds the rest of a partly written direct frame.
    has_raw: AtomicBool,
    /// Data messages written directly, for the connection task's idle timeout.
    pub(crate) direct_sent: AtomicU32,
}

#[derive(Default)]
pub(crate) struct OutState {
    /// A `Vec` (it is only pushed to, then taken whole): 8 bytes less than a `VecDeque`.
    pub(crate) queue: Vec<tungstenite::Message>,
    /// What most sessions never have; boxed, and freed once empty.
    cold: Option<Box<ColdOut>>,
    /// The TCP stream, shared by the connection task and direct writes (see [`Outbound`]);
    /// `None` for TLS and other transports, and once the connection task ended.
    pub(crate) stream: Option<tokio::net::TcpStream>,
}

/// The rare parts of [`OutState`].
#[derive(Default)]
struct ColdOut {
    /// A close the connection task should perform (from `Session::close` or an overflow).
    close: Option<PendingClose>,
    /// The unwritten rest of a direct frame: the connection task writes it first.
    raw: Option<Box<[u8]>>,
    /// Wakes senders waiting for room in the queue; created by the first sender that has to
    /// wait (before it counts itself in `waiting`), so most sessions never pay for one.
    space: Option<Arc<Notify>>,
}

impl OutState {
    fn cold(&mut self) -> &mut ColdOut {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Takes a part of the cold state, freeing its box once empty.
    fn take_cold<T>(&mut self, part: impl FnOnce(&mut ColdOut) -> Option<T>) -> Option<T> {
        let cold = self.cold.as_mut()?;
        let taken = part(cold);
        if cold.close.is_none() && cold.raw.is_none() && cold.space.is_none() {
            self.cold = None;
        }
        taken
    }

    fn has_raw(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.raw.is_some())
    }
}

/// What a broadcast push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Written to the socket directly (possibly in part; the connection task writes the rest).
    Written,
    /// The queue overflowed: the session is being closed with 1008.
    Overflowed,
    /// The session was already closed.
    Closed,
}

/// Largest payload a broadcast writes to a socket itself (a larger one goes through the queue).
const DIRECT_MAX: usize = 16 * 1024;

/// Flags of a direct write's `send`: never raise `SIGPIPE` on a peer that went away (Rust
/// programs ignore it by default; a host program embedding the runtime might not).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

thread_local! {
    /// Where a broadcast encodes the frame its direct writes send.
    static DIRECT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `msg` encoded once as the frame a broadcast may write to idle sockets itself
/// (`None` when it may not: not a data message, or larger than [`DIRECT_MAX`]). Every recipient
/// is sent the same bytes, so a broadcast encodes them once, not once per recipient.
pub(crate) fn with_direct_frame<R>(
    msg: &tungstenite::Message,
    f: impl FnOnce(Option<&[u8]>) -> R,
) -> R {
    let (opcode, payload): (u8, &[u8]) = match msg {
        tungstenite::Message::Text(t) => (crate::frame::TEXT, t.as_bytes()),
        tungstenite::Message::Binary(b) => (crate::frame::BINARY, b),
        _ => return f(None),
    };
    if payload.len() > DIRECT_MAX {
        return f(None);
    }
    // One contiguous buffer: `send` costs less than `writev` in the kernel.
    DIRECT_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let mut head = [0; crate::frame::MAX_HEADER];
        let head_len = crate::frame::encode_header(&mut head, opcode, payload.len());
        buf.extend_from_slice(&head[..head_len]);
        buf.extend_from_slice(payload);
        f(Some(&buf))
    })
}

/// What a direct write did.
enum Direct {
    /// The whole frame went out.
    Done,
    /// Part of it went out; the rest is in `raw`.
    Partial,
    /// Nothing was written: queue the message.
    No,
}

/// Why the connection task has been asked to close.
#[derive(Debug)]
pub(crate) enum PendingClose {
    /// The application asked (`Session::close`).
    Requested(CloseReason),
    /// A broadcast overflowed the queue.
    Overflow,
}

impl Outbound {
    pub(crate) fn new(limit: usize) -> Self {
        Outbound {
            state: Mutex::new(OutState::default()),
            writer: AtomicWaker::new(),
            limit: limit.max(1),
            bytes: AtomicUsize::new(0),
            queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_pending: AtomicBool::new(false),
            waiting: AtomicU32::new(0),
            idle: AtomicBool::new(false),
            has_raw: AtomicBool::new(false),
            direct_sent: AtomicU32::new(0),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `len` more bytes fit. A message larger than the whole queue still goes through
    /// when the queue is empty; otherwise it could never be sent.
    fn fits(&self, len: usize) -> bool {
        let bytes = self.bytes.load(Ordering::Acquire);
        bytes == 0 || bytes + len <= self.limit
    }

    /// Appends under the lock (checked by the caller) and raises the hints.
    fn enqueue(&self, st: &mut OutState, msg: tungstenite::Message) {
        self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
        st.queue.push(msg);
        self.queued.store(true, Ordering::Release);
    }

    /// Under the lock (the `OutState` borrow), so that `closed` read under it is exact.
    fn mark_closed(&self, _locked: &mut OutState) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the session stopped accepting messages; exact as `st` is locked.
    fn closed(&self, _locked: &OutState) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes the senders waiting for room, if any ever waited.
    fn notify_space(&self) {
        // A sender counts itself after creating the `Notify`, and checks for room or a close
        // under the lock before it waits: with none counted, nobody is to be woken.
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let space = lock(&self.state)
            .cold
            .as_ref()
            .and_then(|c| c.space.clone());
        if let Some(space) = space {
            space.notify_waiters();
        }
    }

    /// Queues without waiting; `Err(Full)` when over the limit.
    pub(crate) fn try_push(&self, msg: tungstenite::Message) -> Result<(), SendError> {
        {
            let mut st = lock(&self.state);
            if self.closed(&st) {
                return Err(SendError::Closed);
            }
            if !self.fits(msg.len()) {
                return Err(SendError::Full);
            }
            self.enqueue(&mut st, msg);
        }
        self.writer.wake();
        Ok(())
    }

    /// Queues for a broadcast, or writes `frame` (`msg` encoded by [`with_direct_frame`]) to the
    /// socket when the connection is idle (see the type's docs): never waits; a session whose
    /// queue overflows is closed with 1008.
    pub(crate) fn push_or_overflow(
        &self,
        msg: &tungstenite::Message,
        frame: Option<&[u8]>,
    ) -> Pushed {
        let pushed = {
            let mut st = lock(&self.state);
            if self.closed(&st) {
                return Pushed::Closed;
            }
            if let Some(frame) = frame.filter(|_| self.idle.load(Ordering::Acquire)) {
                match self.write_direct(&mut st, frame) {
                    Direct::Done => return Pushed::Written,
                    Direct::Partial => {
                        drop(st);
                        self.writer.wake();
                        return Pushed::Written;
                    }
                    Direct::No => {}
                }
            }
            if self.fits(msg.len()) {
                self.enqueue(&mut st, msg.clone());
                Pushed::Queued
            } else {
                self.mark_closed(&mut st);
                st.cold().close = Some(PendingClose::Overflow);
                self.close_pending.store(true, Ordering::Release);
                Pushed::Overflowed
            }
        };
        self.writer.wake();
        if pushed == Pushed::Overflowed {
            self.notify_space();
        }
        pushed
    }

    /// Writes an encoded data frame to the idle connection's socket, under the lock (`st`).
    fn write_direct(&self, st: &mut OutState, frame: &[u8]) -> Direct {
        let Some(stream) = st.stream.as_ref() else {
            return Direct::No;
        };
        if !st.queue.is_empty() || st.has_raw() {
            return Direct::No;
        }
        // A plain `send`, not `try_write`: tokio's readiness check costs a cache miss per
        // subscriber on a 10,000-member broadcast, and its answer adds nothing here (a full
        // socket says `WouldBlock` either way, and the connection task's own write then brings
        // tokio's readiness up to date).
        let written = match socket2::SockRef::from(stream).send_with_flags(frame, SEND_FLAGS) {
            Ok(n) if n == frame.len() => Ok(None),
            Ok(n) if n > 0 => Ok(Some(Box::<[u8]>::from(&frame[n..]))),
            Ok(_) => Err(()),
            Err(_) => Err(()),
        };
        match written {
            Ok(None) => {
                self.direct_sent.fetch_add(1, Ordering::Relaxed);
                Direct::Done
            }
            Ok(Some(rest)) => {
                st.cold().raw = Some(rest);
                self.has_raw.store(true, Ordering::Release);
                self.idle.store(false, Ordering::Release);
                self.direct_sent.fetch_add(1, Ordering::Relaxed);
                Direct::Partial
            }
            // Full (or failing): the connection task takes over, through the queue.
            _ => {
                self.idle.store(false, Ordering::Release);
                Direct::No
            }
        }
    }

    /// The connection task is about to hold something to write: no direct writes until it
    /// says it is idle again.
    pub(crate) fn busy(&self) {
        if self.idle.load(Ordering::Relaxed) {
            self.idle.store(false, Ordering::Release);
        }
    }

    /// The connection task wrote everything: broadcasts may write directly (when the
    /// connection has a plain TCP stream).
    pub(crate) fn set_idle(&self) {
        if !self.idle.load(Ordering::Relaxed) {
            self.idle.store(true, Ordering::Release);
        }
    }

    /// The rest of a partly written direct frame, to be written before anything else.
    pub(crate) fn take_raw(&self) -> Option<Box<[u8]>> {
        if !self.has_raw.load(Ordering::Acquire) {
            return None;
        }
        let mut st = lock(&self.state);
        self.has_raw.store(false, Ordering::Release);
        st.take_cold(|c| c.raw.take())
    }

    /// Hands the TCP stream to the session (see the type's docs).
    pub(crate) fn attach(&self, stream: tokio::net::TcpStream) {
        lock(&self.state).stream = Some(stream);
    }

    /// Closes the TCP stream, if the session holds it: at the end of the connection task,
    /// whoever still holds the `Session`.
    pub(crate) fn release_stream(&self) {
        self.idle.store(false, Ordering::Release);
        let stream = lock(&self.state).stream.take();
        drop(stream);
    }

    /// Runs `f` on the TCP stream under the lock (`None` once it was released).
    pub(crate) fn with_stream<R>(
        &self,
        f: impl FnOnce(Option<&mut tokio::net::TcpStream>) -> R,
    ) -> R {
        f(lock(&self.state).stream.as_mut())
    }

    /// Queues, waiting for room.
    pub(crate) async fn push(&self, msg: tungstenite::Message) -> Result<(), SendError> {
        let len = msg.len();
        let mut msg = Some(msg);
        // Counted while waiting (also when the future is dropped), so releases know to notify.
        struct Waiting<'a>(&'a AtomicU32);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        // Created before this sender counts itself: whoever sees it counted sees the `Notify`.
        let space = lock(&self.state)
            .cold()
            .space
            .get_or_insert_with(Arc::default)
            .clone();
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        loop {
            let notified = space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&self.state);
                if self.closed(&st) {
                    return Err(SendError::Closed);
                }
                if self.fits(len) {
                    self.enqueue(&mut st, msg.take().expect("message is queued once"));
                    drop(st);
                    self.writer.wake();
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// For the connection task's own replies: appends `msg` to `batch` behind whatever is
    /// queued, counted like a queued message; no wake-up needed, and no lock when nothing is
    /// queued. `Err(msg)` when there is no room (or the session is closed): the caller waits
    /// like `push`.
    pub(crate) fn push_local(
        &self,
        msg: tungstenite::Message,
        batch: &mut VecDeque<tungstenite::Message>,
    ) -> Result<(), tungstenite::Message> {
        if self.closed.load(Ordering::Acquire) || !self.fits(msg.len()) {
            return Err(msg);
        }
        self.busy();
        self.drain_into(batch);
        self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
        batch.push_back(msg);
        Ok(())
    }

    /// Moves everything queued into `into` (the connection task's local batch).
    pub(crate) fn drain_into(&self, into: &mut VecDeque<tungstenite::Message>) -> usize {
        if !self.queued.load(Ordering::Acquire) {
            return 0;
        }
        let mut st = lock(&self.state);
        self.queued.store(false, Ordering::Release);
        let n = st.queue.len();
        if n > 0 {
            self.idle.store(false, Ordering::Release);
            if into.is_empty() {
                *into = VecDeque::from(std::mem::take(&mut st.queue));
            } else {
                into.extend(st.queue.drain(..));
            }
        }
        n
    }

    /// Frees `bytes` of queue room after messages went to the socket.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(bytes))
            });
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.notify_space();
        }
    }

    pub(crate) fn take_close(&self) -> Option<PendingClose> {
        if !self.close_pending.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.state).take_cold(|c| c.close.take())
    }

    pub(crate) fn request_close(&self, close: PendingClose) {
        {
            let mut st = lock(&self.state);
            if st.cold.as_ref().is_none_or(|c| c.close.is_none()) && !self.closed(&st) {
                st.cold().close = Some(close);
                self.close_pending.store(true, Ordering::Release);
            }
            self.mark_closed(&mut st);
        }
        self.writer.wake();
        self.notify_space();
    }

    /// Stops accepting messages and drops whatever is still queued.
    pub(crate) fn shut(&self) {
        {
            let mut st = lock(&self.state);
            self.mark_closed(&mut st);
            self.idle.store(false, Ordering::Release);
            st.queue = Vec::new();
            self.bytes.store(0, Ordering::Release);
        }
        self.notify_space();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

pub(crate) struct SessionInner {
    pub(crate) id: SessionId,
    pub(crate) out: Outbound,
    pub(crate) open: AtomicBool,
    pub(crate) request: RequestInfo,
    pub(crate) properties: Properties,
    pub(crate) endpoint: Arc<EndpointShared>,
    pub(crate) shared: Arc<Shared>,
    /// Display name for cluster-wide presence.
    pub(crate) name: Mutex<Option<Arc<str>>>,
    /// The connection task, aborted if it outlives the shutdown drain.
    pub(crate) task: OnceLock<tokio::task::AbortHandle>,
    /// Idle timeout in milliseconds; 0 = none.
    pub(crate) idle_timeout_ms: AtomicU32,
    /// The connection task's next keep-alive or idle deadline, on the server's timer clock
    /// (`timer.rs`); 0 = none.
    pub(crate) deadline_ms: AtomicU64,
    /// The rooms this session is in; `None` once it closed (joining is refused from then on).
    /// A boxed slice rather than a `Vec`: joins and leaves are rare, and a `Vec` would hold
    /// room for four names from the first join on.
    pub(crate) rooms: Mutex<Option<Box<[Arc<str>]>>>,
}

/// A session in a set keyed by its id: one pointer per entry, where a map from id to session
/// stores the id twice (once in the entry, once in the session).
#[derive(Clone)]
pub(crate) struct ById(pub(crate) Session);

impl std::borrow::Borrow<SessionId> for ById {
    fn borrow(&self) -> &SessionId {
        &self.0.inner.id
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.inner.id == other.0.inner.id
    }
}

impl Eq for ById {}

impl std::hash::Hash for ById {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.inner.id.hash(state);
    }
}

/// Per-endpoint state shared by its sessions: the registry behind [`Session::open_sessions`],
/// and the endpoint's rooms.
pub(crate) struct EndpointShared {
    pub(crate) path: &'static str,
    pub(crate) sessions: RwLock<HashSet<ById>>,
    pub(crate) rooms: RoomTable,
    /// The server's broker, set when the server is bound.
    pub(crate) broker: OnceLock<Arc<BrokerLink>>,
}

impl EndpointShared {
    pub(crate) fn new(path: &'static str) -> Self {
        EndpointShared {
            path,
            sessions: RwLock::new(HashSet::new()),
            rooms: RoomTable::default(),
            broker: OnceLock::new(),
        }
    }

    pub(crate) fn insert(&self, session: &Session) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(ById(session.clone()));
    }

    pub(crate) fn remove(&self, id: SessionId) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn snapshot(&self) -> Vec<Session> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| s.0.clone())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
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
    pub(crate) fn new(
        request: RequestInfo,
        properties: Properties,
        endpoint: Arc<EndpointShared>,
        shared: Arc<Shared>,
    ) -> Session {
        let limit = shared.limits.outbound_queue_bytes;
        let idle = shared.limits.idle_timeout.map_or(0, duration_ms);
        Session {
            inner: Arc::new(SessionInner {
                id: SessionId::next(),
                out: Outbound::new(limit),
                open: AtomicBool::new(true),
                request,
                properties,
                endpoint,
                shared,
                rooms: Mutex::new(Some(Box::default())),
                name: Mutex::new(None),
                task: OnceLock::new(),
                idle_timeout_ms: AtomicU32::new(idle),
                deadline_ms: AtomicU64::new(0),
            }),
        }
    }

    /// The session's id, unique within the process.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// Queues a message for the peer, waiting while the outbound queue is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the session is closed or closing; [`SendError::Encode`] when
    /// the value cannot be encoded.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before it completes, the message was not queued.
    pub async fn send(&self, message: impl Encode) -> Result<(), SendError> {
        let msg = encode(message)?;
        self.inner.out.push(msg.into_tungstenite()).await
    }

    /// Queues a message without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the queue has no room, [`SendError::Closed`] once closed,
    /// [`SendError::Encode`] when the value cannot be encoded.
    pub fn try_send(&self, message: impl Encode) -> Result<(), SendError> {
        let msg = encode(message)?;
        self.inner.out.try_push(msg.into_tungstenite())
    }

    /// Sends a ping; the peer's pong reaches an `#[on_message]` handler taking `Pong`.
    ///
    /// # Errors
    /// As [`Session::try_send`]; a payload over 125 bytes is cut to 125.
    pub fn ping(&self, payload: impl Into<bytes::Bytes>) -> Result<(), SendError> {
        let mut payload: bytes::Bytes = payload.into();
        payload.truncate(125);
        self.inner.out.try_push(tungstenite::Message::Ping(payload))
    }

    /// Starts closing the session with `reason`: messages already queued are sent first, then the
    /// close frame; `on_close` runs once the close handshake ends. Further sends fail.
    pub fn close(&self, reason: CloseReason) {
        let reason = if reason.code().is_sendable() {
            reason
        } else {
            CloseReason::new(CloseCode::NORMAL, reason.reason())
        };
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
        self.inner.shared.state.get::<T>()
    }

    /// A snapshot of the open sessions of the same endpoint (this one included while open), like
    /// Jakarta's `getOpenSessions()`.
    pub fn open_sessions(&self) -> Vec<Session> {
        self.inner.endpoint.snapshot()
    }

    /// The URI template of the endpoint this session belongs to.
    pub fn endpoint_path(&self) -> &'static str {
        self.inner.endpoint.path
    }

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
        if let Some(link) = self.inner.endpoint.broker.get() {
            link.broker
                .joined(&Topic::new(self.inner.endpoint.path, room), &self.member());
        }
        edit(mine, |rooms| rooms.push(name));
        true
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
        if let Some(link) = self.inner.endpoint.broker.get() {
            link.broker
                .left(&Topic::new(self.inner.endpoint.path, room), &self.member());
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
        Rooms {
            endpoint: self.inner.endpoint.clone(),
        }
    }

    /// Sends `message` to every open session of this endpoint (this one included). See
    /// [`room`](crate::room) for what happens to slow consumers.
    ///
    /// # Errors
    /// [`EndpointError::Encode`] when the message cannot be encoded.
    pub fn broadcast(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        fan_out(self.inner.endpoint.snapshot(), message, None)
    }

    /// Sends `message` to every open session of this endpoint except this one.
    ///
    /// # Errors
    /// As [`Session::broadcast`].
    pub fn broadcast_others(&self, message: impl Encode) -> Result<Delivery, EndpointError> {
        fan_out(self.inner.endpoint.snapshot(), message, Some(self.id()))
    }

    /// Leaves every room and refuses further joins (the session closed).
    pub(crate) fn leave_all_rooms(&self) {
        let rooms = Vec::from(lock(&self.inner.rooms).take().unwrap_or_default());
        let link = self.inner.endpoint.broker.get();
        let member = link.map(|_| self.member());
        for room in rooms {
            self.inner.endpoint.rooms.remove(&room, self.id());
            if let (Some(link), Some(member)) = (link, &member) {
                link.broker
                    .left(&Topic::new(self.inner.endpoint.path, &room), member);
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
        let node = self
            .inner
            .endpoint
            .broker
            .get()
            .map_or("local", |l| &l.node);
        Member {
            node: node.to_owned(),
            session: self.id().as_u64(),
            name: name.map_or_else(|| self.id().to_string(), |n| n.to_string()),
        }
    }

    /// Closes the session (1001, "idle timeout") after `timeout` without a message in either
    /// direction; `None` disables it. Like Jakarta's `setMaxIdleTimeout`. Takes effect at once.
    /// Kept in milliseconds, 32 bits: a timeout over 49 days is taken as 49 days.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.inner
            .idle_timeout_ms
            .store(timeout.map_or(0, duration_ms), Ordering::Relaxed);
        self.inner.out.writer.wake();
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

/// Changes a session's list of rooms, keeping it exactly as long as it needs to be.
fn edit(rooms: &mut Box<[Arc<str>]>, f: impl FnOnce(&mut Vec<Arc<str>>)) {
    let mut list = Vec::from(std::mem::take(rooms));
    f(&mut list);
    *rooms = list.into_boxed_slice();
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        uri: &str,
        headers: &HeaderMap,
        params: &[(&str, &str)],
        remote: Option<SocketAddr>,
        protocol: Option<&str>,
        secure: bool,
    ) -> RequestInfo {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let uri: Uri = uri.parse().unwrap();
        RequestInfo::new(&uri, headers, &params, remote, protocol, secure)
    }

    #[test]
    fn request_info_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.append("cookie", "a=1".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        headers.insert(
            "x-bytes",
            http::HeaderValue::from_bytes(b"caf\xc3\xa9 \xff").unwrap(),
        );
        headers.insert("x-empty", http::HeaderValue::from_static(""));
        let long = "v".repeat(70_000);
        headers.insert("x-long", long.parse().unwrap());
        let v6: SocketAddr = "[fe80::1%3]:443".parse().unwrap();
        let info = request(
            "http://example.com/chat/rust%20lang?x=1&y=%20#frag",
            &headers,
            &[("room", "rust lang"), ("empty", ""), ("é", &long)],
            Some(v6),
            Some("v2.chat"),
            true,
        );
        assert_eq!(info.headers(), &headers);
        let cookies: Vec<_> = info.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(info.uri(), "/chat/rust%20lang?x=1&y=%20");
        assert_eq!(info.query(), Some("x=1&y=%20"));
        assert_eq!(info.query(), info.uri().query());
        assert_eq!(
            info.path_params().collect::<Vec<_>>(),
            [("room", "rust lang"), ("empty", ""), ("é", long.as_str())]
        );
        assert_eq!(info.path_param("empty"), Some(""));
        assert_eq!(info.path_param("nope"), None);
        assert_eq!(info.remote_addr(), Some(v6));
        assert_eq!(info.subprotocol(), Some("v2.chat"));
        assert!(info.secure());

        let v4: SocketAddr = "192.0.2.7:50123".parse().unwrap();
        let info = request("/plain", &HeaderMap::new(), &[], Some(v4), Some(""), false);
        assert!(info.headers().is_empty());
        assert_eq!(info.uri(), "/plain");
        assert_eq!(info.query(), None);
        assert_eq!(info.path_params().count(), 0);
        assert_eq!(info.remote_addr(), Some(v4));
        assert_eq!(info.subprotocol(), Some(""));
        assert!(!info.secure());

        let info = request("/?", &HeaderMap::new(), &[], None, None, false);
        assert_eq!(info.query(), Some(""));
        assert_eq!(info.query(), info.uri().query());
        assert_eq!(info.remote_addr(), None);
        assert_eq!(info.subprotocol(), None);
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
        assert!(size <= 296, "SessionInner grew to {size} bytes");
    }
}
