//! A broadcast's direct writes through io_uring (feature `io-uring`): the frames of a group of
//! idle recipients go to their sockets in one system call instead of one `send` each.
//!
//! What it saves is the system call's entry and exit per recipient, most of a small message's
//! cost (`bench/ANALYSIS.md`, "Batched sends through io_uring"). The order of things per
//! recipient is the ordinary path's (`Outbound::push_broadcast`), in three steps for a group:
//!
//! 1. each recipient's queue is claimed without waiting (`Outbound::try_claim`): an idle one
//!    with its stream is held, locked, for the write; one that is not idle gets the message
//!    queued at once; one whose lock someone else holds is left for step 3, since a broadcast
//!    holding a group's locks must never wait for another (two broadcasts holding groups would
//!    wait for each other);
//! 2. the held recipients' frames go out in one `io_uring_enter` (`endpoint_uring::SendRing`,
//!    which returns once every send completed), and each claim is finished with what its
//!    socket took, exactly as after a `send`: whole, partly (the rest kept in `raw`), or not
//!    at all (queued);
//! 3. the recipients left out get the ordinary push, now that no lock is held.
//!
//! The ring is the thread's own, made at its first broadcast. Where the kernel refuses
//! io_uring (too old, `kernel.io_uring_disabled`, a container's seccomp filter) or
//! `ENDPOINT_IO_URING=0` is set, every broadcast on the thread goes the ordinary way.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};

use endpoint_uring::SendRing;

use super::{push, wanted, FormId, Forms, Tally, GROUP as SEND_GROUP};
use crate::session::{Claim, Held, OnFull, Session};

/// Recipients per system call: 64 sends per `io_uring_enter` saved 11-18 % of the CPU per
/// send in the standalone measurement that led here, 1,000 per call 16-19 %; but the group's
/// locks are held from their claim to the call's return (about 3 us per send), so the group
/// stays small. 256 measured no better in the server (alternating 10 s `bench/run --cases
/// fanout-1k,fanout-10k --servers endpoint` runs, 64 against 256: 1,000 subscribers 215k,
/// 222k, 190k against 201k, 209k, 169k deliveries per server CPU-second, 10,000: 166k, 164k,
/// 159k against 175k, 169k, 150k) and its p99 was 1-3 ms higher at 1,000. A multiple of the
/// ordinary path's group, whose cache reasoning (`fan_out_inner`) holds for it.
pub(super) const GROUP: usize = SEND_GROUP * 4;

enum State {
    Untried,
    // Boxed: a thread without a ring keeps only the tag.
    Ready(Box<SendRing>),
    Unavailable,
}

thread_local! {
    static RING: RefCell<State> = const { RefCell::new(State::Untried) };
}

/// Runs `f` with the thread's ring, made at the first call; `None` (without running `f`) where
/// there is none.
pub(super) fn with_ring<T>(f: impl FnOnce(&mut SendRing) -> T) -> Option<T> {
    RING.with(|state| {
        // Already borrowed only if a broadcast ran inside a broadcast's wake-up: that one goes
        // the ordinary way.
        let mut state = state.try_borrow_mut().ok()?;
        if let State::Untried = *state {
            *state = make();
        }
        match &mut *state {
            State::Ready(ring) => Some(f(ring)),
            _ => None,
        }
    })
}

fn make() -> State {
    if std::env::var_os("ENDPOINT_IO_URING").is_some_and(|v| v == "0") {
        return State::Unavailable;
    }
    match SendRing::new(GROUP as u32) {
        Ok(ring) => State::Ready(Box::new(ring)),
        Err(e) => {
            tracing::debug!(error = %e, "no io_uring for broadcasts on this thread: one send per recipient");
            State::Unavailable
        }
    }
}

