//! Fan-out: one message to many sessions, encoded once, and compressed once for every group of
//! recipients that agreed the same permessage-deflate settings without context takeover.

use crate::config::SlowConsumer;
use crate::error::EndpointError;
use crate::message::{Encode, Message};
use crate::protocol::deflate::{SharedCompression, Sharing};
use crate::protocol::frame::{self, Outgoing};
use crate::session::{EndpointRegistry, OnFull, Pushed, Session};
use crate::stats;

use super::Delivery;

#[cfg(feature = "io-uring")]
mod ring;

/// Largest payload a broadcast writes to a socket itself (a larger one goes through the queue,
/// and a wake-up of each recipient's connection task). 32 KiB: a loopback or LAN socket's send
/// buffer takes such a frame whole, and a 20 KiB broadcast then costs its recipients what a
/// small one does (per server CPU-second, 1.25x what the queue and a wake-up per recipient
/// cost). Encoded once per broadcast; what a socket does not take is copied into the
/// recipient's `raw` (not counted in the queue's bound, so a session holds at most this much
/// beyond it: the next messages queue behind it, and they are counted). Not 64 KiB: larger
/// messages keep the queue's accounting (a flood of 64 KiB broadcasts to a peer that does not
/// read overflows at the bound, `tests/rooms.rs`, instead of filling the kernel's buffers
/// first; the test floods with 128 KiB now, so that it holds for any size here), and `raw`
/// stays small.
const DIRECT_MAX: usize = 32 * 1024;

/// How many recipients the fan-out looks at before it writes to them (`fan_out_inner`): enough
/// for their cache misses to overlap, few enough that their lines are still cached when the
/// writes come (16 sends of kernel work in between).
const GROUP: usize = 16;

/// One form of the message, as some recipients get it: the queue item, and the frame a
/// broadcast may write to an idle recipient's socket itself (`None`: it may not).
struct Form {
    item: Outgoing,
    frame: Option<Vec<u8>>,
}

impl Form {
    fn new(item: Outgoing) -> Form {
        let (opcode, payload, compressed) = match &item {
            Outgoing::Message(m) => {
                let (opcode, payload) = frame::opcode_and_bytes(m);
                (opcode, payload, false)
            }
            Outgoing::Deflated { opcode, payload } => (*opcode, &payload[..], true),
            // Made only of a broadcast's message (below); a part is a message writer's.
            Outgoing::Part { .. } | Outgoing::LastPart { .. } => {
                unreachable!("a broadcast is a whole message")
            }
        };
        // One contiguous buffer: `send` costs less than `writev` in the kernel.
        let frame = (opcode.is_data() && payload.len() <= DIRECT_MAX).then(|| {
            let mut frame = Vec::new();
            frame::encode_frame_for(&mut frame, opcode, compressed, payload);
            frame
        });
        Form { item, frame }
    }
}

/// The forms of one broadcast: plain, and compressed per distinct setting, each made once, when
/// the first recipient that needs it comes.
struct Forms<'a> {
    message: &'a Message,
    min_size: usize,
    plain: Form,
    deflated: Vec<(SharedCompression, Form)>,
}

impl<'a> Forms<'a> {
    fn new(message: &'a Message, min_size: usize) -> Self {
        Forms {
            message,
            min_size,
            plain: Form::new(Outgoing::Message(message.clone())),
            deflated: Vec::new(),
        }
    }

    /// The form `sharing` calls for (made now if it is the first recipient that needs it).
    /// Every recipient is sent the same bytes as the others of its group: a message compressed
    /// with an N-bit window is valid for any recipient that agreed N bits.
    fn for_recipient(&mut self, sharing: Sharing) -> FormId {
        match sharing {
            Sharing::Plain => FormId::Plain,
            // It compresses with its own stream: the message, and no direct write.
            Sharing::Own => FormId::Own,
            Sharing::Shared(settings) => {
                let (opcode, payload) = frame::opcode_and_bytes(self.message);
                if !opcode.is_data() || payload.len() < self.min_size {
                    return FormId::Plain;
                }
                if let Some(at) = self.deflated.iter().position(|(s, _)| *s == settings) {
                    return FormId::Deflated(at);
                }
                let compressed = settings.compress_once(payload);
                // Not smaller: the plain message does (no window keeps it).
                let form = if compressed.len() >= payload.len() {
                    Form::new(Outgoing::Message(self.message.clone()))
                } else {
                    Form::new(Outgoing::Deflated {
                        opcode,
                        payload: compressed,
                    })
                };
                self.deflated.push((settings, form));
                FormId::Deflated(self.deflated.len() - 1)
            }
        }
    }

