//! Keep-alive and idle-timeout deadlines of every session, watched by one task per server
//! instead of one timer per connection.
//!
//! A connection task that waits for its next deadline writes it (milliseconds since the
//! server's epoch) into its session's outbound queue and goes to sleep; no timer of its own. One watcher task
//! sleeps until the earliest deadline of all, then scans the sessions and wakes those whose
//! deadline passed; each of them checks its deadlines against the clock itself, so a wake-up
//! is never early in effect, and a deadline is acted on at most [`RESOLUTION_MS`] late. Scans
//! are at least [`RESOLUTION_MS`] apart, so the cost stays a few atomic loads per session and
//! scan however many deadlines there are. (Tomcat checks its timeouts once a second;
//! uWebSockets in steps of 4 seconds.)
//!
//! An idle connection thereby saves the timer (about 130 bytes with its allocation) and the
//! timer wheel's bookkeeping; the watcher costs one task per server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::session::{EndpointRegistry, Outbound};

/// The most a deadline is acted on late, and the least time between two scans.
pub(crate) const RESOLUTION_MS: u64 = 50;

/// "No deadline".
pub(crate) const NONE: u64 = 0;

/// The server's deadlines; see the module docs. Dropped with the server's shared state, which
/// stops the watcher.
pub(crate) struct Timers {
    core: Arc<Core>,
}

struct Core {
    epoch: Instant,
    /// The earliest deadline set since the last scan began (`u64::MAX`: none).
    earliest: AtomicU64,
    /// Wakes the watcher: an earlier deadline, or the end of the server.
    wake: Notify,
    closed: AtomicBool,
    started: AtomicBool,
    /// The registries scanned.
    endpoints: Vec<Arc<EndpointRegistry>>,
}

impl Timers {
    pub(crate) fn new(endpoints: Vec<Arc<EndpointRegistry>>) -> Self {
        Timers {
            core: Arc::new(Core {
                epoch: Instant::now(),
                earliest: AtomicU64::new(u64::MAX),
                wake: Notify::new(),
                closed: AtomicBool::new(false),
                started: AtomicBool::new(false),
                endpoints,
            }),
        }
    }

    /// Milliseconds since the epoch, counted from 1 (0 is [`NONE`]).
    pub(crate) fn now_ms(&self) -> u64 {
        self.core.now_ms()
    }

    /// Sets (or, with [`NONE`], clears) a connection's deadline, waking the watcher when it is
    /// the earliest. Call from the connection task, which the watcher then wakes through the
    /// waker of its outbound queue.
    pub(crate) fn set(&self, out: &Outbound, at: u64) {
        out.set_deadline(at);
        if at == NONE {
            return;
        }
        let core = &self.core;
        if !core.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(watch(core.clone()));
        }
        if at < core.earliest.fetch_min(at, Ordering::AcqRel) {
            core.wake.notify_one();
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.core.closed.store(true, Ordering::Release);
        self.core.wake.notify_one();
    }
}

impl Core {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Wakes the sessions whose deadline passed; returns the earliest deadline left.
    fn scan(&self, now: u64) -> u64 {
        let mut next = u64::MAX;
        for endpoint in &self.endpoints {
            endpoint.for_each_outbound(|out| match out.wake_if_due(now) {
                NONE => {}
                at => next = next.min(at),
            });
        }
        next
    }
}

/// The watcher task: sleeps until the earliest deadline (at least [`RESOLUTION_MS`] after the
/// last scan), scans, repeats; ends when the server's state is dropped.
async fn watch(core: Arc<Core>) {
    let mut last_scan = 0;
    loop {
        if core.closed.load(Ordering::Acquire) {
            return;
        }
        let earliest = core.earliest.load(Ordering::Acquire);
        if earliest == u64::MAX {
            core.wake.notified().await;
            continue;
        }
        let at = earliest.max(last_scan + RESOLUTION_MS);
        let now = core.now_ms();
        if at > now {
            let sleep = tokio::time::sleep_until(core.epoch + Duration::from_millis(at - 1));
            tokio::select! {
                _ = sleep => {}
                _ = core.wake.notified() => continue,
            }
        }
        // Deadlines set from here on are kept by `fetch_min`; those set before are seen by
        // the scan (a session stores its deadline before it lowers `earliest`).
        core.earliest.store(u64::MAX, Ordering::Release);
        let now = core.now_ms();
        last_scan = now;
        let next = core.scan(now);
        core.earliest.fetch_min(next, Ordering::AcqRel);
    }
}
