//! A session's outbound queue: byte-bounded, drained by the connection task, written to by
//! any task, and, for an idle plain-TCP connection, bypassed by broadcasts that write to the
//! socket themselves.
//!
//! Split like tokio's `mpsc` (`bounded.rs` over `chan.rs`):
//!
//! | file | what it holds |
//! |---|---|
//! | `chan` | the shared core: the locked state, the lock-free hints, the rules they keep |
//! | `send` | the sending side: `Session::send`/`try_send`/`close`, and a broadcast's push or direct write |
//! | `recv` | the receiving side, used by the connection task alone: take, write, release, idle/busy, deadlines |
//! | `writer` | a message writer's hold on the queue: its parts go in order, every other message waits behind its last part |
//!
//! The queue carries [`Outgoing`] items: messages, and payloads a broadcast compressed once for
//! all its recipients. The three files name nothing of the crate but what this module hands
//! them (`super::...`),
//! so that `endpoint-runtime/tests/loom_outbound.rs` can compile them against `loom`'s
//! primitives and a scripted socket, and check the hand-offs in every interleaving.

mod chan;
mod recv;
mod send;
pub(crate) mod writer;

#[cfg(feature = "io-uring")]
pub(crate) use chan::DirectSocket;
pub(crate) use chan::{OnFull, Outbound, PendingClose, Pushed};
#[cfg(feature = "io-uring")]
pub(crate) use send::{Claim, Held};

use crate::error::SendError;
use crate::message::CloseReason;
use crate::protocol::frame::Outgoing;

/// The primitives the queue is built on; the loom test supplies its own.
mod sync {
    pub(super) use futures::task::AtomicWaker;
    pub(super) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub(super) use std::sync::{Mutex, MutexGuard};

    pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        crate::util::lock(m)
    }

    /// The lock if no one holds it (a poisoned one is taken, as `lock` takes it).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    pub(super) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
        match m.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Flags of a direct write's `send`: never raise `SIGPIPE` on a peer that went away (Rust
/// programs ignore it by default; a host program embedding the runtime might not).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

impl chan::DirectSocket for std::net::TcpStream {
    /// A plain `send` with `MSG_NOSIGNAL`, ignoring the connection's readiness bits
    /// (`Outbound::ready`): a full socket says `WouldBlock` either way, and the connection
    /// task's own write then brings the bits up to date (no readiness check: a cache miss per
    /// subscriber on a 10,000-member broadcast, for nothing).
    fn send_now(&mut self, frame: &[u8]) -> std::io::Result<usize> {
        socket2::SockRef::from(&*self).send_with_flags(frame, SEND_FLAGS)
    }
}
