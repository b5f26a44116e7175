//! `SendRing` on real loopback sockets: every byte reaches its peer, a full socket reports what
//! it took, a closed descriptor reports an error without stopping the rest, and batches larger
//! than the ring are split.
//!
//! Where the kernel refuses io_uring (old kernels, containers whose seccomp filter forbids it)
//! these tests say so and pass, unless `ENDPOINT_REQUIRE_IO_URING=1` asks them to fail.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use endpoint_uring::SendRing;

fn ring(entries: u32) -> Option<SendRing> {
    match SendRing::new(entries) {
        Ok(ring) => Some(ring),
        Err(e) if std::env::var_os("ENDPOINT_REQUIRE_IO_URING").is_some_and(|v| v == "1") => {
            panic!("io_uring is required (ENDPOINT_REQUIRE_IO_URING=1) but unavailable: {e}")
        }
        Err(e) => {
            eprintln!("io_uring unavailable here ({e}): skipped");
            None
        }
    }
}

/// `n` connected pairs: (the side the ring sends on, non-blocking; its peer).
fn pairs(n: usize) -> Vec<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    (0..n)
        .map(|_| {
            let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (ours, _) = listener.accept().unwrap();
            ours.set_nonblocking(true).unwrap();
            (ours, peer)
        })
        .collect()
}

#[test]
fn every_socket_gets_its_own_buffer_whole() {
    let Some(mut ring) = ring(4) else { return };
    // More sends than the ring's entries: submitted in chunks.
    let pairs = pairs(11);
    let bufs: Vec<Vec<u8>> = (0..pairs.len()).map(|i| vec![i as u8; 10 + i]).collect();
    let sends: Vec<_> = pairs
        .iter()
        .zip(&bufs)
        .map(|((ours, _), buf)| (ours.as_raw_fd(), &buf[..]))
        .collect();
    let mut results = vec![i32::MIN; sends.len()];
    ring.send_all(&sends, &mut results);
    for (i, ((_, peer), buf)) in pairs.iter().zip(&bufs).enumerate() {
        assert_eq!(results[i], buf.len() as i32, "send {i}");
        let mut got = vec![0; buf.len()];
        (&*peer).read_exact(&mut got).unwrap();
        assert_eq!(&got, buf, "socket {i} got another's bytes");
    }
}

#[test]
fn a_full_socket_reports_what_it_took_and_the_rest_go_out() {
    let Some(mut ring) = ring(8) else { return };
    let pairs = pairs(3);
    // The middle socket's buffers are filled first: its peer reads nothing.
    let big = vec![7u8; 64 * 1024];
    let full = &pairs[1].0;
    while socket2::SockRef::from(full).send(&big).is_ok() {}
    let small = b"after";
    let sends: Vec<_> = pairs
        .iter()
        .map(|(ours, _)| (ours.as_raw_fd(), &small[..]))
        .collect();
    let mut results = [i32::MIN; 3];
    ring.send_all(&sends, &mut results);
    assert_eq!(results[0], 5);
    assert_eq!(
        results[1],
        -libc::EAGAIN,
        "a full socket takes nothing, now"
    );
    assert_eq!(results[2], 5);
    let mut got = [0; 5];
    (&pairs[2].1).read_exact(&mut got).unwrap();
    assert_eq!(&got, small);
}

#[test]
fn a_bad_descriptor_fails_alone() {
    let Some(mut ring) = ring(8) else { return };
    let pairs = pairs(2);
    // A descriptor that is not a socket: the send fails, the next one still goes.
    let file = std::fs::File::open("/dev/null").unwrap();
    let sends = [
        (file.as_raw_fd(), &b"nope"[..]),
        (pairs[1].0.as_raw_fd(), &b"yes"[..]),
    ];
    let mut results = [i32::MIN; 2];
    ring.send_all(&sends, &mut results);
    assert_eq!(results[0], -libc::ENOTSOCK);
    assert_eq!(results[1], 3);
    let mut got = [0; 3];
    (&pairs[1].1).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"yes");
}
