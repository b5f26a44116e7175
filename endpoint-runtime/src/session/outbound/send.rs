//! The sending side of the outbound queue: what any task holding the session does.

use std::sync::Arc;

use super::chan::{Direct, DirectSocket, Outbound, PendingClose, Pushed};
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
    pub(crate) fn push_or_overflow(&self, msg: &Outgoing, frame: Option<&[u8]>) -> Pushed {
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

    /// Queues, waiting for room.
    pub(crate) async fn push(&self, msg: Outgoing) -> Result<(), SendError> {
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

    /// Asks the connection task to close (the first request wins); nothing is accepted after.
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