    /// A form's queue item, and its frame if a broadcast may write it to a socket itself.
    fn get(&self, id: FormId) -> (&Outgoing, Option<&[u8]>) {
        match id {
            FormId::Plain => (&self.plain.item, self.plain.frame.as_deref()),
            FormId::Own => (&self.plain.item, None),
            FormId::Deflated(at) => {
                let form = &self.deflated[at].1;
                (&form.item, form.frame.as_deref())
            }
        }
    }
}

/// Which of a broadcast's [`Forms`] a recipient gets.
#[derive(Clone, Copy)]
enum FormId {
    Plain,
    /// The plain message, never written directly (the recipient compresses it itself).
    Own,
    Deflated(usize),
}

/// Encodes once, queues a shared clone on every recipient (or, to an idle one, writes the frame
/// encoded once for all of them). The recipients are `endpoint`'s sessions, so they share its
/// counters: what the connection tasks never see (direct writes) is counted once, at the end.
///
/// `recipients` is borrowed (usually a room's shared slice, `registry.rs::Members`): the
/// fan-out takes no handle of its own to a recipient, so it does not touch their reference
/// counts. Sessions that are no longer open are skipped.
pub(crate) fn fan_out(
    recipients: &[Session],
    message: impl Encode,
    except: Option<&Session>,
    endpoint: &EndpointRegistry,
) -> Result<Delivery, EndpointError> {
    let policy = endpoint.sending.slow_consumer;
    fan_out_with(recipients, message, except, endpoint, policy)
}

/// `fan_out` with a slow-consumer policy (a room's own). `Wait` cannot wait here: it closes
/// as `Close` does (the awaited `fan_out_wait` waits).
pub(crate) fn fan_out_with(
    recipients: &[Session],
    message: impl Encode,
    except: Option<&Session>,
    endpoint: &EndpointRegistry,
    policy: SlowConsumer,
) -> Result<Delivery, EndpointError> {
    let on_full = match policy {
        SlowConsumer::Drop => OnFull::Drop,
        _ => OnFull::Close,
    };
    fan_out_inner(recipients, message, except, endpoint, on_full).map(|(delivery, _)| delivery)
}

/// The `Wait` policy: recipients with room get the message at once; then the broadcaster
/// waits for each full one in turn (at most its send timeout, after which it is closed with
/// 1008 as not reading), as a Java loop over `getBasicRemote().sendText` does.
pub(crate) async fn fan_out_wait(
    recipients: &[Session],
    message: impl Encode,
    except: Option<&Session>,
    endpoint: &EndpointRegistry,
) -> Result<Delivery, EndpointError> {
    let (mut delivery, full) =
        fan_out_inner(recipients, message, except, endpoint, OnFull::Report)?;
    for (session, item) in full {
        match session.push_bounded(item).await {
            Ok(()) => delivery.delivered += 1,
            Err(crate::error::SendError::Timeout(_)) => delivery.overflowed += 1,
            Err(_) => {}
        }
    }
    Ok(delivery)
}

/// The fan-out itself; with `OnFull::Report`, the recipients whose queue was full, with the
/// form each one needs.
#[allow(clippy::type_complexity)]
fn fan_out_inner(
    recipients: &[Session],
    message: impl Encode,
    except: Option<&Session>,
    endpoint: &EndpointRegistry,
    on_full: OnFull,
) -> Result<(Delivery, Vec<(Session, Outgoing)>), EndpointError> {
    let message = message.encode()?;
    let mut forms = Forms::new(&message, endpoint.compression_min_size());
    let mut tally = Tally::default();
    #[cfg(feature = "io-uring")]
    {
        let done = ring::with_ring(|ring| {
            for group in recipients.chunks(ring::GROUP) {
                ring::fan_out_group(ring, group, except, &mut forms, on_full, &mut tally);
            }
        });
        if done.is_some() {
            return Ok(tally.end(endpoint));
        }
    }
    // In groups: first whether each of a group is open, then the writes. The first touch of
    // each recipient is a cache miss (10,000 sessions do not stay in the cache between two
    // broadcasts, with the kernel's work per send in between); in the writing loop each such
    // miss would wait behind the previous recipient's `send`, while the group's checks, in a
    // loop of their own, miss in parallel, and bring in the lines the writes use (see
    // `Outbound`'s layout). Safe Rust has no prefetch instruction: this is one.
    for group in recipients.chunks(GROUP) {
        let wanted: [bool; GROUP] = wanted(group, except);
        for (session, _) in group.iter().zip(wanted).filter(|(_, w)| *w) {
            push(session, &mut forms, on_full, &mut tally);
        }
    }
    Ok(tally.end(endpoint))
}

