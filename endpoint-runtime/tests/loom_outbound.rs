//! Model checks of the outbound queue (`src/session/outbound/`) with loom: every interleaving
//! of a broadcast (the sending side) with the connection task (the receiving side), up to a
//! preemption bound, on the queue's own code.
//!
//! The three files of the queue name nothing of the crate but what their parent module hands
//! them (`super::...`), so this test compiles them as its own modules against loom's atomics,
//! mutex and waker, and a scripted socket in place of the TCP stream (and messages in place of
//! the crate's queue items, which the queue only counts and moves). What is checked is the
//! hand-off the direct writes depend on: a broadcast writes to the socket itself only while
//! the connection task is idle (nothing queued, batched or partly written), so the bytes on
//! the wire are every frame, whole, once, in order; and closes (requested, or an overflow) are
//! taken exactly once, after which nothing more is accepted; and a message writer's parts
//! (`writer.rs`) reach the wire with nothing of another sender's between them.
//!
//! Run with the rest: `cargo test -p endpoint-runtime --test loom_outbound` (a few seconds).

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;

/// The queue's items: in the crate, messages or payloads compressed for a broadcast; the queue
/// itself only counts and moves them, so messages stand for both here.
pub(crate) use endpoint_runtime::Message as Outgoing;
pub(crate) use endpoint_runtime::{CloseReason, Message, SendError};
use loom::sync::Arc;

/// The primitives the queue is built on, from loom.
mod sync {
    pub(super) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub(super) use loom::sync::{Mutex, MutexGuard};

    /// `futures`' `AtomicWaker` API over loom's.
    pub(super) struct AtomicWaker(loom::future::AtomicWaker);

    impl AtomicWaker {
        pub(super) fn new() -> Self {
            AtomicWaker(loom::future::AtomicWaker::new())
        }
        pub(super) fn register(&self, waker: &std::task::Waker) {
            self.0.register_by_ref(waker);
        }
        pub(super) fn wake(&self) {
            self.0.wake();
        }
    }

    pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
        m.try_lock().ok()
    }
}

#[path = "../src/session/outbound/chan.rs"]
mod chan;
#[path = "../src/session/outbound/recv.rs"]
mod recv;
#[path = "../src/session/outbound/send.rs"]
mod send;
#[path = "../src/session/outbound/writer.rs"]
mod writer;

use chan::{DirectSocket, OnFull, Outbound, PendingClose, Pushed};
use send::Claim;

/// A socket that records what it was given: direct sends take at most `budget` bytes per call
/// (`None`: everything); the connection task's writes take everything.
#[derive(Default)]
struct Scripted {
    wire: Vec<u8>,
    budget: Option<usize>,
    sends: usize,
}

impl DirectSocket for Scripted {
    fn send_now(&mut self, frame: &[u8]) -> std::io::Result<usize> {
        self.sends += 1;
        let n = self.budget.map_or(frame.len(), |b| b.min(frame.len()));
        self.wire.extend_from_slice(&frame[..n]);
        Ok(n)
    }
}

/// The bytes a message goes on the wire as, in this model: a marker byte for the frame's
/// start, then the payload.
fn frame(msg: &Message) -> Vec<u8> {
    let mut out = vec![0xF0];
    out.extend_from_slice(msg.as_bytes());
    out
}

fn msg(text: &'static str) -> Message {
    Message::text(text)
}

/// One round of the connection task's pump, as `connection::driver` does it: take what is
/// queued (and the rest of a partly written direct frame, first), write it, release its room;
/// when nothing is left, say it is idle.
fn pump(out: &Outbound<Scripted>, batch: &mut VecDeque<Message>) {
    loop {
        out.drain_into(batch);
        let raw = out.take_raw();
        if batch.is_empty() && raw.is_none() {
            if !out.is_closed() {
                out.set_idle();
            }
            return;
        }
        out.busy();
        let mut released = 0;
        out.with_stream(|stream| {
            let stream = stream.expect("the stream is attached");
            if let Some(raw) = raw {
                stream.wire.extend_from_slice(&raw);
            }
            for m in batch.drain(..) {
                released += m.len();
                stream.wire.extend_from_slice(&frame(&m));
            }
        });
        out.release(released);
    }
}

