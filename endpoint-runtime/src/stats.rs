//! Counters users can read: [`ServerHandle::stats`](crate::server::ServerHandle::stats).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the server's counters since it started.
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// let server = endpoint_runtime::Server::new().bind("127.0.0.1:0").await?;
/// let stats = server.handle().stats();
/// assert_eq!(stats.open_sessions, 0);
/// assert_eq!(stats.accepted, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions open now.
    pub open_sessions: u64,
    /// Handshakes that ended in `101 Switching Protocols`.
    pub accepted: u64,
    /// Refused handshakes, by reason: `not_found`, `method_not_allowed`, `upgrade_required`,
    /// `bad_request`, `overloaded`, `rejected` (by a configurator or origin check).
    pub rejected: Vec<(&'static str, u64)>,
    /// Messages received (text, binary, pong).
    pub messages_in: u64,
    /// Messages handed to the socket (text, binary, ping, pong).
    pub messages_out: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes handed to the socket.
    pub bytes_out: u64,
    /// Sessions closed because their outbound queue overflowed, or a send to them timed out
    /// (1008).
    pub slow_consumers: u64,
    /// Broadcast messages dropped for a recipient whose queue was full (the
    /// [`SlowConsumer::Drop`](crate::SlowConsumer::Drop) policy; each recipient's `on_error`
    /// is told with [`EndpointError::Dropped`](crate::EndpointError::Dropped)).
    pub dropped_messages: u64,
    /// Handler panics caught.
    pub panics: u64,
    /// The broker's health and traffic, when the server has one.
    pub broker: Option<BrokerStats>,
    /// zlib compressors held by connections now (permessage-deflate with server context
    /// takeover: about 370 KiB each at 15 window bits, 245 KiB at 9), in this process.
    pub compressors_held: u64,
    /// zlib decompressors held by connections now (client context takeover, or a fragmented
    /// compressed message being inflated: about 46 KiB each), in this process.
    pub decompressors_held: u64,
    /// Room history and recoveries, when the server has a
    /// [`RoomHistory`](crate::history::RoomHistory).
    pub history: Option<HistoryStats>,
}

impl Stats {
    /// Refusals for one reason.
    pub fn rejected(&self, reason: &str) -> u64 {
        self.rejected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

/// A broker's health and traffic, shown in [`Stats::broker`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Whether the broker is connected right now.
    pub connected: bool,
    /// How many times the connection was lost.
    pub outages: u64,
    /// Broadcasts forwarded to other nodes.
    pub published: u64,
    /// Broadcasts received from other nodes.
    pub received: u64,
    /// Broadcasts that could not be forwarded (e.g. during an outage).
    pub dropped: u64,
}

/// Room history and recoveries, shown in [`Stats::history`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryStats {
    /// Rooms whose history holds messages (as far as the store tells without waiting; a Redis
    /// store tells nothing here: 0).
    pub rooms: u64,
    /// Messages held.
    pub entries: u64,
    /// Payload bytes held.
    pub bytes: u64,
    /// Messages published through this node ([`Room::publish`](crate::Room::publish)).
    pub published: u64,
    /// Recoveries served ([`Session::join_from`](crate::Session::join_from)).
    pub recoveries: u64,
    /// Recoveries that delivered everything the session missed.
    pub recovered: u64,
    /// Recoveries that could not (epoch changed, history trimmed): "not recoverable".
    pub not_recovered: u64,
    /// Stored messages replayed by recoveries.
    pub replayed: u64,
}

impl BrokerStats {
    /// Stats of a connected broker with no traffic yet.
    pub fn connected() -> Self {
        BrokerStats {
            connected: true,
            ..Default::default()
        }
    }
}

pub(crate) const REJECT_REASONS: [&str; 6] = [
    "not_found",
    "method_not_allowed",
    "upgrade_required",
    "bad_request",
    "overloaded",
    "rejected",
];

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: [AtomicU64; 6],
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
    pub(crate) panics: AtomicU64,
}

impl Counters {
    pub(crate) fn reject(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, open_sessions: u64) -> Stats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let held = crate::protocol::deflate::held_streams();
        Stats {
            open_sessions,
            accepted: get(&self.accepted),
            rejected: REJECT_REASONS
                .iter()
                .zip(&self.rejected)
                .map(|(r, n)| (*r, get(n)))
                .collect(),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            slow_consumers: get(&self.slow_consumers),
            dropped_messages: get(&self.dropped_messages),
            panics: get(&self.panics),
            broker: None,
            history: None,
            compressors_held: held.0 as u64,
            decompressors_held: held.1 as u64,
        }
    }
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}