/// Which of `group` (at most `N`) get the message: the open ones but `except`. The open flags
/// are read in a loop of their own (see `fan_out_inner`).
fn wanted<const N: usize>(group: &[Session], except: Option<&Session>) -> [bool; N] {
    let mut wanted = [false; N];
    for (wanted, session) in wanted.iter_mut().zip(group) {
        *wanted = session.is_open();
    }
    for (wanted, session) in wanted.iter_mut().zip(group) {
        // By address: the session's id would be one more field to read per recipient.
        *wanted &= except.is_none_or(|e| e != session);
    }
    wanted
}

/// One recipient's push the ordinary way: its form, written or queued by
/// `Outbound::push_broadcast`, counted.
fn push(session: &Session, forms: &mut Forms<'_>, on_full: OnFull, tally: &mut Tally) {
    let id = forms.for_recipient(session.sharing());
    let (item, frame) = forms.get(id);
    let pushed = session.outbound().push_broadcast(item, frame, on_full);
    tally.add(pushed, session, item);
}

/// What a fan-out did, counted as it goes.
#[derive(Default)]
struct Tally {
    delivery: Delivery,
    /// Recipients whose queue was full (`OnFull::Report`), with the form each one needs.
    full: Vec<(Session, Outgoing)>,
    /// Messages and bytes written to sockets directly.
    written: u64,
    written_bytes: u64,
}

impl Tally {
    fn add(&mut self, pushed: Pushed, session: &Session, item: &Outgoing) {
        match pushed {
            Pushed::Queued => self.delivery.delivered += 1,
            Pushed::Written => {
                self.written += 1;
                self.written_bytes += item.len() as u64;
                self.delivery.delivered += 1;
            }
            Pushed::Overflowed => self.delivery.overflowed += 1,
            Pushed::Dropped => self.delivery.dropped += 1,
            Pushed::Full => self.full.push((session.clone(), item.clone())),
            Pushed::Closed => {}
        }
    }

    /// Adds what the connection tasks never see to `endpoint`'s counters.
    fn end(self, endpoint: &EndpointRegistry) -> (Delivery, Vec<(Session, Outgoing)>) {
        let Tally {
            delivery,
            full,
            written,
            written_bytes,
        } = self;
        if written > 0 {
            // Counted here: the connection tasks never see these messages.
            let counters = endpoint.counters();
            stats::add(&counters.messages_out, written);
            stats::add(&counters.bytes_out, written_bytes);
        }
        if delivery.dropped > 0 {
            stats::add(
                &endpoint.counters().dropped_messages,
                delivery.dropped as u64,
            );
        }
        (delivery, full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::registry::tests::{registry, session};

    /// A shared slice may hold sessions that closed after it was made: they are skipped, and
    /// the sender left out by address.
    #[test]
    fn skips_closed_sessions_and_the_sender() {
        let registry = registry();
        let (a, b, c) = (session(&registry), session(&registry), session(&registry));
        let recipients = registry.recipients();
        b.mark_ended();
        let delivery = fan_out(&recipients, "hi", Some(&c), &registry).unwrap();
        assert_eq!(delivery.delivered, 1);
        assert_eq!(a.queued_bytes(), 2);
        assert_eq!(b.queued_bytes(), 0);
        assert_eq!(c.queued_bytes(), 0);
    }

    /// Recipients are looked at in groups (`GROUP`): every one of several groups, and of a last
    /// partial one, is delivered to or skipped as it should be.
    #[test]
    fn every_group_is_delivered_to() {
        let registry = registry();
        let sessions: Vec<_> = (0..GROUP * 2 + 5).map(|_| session(&registry)).collect();
        let recipients = registry.recipients();
        for closed in sessions.iter().step_by(7) {
            closed.mark_ended();
        }
        let except = &sessions[GROUP + 1];
        let delivery = fan_out(&recipients, "hi", Some(except), &registry).unwrap();
        let expected: Vec<bool> = sessions
            .iter()
            .map(|s| s.is_open() && s != except)
            .collect();
        assert_eq!(delivery.delivered, expected.iter().filter(|e| **e).count());
        for (session, expected) in sessions.iter().zip(expected) {
            assert_eq!(session.queued_bytes(), if expected { 2 } else { 0 });
        }
    }
}
