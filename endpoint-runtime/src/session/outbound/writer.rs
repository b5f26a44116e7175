//! A message writer's hold on the outbound queue (`Session::text_writer`, `binary_writer`):
//! while a writer is open, its parts go into the queue in order and every other data message
//! (another task's `send`, a broadcast, a handler's reply) waits behind its last part, so no
//! frame of another message ever comes between two of its frames (RFC 6455 5.4 allows only
//! control frames there).
//!
//! * **Opening** waits while another writer is open (one at a time per session), like a sender
//!   waiting for room, on the same `Notify`.
//! * **Deferred messages** are counted in `bytes` like queued ones, so the queue's bound covers
//!   them: a broadcast that does not fit overflows (1008) as usual. The writer's own parts only
//!   wait for what is really queued (`fits_part`), or a writer could wait for room that only
//!   its own last part frees.
//! * **Direct writes** (`chan.rs`) are refused while a writer is open, and the connection
//!   task's replies take the queue (`recv.rs::push_local`).
//! * **Closing** the writer (its last part, or the writer dropped: an empty last frame) moves
//!   what waited into the queue behind the last part and wakes the next writer.
//! * Control frames the connection sends itself (pings) go into the queue at once
//!   (`try_push_control`): they may come between a message's frames, and a keep-alive ping held
//!   behind a long message would make its pong come too late.

use std::sync::Arc;

use super::chan::{DirectSocket, OutState, Outbound};
use super::sync::{lock, AtomicU32, Ordering};
use super::{Outgoing, SendError};

/// The messages that wait for the open writer's last part, in order.
#[derive(Default)]
pub(crate) struct Writing {
    deferred: Vec<Outgoing>,
    deferred_bytes: usize,
}

impl Writing {
    pub(super) fn defer(&mut self, msg: Outgoing) {
        self.deferred_bytes += msg.len();
        self.deferred.push(msg);
    }
}

/// Counts a waiting sender while it waits (also when its future is dropped).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S: DirectSocket> Outbound<S> {
    /// Waits until `ready` (called under the lock) says it did what it waited for; `Err` once
    /// the session is closed.
    async fn wait_for(
        &self,
        mut ready: impl FnMut(&Self, &mut OutState<S>) -> bool,
    ) -> Result<(), SendError> {
        // As in `send.rs::push`: the `Notify` exists before this sender counts itself.
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
                if ready(self, &mut st) {
                    drop(st);
                    self.writer.wake();
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Opens the session's message writer, waiting while another one is open.
    pub(crate) async fn open_writer(&self) -> Result<(), SendError> {
        self.wait_for(|this, st| {
            if st.writing().is_some() {
                return false;
            }
            st.cold().writer = Some(Writing::default());
            this.writing.store(true, Ordering::Release);
            true
        })
        .await
    }

    /// Whether the writer's part of `len` bytes fits: messages waiting behind it do not count.
    fn fits_part(&self, st: &mut OutState<S>, len: usize) -> bool {
        let deferred = st.writing().map_or(0, |w| w.deferred_bytes);
        let bytes = self.bytes.load(Ordering::Acquire).saturating_sub(deferred);
        bytes == 0 || bytes + len <= self.limit
    }

    /// Queues the open writer's part, waiting for room; with `last`, then closes the writer.
    pub(crate) async fn push_part(&self, part: Outgoing, last: bool) -> Result<(), SendError> {
        let len = part.len();
        let mut part = Some(part);
        let pushed = self
            .wait_for(|this, st| {
                if !this.fits_part(st, len) {
                    return false;
                }
                this.enqueue_part(st, part.take().expect("queued once"));
                if last {
                    this.release_deferred(st);
                }
                true
            })
            .await;
        if last {
            self.notify_space();
        }
        pushed
    }

    /// The writer went away before its last part: ends its message with `last` (an empty
    /// final frame, queued whatever the bound: it holds no bytes), or with nothing when it
    /// sent no part, and lets the messages that waited go.
    pub(crate) fn abort_writer(&self, last: Option<Outgoing>) {
        {
            let mut st = lock(&self.state);
            if st.writing().is_none() {
                return;
            }
            if let Some(last) = last.filter(|_| !self.closed(&st)) {
                self.enqueue_part(&mut st, last);
            }
            self.release_deferred(&mut st);
        }
        self.writer.wake();
        self.notify_space();
    }

    /// Queues a control frame of the connection's own (a ping) ahead of what waits for an open
    /// writer: control frames may come between a message's frames (RFC 6455 5.4).
    pub(crate) fn try_push_control(&self, msg: Outgoing) -> Result<(), SendError> {
        {
            let mut st = lock(&self.state);
            if self.closed(&st) {
                return Err(SendError::Closed);
            }
            if !self.fits(msg.len()) {
                return Err(SendError::Full);
            }
            self.enqueue_part(&mut st, msg);
        }
        self.writer.wake();
        Ok(())
    }

    /// Appends to the queue itself, past any writer's hold.
    fn enqueue_part(&self, st: &mut OutState<S>, msg: Outgoing) {
        self.bytes.fetch_add(msg.len(), Ordering::AcqRel);
        st.queue.push(msg);
        self.queued.store(true, Ordering::Release);
    }

    /// Closes the writer: what waited for it goes into the queue, in order.
    fn release_deferred(&self, st: &mut OutState<S>) {
        if let Some(writing) = st.take_cold(|c| c.writer.take()) {
            if !writing.deferred.is_empty() {
                st.queue.extend(writing.deferred);
                self.queued.store(true, Ordering::Release);
            }
        }
        // The numbered ones among them are now in the queue: a written mark may cover them.
        if let Some(track) = st.cold.as_mut().and_then(|c| c.track.as_mut()) {
            track.pushed = track.pushed.wrapping_add(std::mem::take(&mut track.held));
        }
        self.writing.store(false, Ordering::Release);
    }

    /// The session shut: the writer's hold and what waited go with the queue.
    pub(super) fn drop_writer(&self, st: &mut OutState<S>) {
        drop(st.take_cold(|c| c.writer.take()));
        self.writing.store(false, Ordering::Release);
    }
}
