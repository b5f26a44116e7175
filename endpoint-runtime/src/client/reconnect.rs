//! [`Reconnect`]: whether, when and how often a client connects again after its connection
//! ended (Tyrus's `ReconnectHandler`, with the backoff built in).

use std::sync::Arc;
use std::time::Duration;

use super::ConnectError;
use crate::message::{CloseCode, CloseReason};

/// The reconnect policy of a [`Client`](super::Client): off unless one is set
/// ([`Client::reconnect`](super::Client::reconnect)).
///
/// After a connection ends, the client waits, then connects again (with the same endpoint
/// value: its fields carry over, and `on_open` runs again), until an attempt succeeds or the
/// policy gives up. The wait before attempt *n* (from 1) is `initial * factor^(n-1)`, at most
/// `max`, less a random part of up to `jitter` of it, so that many clients cut off at once do
/// not all come back at the same instant. A successful connection starts the count again.
///
/// | Tyrus `ReconnectHandler` | here |
/// |---|---|
/// | `onDisconnect(CloseReason)` | [`ReconnectHandler::on_disconnect`]: default, every ending but a normal close (1000) |
/// | `onConnectFailure(Exception)` | [`ReconnectHandler::on_connect_failure`]: default, always |
/// | `getDelay()` | [`Reconnect::exponential`], [`factor`](Reconnect::factor), [`jitter`](Reconnect::jitter) |
///
/// Closing the [`Connection`](super::Connection) stops reconnecting. While disconnected,
/// sends through the `Connection` fail with [`SendError::NotConnected`](crate::SendError):
/// nothing is queued for a connection that may never come.
///
/// ```
/// use std::time::Duration;
/// use endpoint_runtime::client::{Client, Reconnect};
///
/// let policy = Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(10))
///     .jitter(0.3)
///     .max_attempts(20)
///     .give_up_after(Duration::from_secs(300));
/// assert_eq!(policy.clone().jitter(0.0).delay(4), Duration::from_millis(800));
/// let client = Client::new().reconnect(policy);
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: Option<u32>,
    give_up_after: Option<Duration>,
    handler: Option<Arc<dyn ReconnectHandler>>,
}

impl std::fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconnect")
            .field("initial", &self.initial)
            .field("max", &self.max)
            .field("factor", &self.factor)
            .field("jitter", &self.jitter)
            .field("max_attempts", &self.max_attempts)
            .field("give_up_after", &self.give_up_after)
            .field("handler", &self.handler.is_some())
            .finish()
    }
}

/// Decides, per ending and per failed attempt, whether the client connects again (Tyrus's
/// `ReconnectHandler`). Set with [`Reconnect::handler`].
///
/// ```
/// use endpoint_runtime::client::{ConnectError, ReconnectHandler};
/// use endpoint_runtime::CloseReason;
///
/// struct NotWhenRefused;
/// impl ReconnectHandler for NotWhenRefused {
///     fn on_connect_failure(&self, error: &ConnectError, _attempt: u32) -> bool {
///         // A 401 or 403 will not get better by trying again.
///         !matches!(error, ConnectError::Status { status, .. } if status.is_client_error())
///     }
/// }
/// ```
pub trait ReconnectHandler: Send + Sync + 'static {
    /// The connection ended with `reason` (as `on_close` saw it): connect again? By default,
    /// yes unless it was a normal close (1000), whoever sent it.
    fn on_disconnect(&self, reason: &CloseReason) -> bool {
        reason.code() != CloseCode::NORMAL
    }

    /// Attempt number `attempt` (from 1) failed with `error`: go on trying? By default, yes
    /// (until the policy's limits).
    fn on_connect_failure(&self, error: &ConnectError, attempt: u32) -> bool {
        let _ = (error, attempt);
        true
    }
}

/// The default decisions.
struct Defaults;
impl ReconnectHandler for Defaults {}

impl Reconnect {
    /// Backoff from `initial`, doubling each attempt, at most `max`; jitter 0.2; no limit on
    /// attempts or time.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Reconnect {
            initial,
            max: max.max(initial),
            factor: 2.0,
            jitter: 0.2,
            max_attempts: None,
            give_up_after: None,
            handler: None,
        }
    }

    /// The growth of the wait from one attempt to the next (at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// How much of each wait may be taken off at random, 0 (none) to 1 (all of it).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Gives up after this many failed attempts in a row.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Gives up when the connection has been down this long (an attempt whose wait would end
    /// past it is not made).
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = Some(after);
        self
    }

    /// Decides per ending and per failed attempt whether to go on ([`ReconnectHandler`]).
    pub fn handler(mut self, handler: impl ReconnectHandler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// The wait before attempt `attempt` (from 1), jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let base = base.min(self.max.as_secs_f64());
        let cut = if self.jitter > 0.0 {
            self.jitter * rand::random::<f64>()
        } else {
            0.0
        };
        Duration::from_secs_f64(base * (1.0 - cut))
    }

    pub(crate) fn handler_or_default(&self) -> &dyn ReconnectHandler {
        match &self.handler {
            Some(handler) => handler.as_ref(),
            None => &Defaults,
        }
    }

    /// Whether attempt `attempt`, made `down` after the connection was lost, is past the
    /// limits.
    pub(crate) fn gives_up(&self, attempt: u32, down: Duration) -> bool {
        self.max_attempts.is_some_and(|max| attempt > max)
            || self.give_up_after.is_some_and(|limit| down > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_up_to_the_cap_and_jitter_only_shortens() {
        let p =
            Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
        let waits: Vec<u128> = (1..=6).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        let j = p.clone().jitter(0.5);
        for n in 1..=6 {
            for _ in 0..50 {
                let d = j.delay(n);
                assert!(d <= p.delay(n) && d >= p.delay(n) / 2, "{n}: {d:?}");
            }
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| j.delay(3)).collect();
        assert!(distinct.len() > 1, "jitter varies the waits");
    }

    #[test]
    fn limits_give_up() {
        let p = Reconnect::exponential(Duration::from_millis(10), Duration::from_secs(1))
            .max_attempts(3)
            .give_up_after(Duration::from_secs(5));
        assert!(!p.gives_up(3, Duration::from_secs(1)));
        assert!(p.gives_up(4, Duration::from_secs(1)));
        assert!(p.gives_up(1, Duration::from_secs(6)));
        let d = p.handler_or_default();
        assert!(!d.on_disconnect(&CloseReason::new(CloseCode::NORMAL, "")));
        assert!(d.on_disconnect(&CloseReason::new(CloseCode::GOING_AWAY, "")));
    }
}
