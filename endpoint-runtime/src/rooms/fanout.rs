//! Fan-out: one message to many sessions, encoded once.

use crate::error::EndpointError;
use crate::message::{Encode, Message};
use crate::protocol::frame;
use crate::session::{Pushed, Session, SessionId};
use crate::stats::{self, Counters};

use super::Delivery;

/// Largest payload a broadcast writes to a socket itself (a larger one goes through the queue).
const DIRECT_MAX: usize = 16 * 1024;

thread_local! {
    /// Where a broadcast encodes the frame its direct writes send.
    static DIRECT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `msg` encoded once as the frame a broadcast may write to idle sockets itself
/// (`None` when it may not: not a data message, or larger than [`DIRECT_MAX`]).
///
/// Every recipient is sent the same bytes, so a broadcast encodes them once, not once per
/// recipient. That holds while frames are the same for every connection; a per-connection
/// extension (compression with context takeover) would encode per recipient, or per group of
/// recipients that share its parameters, here.
fn with_direct_frame<R>(msg: &Message, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    let (opcode, payload) = frame::opcode_and_bytes(msg);
    if !opcode.is_data() || payload.len() > DIRECT_MAX {
        return f(None);
    }
    // One contiguous buffer: `send` costs less than `writev` in the kernel.
    DIRECT_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        frame::encode_frame(&mut buf, opcode, payload);
        f(Some(&buf))
    })
}

/// Encodes once, queues a shared clone on every recipient (or, to an idle one, writes the frame
/// encoded once for all of them). The recipients are one endpoint's sessions, so they share
/// `counters`: what the connection tasks never see (direct writes) is counted once, at the end.
pub(crate) fn fan_out(
    recipients: Vec<Session>,
    message: impl Encode,
    except: Option<SessionId>,
    counters: &Counters,
) -> Result<Delivery, EndpointError> {
    let message = message.encode()?;
    let mut delivery = Delivery::default();
    let mut written = 0u64;
    with_direct_frame(&message, |frame| {
        for session in recipients {
            if Some(session.id()) == except {
                continue;
            }
            match session.outbound().push_or_overflow(&message, frame) {
                Pushed::Queued => delivery.delivered += 1,
                Pushed::Written => {
                    written += 1;
                    delivery.delivered += 1;
                }
                Pushed::Overflowed => delivery.overflowed += 1,
                Pushed::Closed => {}
            }
        }
    });
    if written > 0 {
        // Counted here: the connection tasks never see these messages.
        stats::add(&counters.messages_out, written);
        stats::add(&counters.bytes_out, written * message.len() as u64);
    }
    Ok(delivery)
}