/// One group of a fan-out (the three steps of the module docs).
pub(super) fn fan_out_group(
    ring: &mut SendRing,
    group: &[Session],
    except: Option<&Session>,
    forms: &mut Forms<'_>,
    on_full: OnFull,
    tally: &mut Tally,
) {
    let wanted: [bool; GROUP] = wanted(group, except);
    let mut held: Vec<(usize, FormId, Held<'_, std::net::TcpStream>)> = Vec::new();
    let mut busy = [0u8; GROUP];
    let mut n_busy = 0;
    for (i, session) in group.iter().enumerate().filter(|(i, _)| wanted[*i]) {
        let id = forms.for_recipient(session.sharing());
        let (item, frame) = forms.get(id);
        match session.outbound().try_claim(frame.is_some()) {
            Claim::Direct(hold) => {
                if held.capacity() == 0 {
                    held.reserve_exact(group.len() - i);
                }
                held.push((i, id, hold));
            }
            Claim::Queue(hold) => tally.add(hold.finish(item, None, on_full), session, item),
            Claim::Closed => {}
            Claim::Busy => {
                busy[n_busy] = i as u8;
                n_busy += 1;
            }
        }
    }
    // What each held socket took, then each claim finished with it. One recipient: a plain
    // `send` is one system call as well, and a cheaper one.
    let finish = |(i, id, hold): (usize, FormId, Held<'_, _>), sent, tally: &mut Tally| {
        let (item, frame) = forms.get(id);
        let frame = frame.expect("claimed for a frame");
        tally.add(
            hold.finish(item, Some((frame, sent)), on_full),
            &group[i],
            item,
        );
    };
    if held.len() == 1 {
        let (i, id, mut hold) = held.pop().expect("one");
        let frame = forms.get(id).1.expect("claimed for a frame");
        let sent = crate::session::DirectSocket::send_now(hold.stream(), frame);
        finish((i, id, hold), sent, tally);
    } else if !held.is_empty() {
        let mut sends: [(RawFd, &[u8]); GROUP] = [(-1, &[]); GROUP];
        for ((_, id, hold), send) in held.iter_mut().zip(&mut sends) {
            let frame = forms.get(*id).1.expect("claimed for a frame");
            *send = (hold.stream().as_raw_fd(), frame);
        }
        let mut results = [0i32; GROUP];
        ring.send_all(&sends[..held.len()], &mut results[..held.len()]);
        #[cfg(test)]
        tests::RING_SENDS.with(|n| n.set(n.get() + held.len()));
        for (hold, result) in held.into_iter().zip(results) {
            let sent = usize::try_from(result)
                .map_err(|_| std::io::Error::from_raw_os_error(result.saturating_neg()));
            finish(hold, sent, tally);
        }
    }
    for &i in &busy[..n_busy] {
        push(&group[usize::from(i)], forms, on_full, tally);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::rooms::fan_out;
    use crate::session::registry::tests::{registry, session};

    thread_local! {
        /// Sends this thread's fan-outs handed to its ring.
        pub(super) static RING_SENDS: Cell<usize> = const { Cell::new(0) };
    }

    /// 150 sessions on real loopback sockets (three groups: 64, 64, 22), one of them with a
    /// full socket, one closed, one the sender: every other peer reads every message whole and
    /// in order, the full one's messages wait in its queue, and, where the kernel has
    /// io_uring, the writes went through the ring.
    #[test]
    fn a_fan_out_through_the_ring_reaches_every_socket_in_order() {
        let registry = registry();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peers = Vec::new();
        let sessions: Vec<Session> = (0..150)
            .map(|_| {
                let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let (ours, _) = listener.accept().unwrap();
                ours.set_nonblocking(true).unwrap();
                peers.push(peer);
                let s = session(&registry);
                s.outbound().attach(ours);
                s.outbound().set_idle();
                s
            })
            .collect();
        let (full, closed, sender) = (70, 3, 140);
        let filler = vec![0u8; 64 * 1024];
        sessions[full].outbound().with_stream(|s| {
            let s = s.unwrap();
            while crate::session::DirectSocket::send_now(s, &filler).is_ok_and(|n| n > 0) {}
        });
        sessions[closed].mark_ended();
        let recipients = registry.recipients();
        let has_ring = with_ring(|_| ()).is_some();
        let before = RING_SENDS.with(Cell::get);
        for m in ["m0", "m1", "m2"] {
            let delivery = fan_out(&recipients, m, Some(&sessions[sender]), &registry).unwrap();
            assert_eq!(
                delivery.delivered, 148,
                "all but the closed one and the sender"
            );
        }
        for (i, peer) in peers.iter_mut().enumerate() {
            if [full, closed, sender].contains(&i) {
                continue;
            }
            let mut got = [0u8; 12];
            peer.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"\x81\x02m0\x81\x02m1\x81\x02m2", "peer {i}");
        }
        assert_eq!(
            sessions[full].queued_bytes(),
            6,
            "the full socket's messages wait"
        );
        assert_eq!(sessions[sender].queued_bytes(), 0);
        let through_ring = RING_SENDS.with(Cell::get) - before;
        if has_ring {
            // The full socket's first message went through the ring too (and came back EAGAIN).
            assert_eq!(through_ring, 3 * 147 + 1);
        } else {
            assert!(
                std::env::var_os("ENDPOINT_REQUIRE_IO_URING").is_none_or(|v| v != "1"),
                "io_uring is required (ENDPOINT_REQUIRE_IO_URING=1) but unavailable"
            );
            eprintln!("io_uring unavailable here: the fan-out went the ordinary way");
        }
    }
}
