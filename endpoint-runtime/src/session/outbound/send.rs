//! The sending side of the outbound queue: what any task holding the session does.

use std::sync::Arc;

use super::chan::{Direct, DirectSocket, OnFull, Outbound, PendingClose, Pushed};
use super::sync::{lock, AtomicU32, Ordering};
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
                match on_full {
                    OnFull::Close => {
                        self.mark_closed(&mut st);
                        st.cold().close = Some(PendingClose::Overflow);
                        self.close_pending.store(true, Ordering::Release);
                        Pushed::Overflowed
                    }
                    OnFull::Drop => {
                        st.cold().dropped += 1;
                        self.has_dropped.store(true, Ordering::Release);
                        Pushed::Dropped
                    }
                    OnFull::Report => return Pushed::Full,
                }
            }
        };
        self.writer.wake();
        if pushed == Pushed::Overflowed {
            self.notify_space();
        }
        pushed
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
