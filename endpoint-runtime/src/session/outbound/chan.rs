//! The shared core of the outbound queue; see the module docs of `outbound` and [`Outbound`].

use std::sync::Arc;

use tokio::sync::Notify;

use super::sync::{
    lock, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, AtomicWaker, Mutex, Ordering,
};
use super::{CloseReason, Outgoing};

/// A socket a broadcast may write a frame to at once, without waiting.
pub(crate) trait DirectSocket: Send {
    /// Writes what the socket takes now; `Ok(0)` or an error when it takes nothing.
    fn send_now(&mut self, frame: &[u8]) -> std::io::Result<usize>;
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
///
/// # Rules the hints keep
///
/// * `queued`, `closed`, `close_pending`, `has_raw` and `writing` are written under the lock;
///   read without it they are hints (a `false` may be stale, and the reader then locks). Read
///   under it they are exact for what a direct write asks (`direct_stream`): `queued` is set
///   with every push and cleared only when the queue is taken whole (it may stay set over a
///   queue a shut emptied: the session is closed then), `has_raw` is set and cleared with
///   `raw`, `writing` with the writer's hold.
/// * `idle` is set only by the connection task with nothing to write, and cleared by it before
///   it takes anything; a direct write checks it, `queued`, `has_raw` and `writing` under the
///   lock.
/// * A sender that waits for room counts itself in `waiting` after it created the `Notify`,
///   and checks for room under the lock before it sleeps: nobody is left waiting for room that
///   was freed.
///
/// # Layout
///
/// In declaration order (`repr(C)`), so that what a broadcast touches per recipient is
/// together: the flags it reads and `direct_sent`, then the lock and, at the start of the
/// locked state, the stream (whose descriptor is the last thing it reads). With the session's
/// `open` and `sharing` just before this (`SessionInner` is laid out the same way), a fan-out
/// touches 64 contiguous bytes of each recipient: two cache lines at most, where the
/// compiler's order spread them over four or five. On 10,000 subscribers each of those lines
/// is a cache miss that waits behind the previous recipient's `send`.
#[repr(C)]
pub(crate) struct Outbound<S = std::net::TcpStream> {
    /// How many senders wait for room.
    pub(super) waiting: AtomicU32,
    /// Data messages written directly, for the connection task's idle timeout.
    pub(super) direct_sent: AtomicU32,
    /// Whether `ColdOut::dropped` counts messages a broadcast dropped (the `Drop` policy) that
    /// the connection task has not reported yet.
    pub(super) has_dropped: AtomicBool,
    /// Whether a sender waits for its message to be written (`ColdOut::track` exists; set
    /// under the lock, never cleared): the connection task then marks what it wrote.
    pub(super) tracking: AtomicBool,
    /// Lock-free mirrors for the hot path (see the type's docs): whether a close may be
    /// pending, whether the session stopped accepting messages, whether the queue may hold
    /// messages.
    pub(super) close_pending: AtomicBool,
    pub(super) closed: AtomicBool,
    pub(super) queued: AtomicBool,
    /// Whether `raw` holds the rest of a partly written direct frame.
    pub(super) has_raw: AtomicBool,
    /// Whether a message writer is open (`writer.rs`): written under the lock, read without
    /// it by the connection task's own replies, which then queue behind the writer's parts.
    pub(super) writing: AtomicBool,
    /// Whether a broadcast may write to the socket itself (see the type's docs).
    pub(super) idle: AtomicBool,
    pub(super) state: Mutex<OutState<S>>,
    /// Wakes the connection task when something was queued, a close was requested, or its
    /// deadline passed.
    pub(super) writer: AtomicWaker,
    pub(super) limit: usize,
    /// Payload bytes queued or batched and not yet handed to the socket.
    pub(super) bytes: AtomicUsize,
    /// The connection task's next keep-alive or idle deadline, on the server's timer clock
    /// (`connection::timer`); 0 = none. Kept here, beside the waker it is woken through, so
    /// that no connection needs a timer of its own.
    pub(super) deadline_ms: AtomicU64,
    /// The TCP stream's readiness, for a plain TCP connection: set by the connection reactor
    /// (`connection/reactor.rs`) at each edge, cleared by the connection task when the socket
    /// says `WouldBlock` (`connection/transport.rs` has the protocol). Beside the stream, so
    /// that an idle connection keeps no registration of its own.
    pub(crate) ready: AtomicU32,
}

/// In declaration order (`repr(C)`): the stream first, next to the lock (see [`Outbound`]).
#[repr(C)]
pub(crate) struct OutState<S> {
    /// The TCP stream, shared by the connection task and direct writes (see [`Outbound`]);
    /// `None` for TLS and other transports, and once the connection task ended.
    pub(super) stream: Option<S>,
    /// A `Vec` (it is only pushed to, then taken whole): 8 bytes less than a `VecDeque`.
    pub(super) queue: Vec<Outgoing>,
    /// What most sessions never have; boxed, and freed once empty.
    pub(super) cold: Option<Box<ColdOut>>,
}

/// The rare parts of [`OutState`].
#[derive(Default)]
pub(super) struct ColdOut {
    /// A close the connection task should perform (from `Session::close` or an overflow).
    pub(super) close: Option<PendingClose>,
    /// The unwritten rest of a direct frame: the connection task writes it first.
    pub(super) raw: Option<Box<[u8]>>,
    /// Wakes senders waiting for room in the queue (or for their message to be written);
    /// created by the first sender that has to wait (before it counts itself in `waiting`), so
    /// most sessions never pay for one.
    pub(super) space: Option<Arc<Notify>>,
    /// Send completion (`Session::send_flushed`), from the first sender that asked for it on.
    pub(super) track: Option<Track>,
    /// Messages broadcasts dropped for this session (the `Drop` policy), not reported yet.
    pub(super) dropped: u64,
    /// The open message writer's hold on the queue (`writer.rs`).
    pub(super) writer: Option<super::writer::Writing>,
}

/// Send completion: messages are numbered as they join the queue (or the connection task's
/// batch), in the order they are written; the connection task says up to which number
/// everything was written. Numbers wrap (compared as a window of 2^31).
#[derive(Default)]
pub(super) struct Track {
    /// The number of the last message queued or batched.
    pub(super) pushed: u32,
    /// Every message up to this number was written to the socket.
    pub(super) written: u32,
    /// Numbered messages that wait behind an open message writer (`writer.rs`): numbered
    /// after `pushed`, and counted into it only when they join the queue, so that a written
    /// mark never covers a message still held back.
    pub(super) held: u32,
    /// The session ended: what is not written by now never will be.
    pub(super) dead: bool,
}

impl Track {
    /// Whether message `seq` was written.
    pub(super) fn has_written(&self, seq: u32) -> bool {
        self.written.wrapping_sub(seq) < (1 << 31)
    }
}

impl<S> OutState<S> {
    pub(super) fn cold(&mut self) -> &mut ColdOut {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Takes a part of the cold state, freeing its box once empty.
    pub(super) fn take_cold<T>(
        &mut self,
        part: impl FnOnce(&mut ColdOut) -> Option<T>,
    ) -> Option<T> {
        let cold = self.cold.as_mut()?;
        let taken = part(cold);
        if cold.close.is_none()
            && cold.raw.is_none()
            && cold.space.is_none()
            && cold.track.is_none()
            && cold.dropped == 0
            && cold.writer.is_none()
        {
            self.cold = None;
        }
        taken
    }

    pub(super) fn has_raw(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.raw.is_some())
    }

