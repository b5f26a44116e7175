//! The sending side of the outbound queue: what any task holding the session does.

use std::sync::Arc;

use super::chan::{Direct, DirectSocket, OnFull, OutState, Outbound, PendingClose, Pushed};
use super::sync::{lock, try_lock, AtomicU32, MutexGuard, Ordering};
use super::{Outgoing, SendError};

impl<S: DirectSocket> Outbound<S> {
    /// Queues without waiting; `Err(Full)` when over the limit.
    pub(crate) fn try_push(&self, msg: Outgoing) -> Result<(), SendError> {
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

    /// Queues for a broadcast, or writes `frame` (`msg` encoded, the same bytes for every
    /// recipient) to the socket when the connection is idle (see [`Outbound`]): never waits; a
    /// session whose queue overflows is closed with 1008.
    #[allow(dead_code)] // the loom model's; the crate calls `push_broadcast`
    pub(crate) fn push_or_overflow(&self, msg: &Outgoing, frame: Option<&[u8]>) -> Pushed {
        self.push_broadcast(msg, frame, OnFull::Close)
    }

    /// `push_or_overflow`, with what to do when the queue is full (the slow-consumer policy).
    pub(crate) fn push_broadcast(
        &self,
        msg: &Outgoing,
        frame: Option<&[u8]>,
        on_full: OnFull,
    ) -> Pushed {
        match self.claim(lock(&self.state), frame.is_some()) {
            Claim::Closed | Claim::Busy => Pushed::Closed,
            Claim::Queue(held) => held.finish(msg, None, on_full),
            Claim::Direct(mut held) => {
                let frame = frame.expect("a direct claim is asked for with a frame");
                let sent = held.stream().send_now(frame);
                held.finish(msg, Some((frame, sent)), on_full)
            }
        }
    }

    /// Locks the queue for a broadcast if no one holds it (a broadcast that writes to many
    /// sockets at once holds many; it must never wait for one meanwhile): `Busy` when someone
    /// does, and the caller pushes later, the usual way. `direct`: the broadcast has a frame
    /// to write to the socket itself.
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))] // and the loom model's
    pub(crate) fn try_claim(&self, direct: bool) -> Claim<'_, S> {
        match try_lock(&self.state) {
            Some(st) => self.claim(st, direct),
            None => Claim::Busy,
        }
    }

    fn claim<'a>(&'a self, mut st: MutexGuard<'a, OutState<S>>, direct: bool) -> Claim<'a, S> {
        if self.closed(&st) {
            return Claim::Closed;
        }
        if direct && self.idle.load(Ordering::Acquire) && self.direct_stream(&mut st).is_some() {
            Claim::Direct(Held { out: self, st })
        } else {
            Claim::Queue(Held { out: self, st })
        }
    }

    /// Queues, waiting for room.
    pub(crate) async fn push(&self, msg: Outgoing) -> Result<(), SendError> {
        self.push_numbered(msg, false).await.map(drop)
    }

    /// Queues with send completion, waiting for room: the message's number, for
    /// [`wait_written`](Self::wait_written).
    pub(crate) async fn push_tracked(&self, msg: Outgoing) -> Result<u32, SendError> {
        self.push_numbered(msg, true).await
    }

    /// Queues with send completion, without waiting; `Err(Full)` when over the limit. (The
    /// loom model's way in: it cannot await.)
    #[allow(dead_code)]
    pub(crate) fn try_push_tracked(&self, msg: Outgoing) -> Result<u32, SendError> {
        let seq = {
            let mut st = lock(&self.state);
            if self.closed(&st) {
                return Err(SendError::Closed);
            }
            if !self.fits(msg.len()) {
                return Err(SendError::Full);
            }
            self.start_tracking(&mut st);
            self.enqueue(&mut st, msg);
            pushed(&st)
        };
        self.writer.wake();
        Ok(seq)
    }

    /// Whether message `seq` (from `push_tracked`) was written: `Err(Closed)` once the session
    /// ended without writing it.
    pub(crate) fn written(&self, seq: u32) -> Result<bool, SendError> {
        let st = lock(&self.state);
        match st.cold.as_ref().and_then(|c| c.track.as_ref()) {
            Some(track) if track.has_written(seq) => Ok(true),
            Some(track) if track.dead => Err(SendError::Closed),
            Some(_) => Ok(false),
            None => Err(SendError::Closed),
        }
    }

    /// Waits until message `seq` (from `push_tracked`) was written to the socket.
    pub(crate) async fn wait_written(&self, seq: u32) -> Result<(), SendError> {
        let space = lock(&self.state)
            .cold()
            .space
            .get_or_insert_with(Arc::default)
            .clone();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let notified = space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.written(seq)? {
                return Ok(());
            }
            notified.await;
        }
    }

    async fn push_numbered(&self, msg: Outgoing, track: bool) -> Result<u32, SendError> {
        let len = msg.len();
        // Room at once (the common case): queued without the `Notify` a wait needs, which would
        // stay in the session's cold state for its whole life (160 bytes per session that ever
        // awaited a send).
        {
            let mut st = lock(&self.state);
            if self.closed(&st) {
                return Err(SendError::Closed);
            }
            if self.fits(len) {
                if track {
                    self.start_tracking(&mut st);
                }
                self.enqueue(&mut st, msg);
                let seq = if track { pushed(&st) } else { 0 };
                drop(st);
                self.writer.wake();
                return Ok(seq);
            }
        }
        let mut msg = Some(msg);
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
                    if track {
                        self.start_tracking(&mut st);
                    }
                    self.enqueue(&mut st, msg.take().expect("message is queued once"));
                    let seq = if track { pushed(&st) } else { 0 };
                    drop(st);
                    self.writer.wake();
                    return Ok(seq);
                }
            }
            notified.await;
        }
    }

    /// Asks the connection task to close (the first request wins); nothing is accepted after.
    /// Also for a send that timed out (`PendingClose::SendTimeout`): the peer is not reading.
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

    /// Whether the session stopped accepting messages.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Bytes queued or batched and not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Wakes the connection task (e.g. to look at a changed idle timeout).
    pub(crate) fn wake_connection(&self) {
        self.writer.wake();
    }
}

