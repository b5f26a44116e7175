//! The receiving side of the outbound queue: the connection task's, and no one else's.

use std::collections::VecDeque;
use std::task::Waker;

use super::chan::{DirectSocket, Outbound, PendingClose};
use super::sync::{lock, Ordering};
use super::Outgoing;

impl<S: DirectSocket> Outbound<S> {
    /// Registers the connection task's waker; call on every poll, before looking at the
    /// queue, so that nothing queued after the look goes unnoticed.
    pub(crate) fn register(&self, waker: &Waker) {
        self.writer.register(waker);
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

    /// Hands the TCP stream to the queue (see [`Outbound`]).
    pub(crate) fn attach(&self, stream: S) {
        lock(&self.state).stream = Some(stream);
    }

    /// Closes the TCP stream, if the queue holds it: at the end of the connection task,
    /// whoever still holds the session.
    pub(crate) fn release_stream(&self) {
        self.idle.store(false, Ordering::Release);
        let stream = lock(&self.state).stream.take();
        drop(stream);
    }

    /// Runs `f` on the TCP stream under the lock (`None` once it was released).
    pub(crate) fn with_stream<R>(&self, f: impl FnOnce(Option<&mut S>) -> R) -> R {
        f(lock(&self.state).stream.as_mut())
    }

    /// For the connection task's own replies: appends `msg` to `batch` behind whatever is
    /// queued, counted like a queued message; no wake-up needed, and no lock when nothing is
    /// queued. `Err(msg)` when there is no room (or the session is closed): the caller waits
    /// like `push`.
    pub(crate) fn push_local(
        &self,
        msg: Outgoing,
        batch: &mut VecDeque<Outgoing>,
    ) -> Result<(), Outgoing> {
        if self.closed.load(Ordering::Acquire)
            || !self.fits(msg.len())
            || self.writing.load(Ordering::Acquire)
        {
            // Full, closed, or behind an open message writer: the caller's `push` decides.
            return Err(msg);
        }
        self.busy();
        if self.tracking.load(Ordering::Acquire) {
            // Numbered in the batch's order: what is queued goes first, under the lock.
            let mut st = lock(&self.state);
            self.queued.store(false, Ordering::Release);
            batch.extend(st.queue.drain(..));
            if let Some(track) = st.cold.as_mut().and_then(|c| c.track.as_mut()) {
                track.pushed = track.pushed.wrapping_add(1);
            }
            drop(st);
            self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
            batch.push_back(msg);
            return Ok(());
        }
        self.drain_into(batch);
        self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
        batch.push_back(msg);
        Ok(())
    }

    /// Moves everything queued into `into` (the connection task's local batch).
    pub(crate) fn drain_into(&self, into: &mut VecDeque<Outgoing>) -> usize {
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

    /// For send completion: the number of the last message queued or batched, read before the
    /// connection task takes what is queued (`None` when no sender asked for completion).
    /// Once what it then holds is written, [`mark_written`](Self::mark_written) with it.
    pub(crate) fn written_mark(&self) -> Option<u32> {
        if !self.tracking.load(Ordering::Acquire) {
            return None;
        }
        let st = lock(&self.state);
        st.cold
            .as_ref()
            .and_then(|c| c.track.as_ref())
            .map(|t| t.pushed)
    }

    /// Everything up to message `mark` was written to the socket: wakes the senders waiting
    /// for it.
    pub(crate) fn mark_written(&self, mark: u32) {
        let space = {
            let mut st = lock(&self.state);
            let Some(cold) = st.cold.as_mut() else {
                return;
            };
            match cold.track.as_mut() {
                Some(track) if track.written != mark => track.written = mark,
                _ => return,
            }
            cold.space.clone()
        };
        if self.waiting.load(Ordering::SeqCst) > 0 {
            if let Some(space) = space {
                space.notify_waiters();
            }
        }
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

    /// The close asked for by `request_close` or an overflow, once.
    pub(crate) fn take_close(&self) -> Option<PendingClose> {
        if !self.close_pending.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.state).take_cold(|c| c.close.take())
    }

    /// How many messages broadcasts dropped for this session (the `Drop` policy) since the
    /// last call; `None` when none.
    pub(crate) fn take_dropped(&self) -> Option<u64> {
        if !self.has_dropped.load(Ordering::Acquire) {
            return None;
        }
        let mut st = lock(&self.state);
        self.has_dropped.store(false, Ordering::Release);
        st.take_cold(|c| Some(std::mem::take(&mut c.dropped)))
            .filter(|n| *n > 0)
    }

    /// Stops accepting messages and drops whatever is still queued.
    pub(crate) fn shut(&self) {
        {
            let mut st = lock(&self.state);
            self.mark_closed(&mut st);
            self.idle.store(false, Ordering::Release);
            st.queue = Vec::new();
            if let Some(track) = st.cold.as_mut().and_then(|c| c.track.as_mut()) {
                track.dead = true;
            }
            self.drop_writer(&mut st);
            self.bytes.store(0, Ordering::Release);
        }
        self.notify_space();
    }

    /// Data messages broadcasts wrote to the socket directly so far (wrapping).
    pub(crate) fn direct_sent(&self) -> u32 {
        self.direct_sent.load(Ordering::Relaxed)
    }

    /// Sets (0: clears) the time the connection task wants to be woken at.
    pub(crate) fn set_deadline(&self, at: u64) {
        self.deadline_ms.store(at, Ordering::Release);
    }

    /// For the server's timer: wakes the connection task when its deadline passed by `now`;
    /// returns the deadline still ahead (0: none or passed).
    pub(crate) fn wake_if_due(&self, now: u64) -> u64 {
        match self.deadline_ms.load(Ordering::Acquire) {
            0 => 0,
            at if at <= now => {
                self.writer.wake();
                0
            }
            at => at,
        }
    }
}