/// The pump with send completion, as the driver does it: the mark is read before the queue
/// is taken, and marked written once what was taken is on the wire.
fn pump_marked(out: &Outbound<Scripted>, batch: &mut VecDeque<Message>) {
    loop {
        let mark = out.written_mark();
        out.drain_into(batch);
        let raw = out.take_raw();
        if batch.is_empty() && raw.is_none() {
            if let Some(mark) = mark {
                out.mark_written(mark);
            }
            if !out.is_closed() {
                out.set_idle();
            }
            return;
        }
        out.busy();
        let mut released = 0;
        out.with_stream(|stream| {
            let stream = stream.expect("the stream is attached");
            if let Some(raw) = raw {
                stream.wire.extend_from_slice(&raw);
            }
            for m in batch.drain(..) {
                released += m.len();
                stream.wire.extend_from_slice(&frame(&m));
            }
        });
        out.release(released);
        if let Some(mark) = mark {
            out.mark_written(mark);
        }
    }
}

fn queue(limit: usize, budget: Option<usize>) -> Arc<Outbound<Scripted>> {
    let out = Arc::new(Outbound::new(limit));
    out.attach(Scripted {
        budget,
        ..Scripted::default()
    });
    out.set_idle();
    out
}

fn wire(out: &Outbound<Scripted>) -> Vec<u8> {
    out.with_stream(|s| s.expect("attached").wire.clone())
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A broadcaster pushing `a` then `b` with `push` races the connection task, which also has a
/// reply of its own queued: every frame reaches the wire whole, once, the broadcaster's in its
/// order, and nothing is left queued.
fn race_with_a_reply(
    out: Arc<Outbound<Scripted>>,
    [a, b]: [&'static str; 2],
    push: fn(&Outbound<Scripted>, &Message) -> Pushed,
) {
    let broadcaster = {
        let out = out.clone();
        loom::thread::spawn(move || {
            for m in [msg(a), msg(b)] {
                let pushed = push(&out, &m);
                assert!(matches!(pushed, Pushed::Written | Pushed::Queued));
            }
        })
    };
    let mut batch = VecDeque::new();
    out.try_push(msg("t")).expect("room");
    pump(&out, &mut batch);
    broadcaster.join().unwrap();
    pump(&out, &mut batch);
    let wire = wire(&out);
    let mut frames: Vec<&[u8]> = wire.split(|&b| b == 0xF0).skip(1).collect();
    assert_eq!(frames.len(), 3, "every frame once: {wire:?}");
    let t = frames.iter().position(|f| *f == b"t").expect("the reply");
    frames.remove(t);
    assert_eq!(
        frames,
        [a.as_bytes(), b.as_bytes()],
        "in the broadcaster's order"
    );
    assert_eq!(out.queued_bytes(), 0);
}

/// Two broadcasts race the connection task, which also has a reply of its own queued: every
/// frame reaches the wire whole, once, and each sender's order is kept.
#[test]
fn direct_writes_and_the_connection_task_never_interleave() {
    model(|| {
        race_with_a_reply(queue(1024, None), ["a1", "a2"], |out, m| {
            out.push_or_overflow(m, Some(&frame(m)))
        })
    });
}

/// The socket takes only part of a direct write: the rest goes out before anything queued
/// after it, and no second direct write slips in between.
#[test]
fn the_rest_of_a_partial_direct_write_goes_first() {
    model(|| {
        let out = queue(1024, Some(2));
        let (a, b) = (msg("first"), msg("second"));
        let broadcaster = {
            let out = out.clone();
            loom::thread::spawn(move || {
                for m in [a, b] {
                    out.push_or_overflow(&m, Some(&frame(&m)));
                }
            })
        };
        let mut batch = VecDeque::new();
        pump(&out, &mut batch);
        broadcaster.join().unwrap();
        pump(&out, &mut batch);
        let mut expected = frame(&msg("first"));
        expected.extend(frame(&msg("second")));
        assert_eq!(wire(&out), expected);
        // Once the task held something, broadcasts went through the queue.
        assert!(out.with_stream(|s| s.expect("attached").sends) <= 2);
    });
}

/// A broadcast as the `io-uring` fan-out makes it (`rooms/fanout.rs`): the queue claimed
/// without waiting, the frame written while the claim is held (there, with other recipients'
/// in one system call), then the claim finished with what the socket took; a queue someone
/// else holds gets the ordinary push.
fn batched(out: &Outbound<Scripted>, m: &Message) -> Pushed {
    let frame = frame(m);
    match out.try_claim(true) {
        Claim::Direct(mut held) => {
            let sent = held.stream().send_now(&frame);
            held.finish(m, Some((&frame, sent)), OnFull::Close)
        }
        Claim::Queue(held) => held.finish(m, None, OnFull::Close),
        Claim::Closed => Pushed::Closed,
        Claim::Busy => out.push_or_overflow(m, Some(&frame)),
    }
}

/// Claimed broadcasts race the connection task, on a socket that takes only part of a frame:
/// every frame reaches the wire whole, once, in the broadcaster's order, the task's reply
/// whole beside them.
#[test]
fn claimed_broadcasts_and_the_connection_task_never_interleave() {
    model(|| race_with_a_reply(queue(1024, Some(3)), ["first", "second"], batched));
}

/// A broadcast that overflows the queue closes the session once: the close is taken exactly
/// once, and nothing is accepted after it.
#[test]
fn an_overflow_closes_once_and_refuses_what_follows() {
    model(|| {
        // Room for one 4-byte message at a time; no direct writes (not idle).
        let out = Arc::new(Outbound::<Scripted>::new(6));
        out.attach(Scripted::default());
        let m = msg("abcd");
        let broadcaster = {
            let out = out.clone();
            let m = m.clone();
            loom::thread::spawn(move || {
                (
                    out.push_or_overflow(&m, None),
                    out.push_or_overflow(&m, None),
                )
            })
        };
        let mut batch = VecDeque::new();
        pump(&out, &mut batch);
        let (first, second) = broadcaster.join().unwrap();
        assert_eq!(first, Pushed::Queued);
        let closes = (0..2).filter(|_| out.take_close().is_some()).count();
        match second {
            Pushed::Overflowed => {
                assert_eq!(closes, 1, "the overflow's close, once");
                assert!(out.is_closed());
                assert!(matches!(out.try_push(msg("x")), Err(SendError::Closed)));
            }
            // The task made room in time.
            Pushed::Queued => assert_eq!(closes, 0),
            other => panic!("{other:?}"),
        }
    });
}

/// `Session::close` races a send: the first close request wins and is taken once; a send
/// either got in before it (and is drained) or is refused.
#[test]
fn a_requested_close_is_taken_once_and_ends_sending() {
    model(|| {
        let out = queue(1024, None);
        let closer = {
            let out = out.clone();
            loom::thread::spawn(move || {
                out.request_close(PendingClose::Requested(CloseReason::normal()));
                out.request_close(PendingClose::Overflow);
            })
        };
        let sent = out.try_push(msg("late"));
        closer.join().unwrap();
        let close = out.take_close();
        assert!(
            matches!(close, Some(PendingClose::Requested(_))),
            "{close:?}"
        );
        assert!(out.take_close().is_none());
        let mut batch = VecDeque::new();
        pump(&out, &mut batch);
        match sent {
            Ok(()) => assert_eq!(wire(&out), frame(&msg("late"))),
            Err(e) => {
                assert!(matches!(e, SendError::Closed));
                assert!(wire(&out).is_empty());
            }
        }
    });
}

/// The connection ends (its stream released) while a broadcast writes: the broadcast never
/// writes to a released stream, and a message it queued is dropped by `shut`, not leaked.
#[test]
fn no_direct_write_after_the_connection_ended() {
    model(|| {
        let out = queue(1024, None);
        let broadcaster = {
            let out = out.clone();
            loom::thread::spawn(move || {
                let m = msg("b");
                out.push_or_overflow(&m, Some(&frame(&m)))
            })
        };
        out.shut();
        out.release_stream();
        let pushed = broadcaster.join().unwrap();
        assert!(out.with_stream(|s| s.is_none()));
        match pushed {
            Pushed::Written | Pushed::Closed => {}
            Pushed::Queued => panic!("queued after shut, or left queued: {pushed:?}"),
            Pushed::Overflowed => panic!("overflow in an empty queue"),
            Pushed::Dropped | Pushed::Full => panic!("dropped or full under the close policy"),
        }
        assert_eq!(out.queued_bytes(), 0);
    });
}

/// Send completion: a tracked send says "written" only once its frame is on the wire, whatever
/// the connection task does meanwhile (its own reply batched before or after it, numbered in
/// the batch's order), and says so after the next pump at the latest.
#[test]
fn a_tracked_send_is_written_before_it_says_so() {
    model(|| {
        let out = queue(1024, None);
        let sender = {
            let out = out.clone();
            loom::thread::spawn(move || {
                let seq = out.try_push_tracked(msg("tracked")).expect("room");
                // Looked at from the sender's side, racing the connection task.
                let early = out.written(seq).expect("open");
                let wire_then = wire(&out);
                (seq, early, wire_then)
            })
        };
        let mut batch = VecDeque::new();
        out.push_local(msg("reply"), &mut batch).expect("room");
        pump_marked(&out, &mut batch);
        let (seq, early, wire_then) = sender.join().unwrap();
        let tracked = frame(&msg("tracked"));
        if early {
            assert!(
                wire_then.windows(tracked.len()).any(|w| w == tracked),
                "said written before it was on the wire"
            );
        }
        pump_marked(&out, &mut batch);
        assert!(
            out.written(seq).expect("open"),
            "written after a quiet pump"
        );
        let on_wire = wire(&out);
        assert_eq!(on_wire.len(), tracked.len() + frame(&msg("reply")).len());
    });
}

/// A tracked send the connection never wrote is reported as not sent once the session ended.
#[test]
fn a_tracked_send_dropped_by_the_end_is_reported_closed() {
    model(|| {
        let out = queue(1024, None);
        let seq = out.try_push_tracked(msg("never")).expect("room");
        let ender = {
            let out = out.clone();
            loom::thread::spawn(move || out.shut())
        };
        let said = out.written(seq);
        ender.join().unwrap();
        assert!(
            matches!(said, Ok(false) | Err(SendError::Closed)),
            "{said:?}"
        );
        assert!(matches!(out.written(seq), Err(SendError::Closed)));
        assert!(wire(&out).is_empty());
    });
}

/// A message writer sends two parts while a broadcast (which writes directly to an idle
/// socket) and another sender race it: the two parts reach the wire back to back, each other
/// message whole before the first part or after the last, and a deferred message is counted
/// until it is written.
#[test]
fn a_writers_parts_are_never_split_by_other_messages() {
    model(|| {
        let out = queue(1024, None);
        let writer = {
            let out = out.clone();
            loom::thread::spawn(move || {
                loom::future::block_on(out.open_writer()).expect("open");
                loom::future::block_on(out.push_part(msg("p1"), false)).expect("part");
                loom::future::block_on(out.push_part(msg("p2"), true)).expect("last part");
            })
        };
        let broadcaster = {
            let out = out.clone();
            loom::thread::spawn(move || {
                let m = msg("b");
                let pushed = out.push_or_overflow(&m, Some(&frame(&m)));
                assert!(matches!(pushed, Pushed::Written | Pushed::Queued));
            })
        };
        let mut batch = VecDeque::new();
        pump(&out, &mut batch);
        writer.join().unwrap();
        broadcaster.join().unwrap();
        pump(&out, &mut batch);
        let wire = wire(&out);
        let frames: Vec<&[u8]> = wire.split(|&b| b == 0xF0).skip(1).collect();
        assert_eq!(frames.len(), 3, "every frame once: {wire:?}");
        let p1 = frames.iter().position(|f| *f == b"p1").expect("p1");
        assert_eq!(
            frames.get(p1 + 1),
            Some(&&b"p2"[..]),
            "parts back to back: {frames:?}"
        );
        assert_eq!(out.queued_bytes(), 0);
    });
}

/// A writer dropped inside its message (`abort_writer`) lets what waited behind it go, after
/// its last frame.
#[test]
fn an_aborted_writer_releases_what_waited() {
    model(|| {
        let out = queue(1024, None);
        loom::future::block_on(out.open_writer()).expect("open");
        loom::future::block_on(out.push_part(msg("p1"), false)).expect("part");
        let sender = {
            let out = out.clone();
            loom::thread::spawn(move || out.try_push(msg("s")).expect("room"))
        };
        out.abort_writer(Some(msg("end")));
        sender.join().unwrap();
        let mut batch = VecDeque::new();
        pump(&out, &mut batch);
        let wire = wire(&out);
        let frames: Vec<&[u8]> = wire.split(|&b| b == 0xF0).skip(1).collect();
        assert_eq!(frames.len(), 3, "{wire:?}");
        let p1 = frames.iter().position(|f| *f == b"p1").expect("p1");
        assert_eq!(frames.get(p1 + 1), Some(&&b"end"[..]), "{frames:?}");
        assert_eq!(out.queued_bytes(), 0);
    });
}