/// Counted in `waiting` while a sender waits (also when its future is dropped), so that
/// releases and writes know to notify.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The number of the message just queued (tracking is on).
fn pushed<S>(st: &super::chan::OutState<S>) -> u32 {
    st.cold
        .as_ref()
        .and_then(|c| c.track.as_ref())
        .map_or(0, |t| t.pushed.wrapping_add(t.held))
}

/// What a broadcast found when it locked a session's queue ([`Outbound::try_claim`]).
pub(crate) enum Claim<'a, S: DirectSocket> {
    /// Locked, and the connection task is idle with its stream: the broadcast writes its frame
    /// to [`Held::stream`] now, then tells [`Held::finish`] what the socket took.
    Direct(Held<'a, S>),
    /// Locked: the message goes through the queue ([`Held::finish`] with no write).
    Queue(Held<'a, S>),
    /// The session accepts nothing more.
    Closed,
    /// Someone else holds the lock (`try_claim` only).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    Busy,
}

/// A session's queue locked by a broadcast, until [`finish`](Held::finish).
pub(crate) struct Held<'a, S: DirectSocket> {
    out: &'a Outbound<S>,
    st: MutexGuard<'a, OutState<S>>,
}

impl<S: DirectSocket> Held<'_, S> {
    /// The socket of a [`Claim::Direct`].
    pub(crate) fn stream(&mut self) -> &mut S {
        self.st
            .stream
            .as_mut()
            .expect("a direct claim is made only with the stream in place")
    }

    /// Ends the broadcast's hold: `sent` is the frame written to [`stream`](Self::stream) and
    /// what the socket took, if it was written to; a frame the socket took nothing of, or no
    /// write, queues `msg` (or applies `on_full`). The lock is released before the connection
    /// task is woken.
    pub(crate) fn finish(
        self,
        msg: &Outgoing,
        sent: Option<(&[u8], std::io::Result<usize>)>,
        on_full: OnFull,
    ) -> Pushed {
        let Held { out, mut st } = self;
        if let Some((frame, sent)) = sent {
            match out.direct_outcome(&mut st, frame, sent) {
                Direct::Done => return Pushed::Written,
                Direct::Partial => {
                    drop(st);
                    out.writer.wake();
                    return Pushed::Written;
                }
                Direct::No => {}
            }
        }
        let pushed = if out.fits(msg.len()) {
            out.enqueue(&mut st, msg.clone());
            Pushed::Queued
        } else {
            match on_full {
                OnFull::Close => {
                    out.mark_closed(&mut st);
                    st.cold().close = Some(PendingClose::Overflow);
                    out.close_pending.store(true, Ordering::Release);
                    Pushed::Overflowed
                }
                OnFull::Drop => {
                    st.cold().dropped += 1;
                    out.has_dropped.store(true, Ordering::Release);
                    Pushed::Dropped
                }
                OnFull::Report => return Pushed::Full,
            }
        };
        drop(st);
        out.writer.wake();
        if pushed == Pushed::Overflowed {
            out.notify_space();
        }
        pushed
    }
}