    /// The open message writer's hold, if one is open.
    pub(super) fn writing(&mut self) -> Option<&mut super::writer::Writing> {
        self.cold.as_mut().and_then(|c| c.writer.as_mut())
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
    /// The queue was full and the message dropped for this session (the `Drop` policy); the
    /// connection task tells the endpoint.
    Dropped,
    /// The queue was full; nothing was done (the caller waits for room).
    Full,
    /// The session was already closed.
    Closed,
}

/// What a broadcast push does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFull {
    /// Close the session with 1008 (`Pushed::Overflowed`).
    Close,
    /// Drop the message for this session and count it (`Pushed::Dropped`).
    Drop,
    /// Nothing (`Pushed::Full`).
    Report,
}

/// What a direct write did.
pub(super) enum Direct {
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
    /// A send found no room (or was not written) within the session's send timeout.
    SendTimeout(std::time::Duration),
}

impl<S: DirectSocket> Outbound<S> {
    /// Whether the cold state is held (the unit tests' look at what a session keeps).
    #[cfg(test)]
    #[allow(dead_code)]
    pub(crate) fn holds_cold(&self) -> bool {
        lock(&self.state).cold.is_some()
    }

    /// Where the locked state begins (the layout test's).
    #[cfg(test)]
    #[allow(dead_code)]
    pub(crate) fn state_offset() -> usize {
        assert_eq!(std::mem::offset_of!(OutState<S>, stream), 0);
        std::mem::offset_of!(Outbound<S>, state)
    }

