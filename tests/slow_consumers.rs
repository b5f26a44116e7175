//! Slow-consumer policies, each against a stalled reader: a raw TCP client with a small
//! receive buffer that stops reading, so its kernel buffers fill and the server's outbound
//! queue with them.
//!
//! | policy | where | the stalled member | the broadcaster |
//! |---|---|---|---|
//! | close (default) | endpoint | closed 1008, `on_error` `SlowConsumer` | never waits |
//! | drop | endpoint (`slow_consumer = drop`) and room (`Room::set_slow_consumer`) | stays open, misses messages, told in `on_error` (`Dropped`), counted in `Stats::dropped_messages` | never waits |
//! | wait | endpoint (`slow_consumer = wait`) | gets everything once it reads again; closed 1008 after its send timeout if it never does | `broadcast_wait` waits |

mod common;

use std::time::Duration;

use common::*;
use endpoint::prelude::*;
use endpoint::{Limits, SlowConsumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

type Opened = mpsc::UnboundedSender<Session>;

/// 16 KiB messages, numbered in their first 8 bytes.
const MSG: usize = 16 << 10;
/// The outbound queue's bound in these tests.
const QUEUE: usize = 64 << 10;
/// Enough broadcasts to fill the kernel's buffers (autotuned up to a few MiB) and the queue.
const MAX_BROADCASTS: usize = 4000;

fn numbered(seq: usize) -> Bytes {
    let mut payload = vec![0u8; MSG];
    payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    Bytes::from(payload)
}

macro_rules! feed_endpoint {
    ($name:ident, $path:literal $(, $arg:ident = $value:ident)?) => {
        #[derive(Default)]
        struct $name {
            log: Option<Recorder>,
        }

        #[server_endpoint($path $(, $arg = $value)?)]
        impl $name {
            #[on_open]
            fn open(&mut self, session: &Session, opened: State<Opened>, log: State<Recorder>) {
                if let Some(ms) = session.query_param("send_timeout_ms") {
                    let ms: u64 = ms.parse().expect("send_timeout_ms");
                    session.set_send_timeout(Some(Duration::from_millis(ms)));
                }
                session.join(&session.query_param("room").unwrap_or_else(|| "feed".into()));
                self.log = Some((*log).clone());
                let _ = opened.send(session.clone());
            }

            #[on_message]
            fn text(&mut self, _text: String) {}

            #[on_error]
            fn error(&mut self, error: &EndpointError) {
                let log = self.log.as_ref().expect("opened");
                match error {
                    EndpointError::Dropped { messages } => log.push(format!("dropped:{messages}")),
                    other => log.push(format!("error:{other}")),
                }
            }

            #[on_close]
            fn close(&mut self, reason: CloseReason) {
                if let Some(log) = &self.log {
                    log.push(format!("close:{}", reason.code().as_u16()));
                }
            }
        }
    };
}

feed_endpoint!(Closing, "/close");
feed_endpoint!(Dropping, "/drop", slow_consumer = drop);
feed_endpoint!(Waiting, "/wait", slow_consumer = wait);

struct Setup {
    server: TestServer,
    log: Recorder,
    opened: mpsc::UnboundedReceiver<Session>,
}

async fn setup() -> Setup {
    let mut limits: Limits = fast_limits();
    limits.outbound_queue_bytes = QUEUE;
    limits.ping_interval = None;
    let (tx, opened) = mpsc::unbounded_channel::<Session>();
    let log = Recorder::new();
    let server = start(
        Server::new()
            .endpoint::<Closing>()
            .endpoint::<Dropping>()
            .endpoint::<Waiting>()
            .state(tx)
            .state(log.clone())
            .limits(limits),
    )
    .await;
    Setup {
        server,
        log,
        opened,
    }
}

/// A client that reads nothing after the handshake (a 16 KiB receive buffer, set before
/// connecting so the kernel does not grow it).
async fn stalled(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 << 10).unwrap();
    let mut stream = bounded("connect", socket.connect(addr)).await.unwrap();
    stream
        .write_all(upgrade_request(path, &[], &[]).as_bytes())
        .await
        .unwrap();
    // The `101` head, byte by byte so that nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        bounded("101", stream.read_exact(&mut b)).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Reads server frames from the raw stream: the numbers of the binary messages, until the
/// stream has been quiet for `quiet` (or ends); and the close code if one came.
async fn read_feed(stream: &mut TcpStream, quiet: Duration) -> (Vec<usize>, Option<u16>) {
    let mut buf = Vec::new();
    let mut seqs = Vec::new();
    let mut close = None;
    loop {
        // Parse what is buffered.
        loop {
            if buf.len() < 2 {
                break;
            }
            let opcode = buf[0] & 0x0F;
            let (len, at) = match buf[1] & 0x7F {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + len {
                break;
            }
            let payload = &buf[at..at + len];
            match opcode {
                0x2 => seqs.push(u64::from_be_bytes(payload[..8].try_into().unwrap()) as usize),
                0x8 => close = Some(u16::from_be_bytes([payload[0], payload[1]])),
                _ => {}
            }
            buf.drain(..at + len);
        }
        let mut chunk = vec![0u8; 64 << 10];
        match tokio::time::timeout(quiet, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return (seqs, close),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn room(setup: &Setup, path: &str, name: &str) -> Room {
    setup
        .server
        .handle
        .rooms(path)
        .expect("endpoint")
        .room(name)
}

#[tokio::test]
async fn close_the_default_closes_the_stalled_member_with_1008() {
    let mut s = setup().await;
    let mut client = stalled(s.server.addr, "/close").await;
    let member = bounded("open", s.opened.recv()).await.unwrap();
    let feed = room(&s, "/close", "feed");
    assert_eq!(feed.slow_consumer(), SlowConsumer::Close);
    let mut overflowed = 0;
    for seq in 0..MAX_BROADCASTS {
        let d = feed.broadcast(numbered(seq)).unwrap();
        assert_eq!(d.dropped, 0);
        overflowed += d.overflowed;
        if overflowed > 0 {
            break;
        }
    }
    assert_eq!(overflowed, 1, "the stalled member never overflowed");
    assert!(!member.is_open());
    let events = s.log.wait_count("close:", 1).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:outbound queue exceeded")),
        "{events:#?}"
    );
    assert_eq!(events.last().unwrap(), "close:1008");
    assert_eq!(s.server.handle.stats().slow_consumers, 1);
    let (seqs, _) = read_feed(&mut client, Duration::from_millis(500)).await;
    assert!(
        seqs.iter().enumerate().all(|(i, s)| i == *s),
        "a prefix, in order"
    );
    s.server.shutdown().await;
}

/// Drop, per endpoint (`slow_consumer = drop`) and per room (on an endpoint that closes).
#[tokio::test]
async fn drop_keeps_the_member_open_tells_it_and_counts_what_it_missed() {
    let mut s = setup().await;
    let ticker = room(&s, "/close", "ticker");
    ticker.set_slow_consumer(SlowConsumer::Drop);
    assert_eq!(ticker.slow_consumer(), SlowConsumer::Drop);
    assert_eq!(
        room(&s, "/close", "feed").slow_consumer(),
        SlowConsumer::Close
    );
    let cases = [
        (room(&s, "/drop", "feed"), "/drop"),
        (ticker, "/close?room=ticker"),
    ];
    let mut dropped_total = 0;
    let mut clients = Vec::new();
    for (feed, path) in cases {
        let mut client = stalled(s.server.addr, path).await;
        let member = bounded("open", s.opened.recv()).await.unwrap();
        assert_eq!(feed.slow_consumer(), SlowConsumer::Drop, "{path}");
        let (mut delivered, mut dropped, mut sent) = (0, 0, 0);
        for seq in 0..MAX_BROADCASTS {
            let d = feed.broadcast(numbered(seq)).unwrap();
            assert_eq!(d.overflowed, 0, "{path}: closed instead of dropping");
            delivered += d.delivered;
            dropped += d.dropped;
            sent = seq + 1;
            if dropped >= 20 {
                break;
            }
        }
        assert!(
            dropped >= 20,
            "{path}: nothing was dropped in {sent} broadcasts"
        );
        dropped_total += dropped;
        assert!(member.is_open(), "{path}: the member was closed");
        // Its endpoint was told, with the count (the notices of both cases add up).
        let told = s
            .log
            .wait_for("drop notices", |events| {
                let n: u64 = events
                    .iter()
                    .filter_map(|e| e.strip_prefix("dropped:"))
                    .map(|n| n.parse::<u64>().unwrap())
                    .sum();
                n >= dropped_total as u64
            })
            .await;
        assert!(!told.iter().any(|e| e.starts_with("close:")), "{told:#?}");
        assert_eq!(
            s.server.handle.stats().dropped_messages,
            dropped_total as u64
        );
        // Reading again, it gets what was delivered, in order, with gaps, and stays open.
        let (seqs, close) = read_feed(&mut client, Duration::from_millis(500)).await;
        assert_eq!(close, None, "{path}");
        assert_eq!(seqs.len(), delivered, "{path}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{path}: out of order");
        assert_eq!(seqs.len() + dropped, sent, "{path}");
        assert!(member.is_open(), "{path}");
        member.try_send("still open").unwrap();
        clients.push(client);
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn wait_the_broadcaster_waits_until_the_member_reads_and_nothing_is_lost() {
    let mut s = setup().await;
    let mut client = stalled(s.server.addr, "/wait?send_timeout_ms=10000").await;
    let member = bounded("open", s.opened.recv()).await.unwrap();
    let feed = room(&s, "/wait", "feed");
    assert_eq!(feed.slow_consumer(), SlowConsumer::Wait);
    const N: usize = 600; // ~9.4 MiB: more than the kernel and the queue hold
    let broadcaster = tokio::spawn({
        let feed = feed.clone();
        async move {
            let mut total = endpoint::Delivery::default();
            for seq in 0..N {
                let d = feed.broadcast_wait(numbered(seq)).await.unwrap();
                total.delivered += d.delivered;
                total.overflowed += d.overflowed;
                total.dropped += d.dropped;
            }
            total
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!broadcaster.is_finished(), "the broadcaster did not wait");
    assert!(member.is_open());
    let (seqs, close) = read_feed(&mut client, Duration::from_millis(1500)).await;
    let total = within(Duration::from_secs(10), "broadcaster", broadcaster)
        .await
        .unwrap();
    assert_eq!(total.delivered, N);
    assert_eq!((total.overflowed, total.dropped), (0, 0));
    assert_eq!(close, None);
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "every message, in order");
    assert!(member.is_open());
    s.server.shutdown().await;
}

/// Several stalled members of one room: a broadcast writes to many sockets at once (with the
/// `io-uring` feature, in one system call per group; sockets that fill take part of a frame,
/// then nothing), and each member still gets every message, whole and in order, once it reads.
#[tokio::test]
async fn wait_with_many_stalled_members_loses_and_splits_nothing() {
    let mut s = setup().await;
    const MEMBERS: usize = 8;
    let mut clients = Vec::new();
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        clients.push(stalled(s.server.addr, "/wait?room=many&send_timeout_ms=10000").await);
        members.push(bounded("open", s.opened.recv()).await.unwrap());
    }
    let feed = room(&s, "/wait", "many");
    const N: usize = 400; // ~6 MiB per member: more than its kernel buffers and queue hold
    let broadcaster = tokio::spawn({
        let feed = feed.clone();
        async move {
            let mut delivered = 0;
            for seq in 0..N {
                let d = feed.broadcast_wait(numbered(seq)).await.unwrap();
                assert_eq!((d.overflowed, d.dropped), (0, 0), "message {seq}");
                delivered += d.delivered;
            }
            delivered
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!broadcaster.is_finished(), "the broadcaster did not wait");
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move { read_feed(&mut client, Duration::from_millis(1500)).await })
        })
        .collect();
    let delivered = within(Duration::from_secs(20), "broadcaster", broadcaster)
        .await
        .unwrap();
    assert_eq!(delivered, N * MEMBERS);
    for (i, reader) in readers.into_iter().enumerate() {
        let (seqs, close) = reader.await.unwrap();
        assert_eq!(close, None, "member {i}");
        assert_eq!(
            seqs,
            (0..N).collect::<Vec<_>>(),
            "member {i}: every message, in order"
        );
    }
    assert!(members.iter().all(|m| m.is_open()));
    s.server.shutdown().await;
}

#[tokio::test]
async fn wait_is_bounded_by_the_send_timeout_then_closes_1008() {
    let mut s = setup().await;
    let _client = stalled(s.server.addr, "/wait?send_timeout_ms=300").await;
    let member = bounded("open", s.opened.recv()).await.unwrap();
    let feed = room(&s, "/wait", "feed");
    let started = tokio::time::Instant::now();
    let mut overflowed = 0;
    for seq in 0..MAX_BROADCASTS {
        let d = within(
            Duration::from_secs(5),
            "broadcast_wait",
            feed.broadcast_wait(numbered(seq)),
        )
        .await
        .unwrap();
        overflowed += d.overflowed;
        if overflowed > 0 || d.delivered == 0 {
            break;
        }
    }
    assert_eq!(overflowed, 1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let events = s.log.wait_count("close:", 1).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:a send waited more than 300ms")),
        "{events:#?}"
    );
    assert_eq!(events.last().unwrap(), "close:1008");
    assert!(!member.is_open());
    s.server.shutdown().await;
}