    pub(crate) fn new(limit: usize) -> Self {
        Outbound {
            state: Mutex::new(OutState {
                queue: Vec::new(),
                cold: None,
                stream: None,
            }),
            writer: AtomicWaker::new(),
            limit: limit.max(1),
            bytes: AtomicUsize::new(0),
            queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_pending: AtomicBool::new(false),
            waiting: AtomicU32::new(0),
            idle: AtomicBool::new(false),
            has_raw: AtomicBool::new(false),
            tracking: AtomicBool::new(false),
            has_dropped: AtomicBool::new(false),
            ready: AtomicU32::new(0),
            writing: AtomicBool::new(false),
            direct_sent: AtomicU32::new(0),
            deadline_ms: AtomicU64::new(0),
        }
    }

    /// The queue's bound in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `len` more bytes fit. A message larger than the whole queue still goes through
    /// when the queue is empty; otherwise it could never be sent.
    pub(super) fn fits(&self, len: usize) -> bool {
        let bytes = self.bytes.load(Ordering::Acquire);
        bytes == 0 || bytes + len <= self.limit
    }

    /// Appends under the lock (checked by the caller) and raises the hints.
    pub(super) fn enqueue(&self, st: &mut OutState<S>, msg: Outgoing) {
        self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
        if let Some(cold) = st.cold.as_mut() {
            if let Some(writing) = cold.writer.as_mut() {
                // Behind the open writer's last part (`writer.rs`).
                writing.defer(msg);
                if let Some(track) = cold.track.as_mut() {
                    track.held += 1;
                }
                return;
            }
        }
        st.queue.push(msg);
        self.queued.store(true, Ordering::Release);
        if let Some(track) = st.cold.as_mut().and_then(|c| c.track.as_mut()) {
            track.pushed = track.pushed.wrapping_add(1);
        }
    }

    /// Starts send completion (once per session, under the lock): from now on every message
    /// queued or batched is numbered.
    pub(super) fn start_tracking(&self, st: &mut OutState<S>) {
        if st.cold().track.is_none() {
            st.cold().track = Some(Track::default());
            self.tracking.store(true, Ordering::SeqCst);
        }
    }

    /// Under the lock (the `OutState` borrow), so that `closed` read under it is exact.
    pub(super) fn mark_closed(&self, _locked: &mut OutState<S>) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the session stopped accepting messages; exact as `st` is locked.
    pub(super) fn closed(&self, _locked: &OutState<S>) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes the senders waiting for room, if any ever waited.
    pub(super) fn notify_space(&self) {
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

    /// The socket a direct write may go to now, under the lock (`st`): the connection task is
    /// idle (nothing queued, held back or partly written) and still has its stream.
    pub(super) fn direct_stream<'a>(&self, st: &'a mut OutState<S>) -> Option<&'a mut S> {
        // The flags, exact under the lock (see the type's docs), rather than the queue and the
        // cold state themselves: they sit in the line the broadcast touches anyway.
        if self.queued.load(Ordering::Relaxed)
            || self.has_raw.load(Ordering::Relaxed)
            || self.writing.load(Ordering::Relaxed)
        {
            return None;
        }
        debug_assert!(st.queue.is_empty() && !st.has_raw() && st.writing().is_none());
        st.stream.as_mut()
    }

    /// What a direct write of `frame` did, given what the socket took (`sent`), under the
    /// lock that was held since `direct_stream` (`st`): the rest of a partly written frame is
    /// kept in `raw`; a socket that took nothing hands the connection task the writing.
    pub(super) fn direct_outcome(
        &self,
        st: &mut OutState<S>,
        frame: &[u8],
        sent: std::io::Result<usize>,
    ) -> Direct {
        match sent {
            Ok(n) if n == frame.len() => {
                self.direct_sent.fetch_add(1, Ordering::Relaxed);
                Direct::Done
            }
            Ok(n) if n > 0 => {
                st.cold().raw = Some(Box::from(&frame[n..]));
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
}
