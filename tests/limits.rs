//! The server's limits under hostile or careless clients, on loopback:
//!
//! * slowloris: a request head trickled one byte every 200 ms (and a client that sends nothing)
//!   is cut off at `handshake_timeout`, while other clients are served;
//! * `max_request_head`: hyper answers `431 Request Header Fields Too Large` and closes (a head
//!   sent past the limit in one go may instead see the connection reset: hyper stops reading at
//!   the limit, and closing a socket with unread input resets it); over 100 header lines: `431`;
//! * `max_connections`: the next upgrade gets `503` with `Retry-After`, existing sessions are
//!   untouched, a freed slot is reusable;
//! * `max_frame_size` / `max_message_size`: 1009;
//! * a client that never reads while the server sends 100 MB: `Session::send` waits, the queue
//!   stays within `outbound_queue_bytes`, RSS stays flat;
//! * 10,000 connect/disconnect cycles (aborted handshakes, TCP drops without a close frame,
//!   normal closes): every session is gone afterwards, every `on_close` ran once, RSS is flat.

mod raw;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use endpoint::{
    Bytes, CloseReason, Endpoint, EndpointConfig, HookResult, Limits, Message, Server, Session,
};
use raw::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What the test can see of the server side.
#[derive(Clone, Default)]
struct Seen {
    closes: Closes,
    /// The first sessions opened (at most 8: holding more would hold their memory).
    sessions: Arc<Mutex<Vec<Session>>>,
    /// Sessions opened.
    opened: Arc<AtomicUsize>,
    /// Payload bytes queued by flood tasks.
    flooded: Arc<AtomicUsize>,
    /// Whether a flood task ended.
    flood_done: Arc<AtomicBool>,
}

/// Echoes; on the text `go`, starts a task sending 100 MB in 16 KiB messages.
struct Probe {
    seen: Seen,
}

const FLOOD_TOTAL: usize = 100 << 20;
const FLOOD_CHUNK: usize = 16 << 10;

impl Endpoint for Probe {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/probe")
    }

    async fn on_open(&mut self, session: &Session, _: &endpoint::Handshake) -> HookResult {
        self.seen.opened.fetch_add(1, Ordering::SeqCst);
        let mut kept = self.seen.sessions.lock().unwrap();
        if kept.len() < 8 {
            kept.push(session.clone());
        }
        Ok(None)
    }

    async fn on_message(&mut self, session: &Session, message: Message) -> HookResult {
        if message.as_text() == Some("go") {
            let session = session.clone();
            let seen = self.seen.clone();
            tokio::spawn(async move {
                for _ in 0..FLOOD_TOTAL / FLOOD_CHUNK {
                    // A fresh allocation per message: unbounded queueing would show in RSS.
                    let chunk = Bytes::from(vec![0x5a; FLOOD_CHUNK]);
                    if session.send(Message::Binary(chunk)).await.is_err() {
                        break;
                    }
                    seen.flooded.fetch_add(FLOOD_CHUNK, Ordering::SeqCst);
                }
                seen.flood_done.store(true, Ordering::SeqCst);
            });
            return Ok(None);
        }
        Ok(Some(message))
    }

    async fn on_close(&mut self, session: &Session, reason: CloseReason) {
        self.seen
            .closes
            .record(session.id().as_u64(), reason.code().as_u16());
    }
}

async fn server_with(limits: Limits) -> (Running, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    let server = Server::new()
        .limits(limits)
        .endpoint_with(move |_| Probe { seen: s.clone() });
    (start(server).await, seen)
}

/// Reads until EOF (or an error); returns what was read and whether it ended in an error.
async fn read_to_end_or_reset(stream: &mut TcpStream) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => return (all, None),
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) => return (all, Some(e.kind())),
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Slowloris

/// Trickles `request` one byte every `every`; returns when the server ends the connection:
/// the time since connecting, the bytes written, and what the server sent.
async fn trickle(
    addr: std::net::SocketAddr,
    request: &[u8],
    every: Duration,
) -> (Duration, usize, Vec<u8>) {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut written = 0;
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return (t0.elapsed(), written, got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            },
            _ = tick.tick() => {
                if written == request.len() {
                    continue;
                }
                if stream.write_all(&request[written..=written]).await.is_err() {
                    return (t0.elapsed(), written, got);
                }
                written += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_at_the_handshake_timeout() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.handshake_timeout = Duration::from_secs(1);
    let (server, seen) = server_with(limits).await;
    let addr = server.addr;
    let request = upgrade_request("/probe");

    // 20 tricklers and 5 silent clients at once.
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let request = request.clone();
        attackers.push(tokio::spawn(async move {
            within(
                Duration::from_secs(5),
                "slowloris cut off",
                trickle(addr, request.as_bytes(), Duration::from_millis(200)),
            )
            .await
        }));
    }
    for _ in 0..5 {
        attackers.push(tokio::spawn(async move {
            within(
                Duration::from_secs(5),
                "silent client cut off",
                trickle(addr, b"", Duration::from_millis(200)),
            )
            .await
        }));
    }

    // Meanwhile, others are served promptly: new handshakes and echoes, for 1.5 s.
    let mut ws = RawWs::connect(addr, "/probe").await;
    let t0 = Instant::now();
    let mut rounds = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        within(
            Duration::from_millis(500),
            "echo during slowloris",
            ws.echo("ping"),
        )
        .await;
        let mut other = within(
            Duration::from_millis(500),
            "handshake during slowloris",
            RawWs::connect(addr, "/probe"),
        )
        .await;
        other.echo("hi").await;
        other.finish(1000).await;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for a in attackers {
        let (elapsed, written, got) = a.await.expect("attacker task");
        println!(
            "slowloris: cut after {elapsed:?}, {written} of {} bytes written, server sent {:?}",
            request.len(),
            String::from_utf8_lossy(&got)
        );
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
            "cut after {elapsed:?}, expected about the 1 s handshake timeout"
        );
        assert!(written < request.len(), "the whole request got through");
        // hyper drops the connection without a response on a header read timeout.
        assert!(got.is_empty() || status_of(&got) == Some(408), "{got:?}");
    }
    assert!(rounds >= 5, "only {rounds} rounds served during the attack");
    // Only the well-behaved sessions were ever opened.
    assert_eq!(seen.opened.load(Ordering::SeqCst), rounds + 1);
    ws.echo("after").await;
}

// ---------------------------------------------------------------------------------------------
// Request head

#[tokio::test]
async fn request_head_over_the_limit_is_refused() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.max_request_head = 8192;
    let (server, seen) = server_with(limits).await;

    // A head under the limit (about 7 KiB) is fine.
    let filler = "a".repeat(7000);
    let req =
        upgrade_request("/probe").replace("\r\n\r\n", &format!("\r\nX-Filler: {filler}\r\n\r\n"));
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let (status, _, _) = bounded("101", read_response_head(&mut s)).await.unwrap();
    assert_eq!(status, 101);
    drop(s);

    // An unfinished head that reaches the limit: hyper answers 431 and closes.
    let mut head = "GET /probe HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_owned();
    head.push_str(&"a".repeat(8192 - head.len()));
    assert_eq!(head.len(), 8192);
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let (got, err) = bounded("answer to an oversized head", read_to_end_or_reset(&mut s)).await;
    println!(
        "8 KiB unfinished head: {:?} then {err:?}",
        String::from_utf8_lossy(&got).lines().next()
    );
    assert_eq!(
        status_of(&got),
        Some(431),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // A complete 64 KiB head in one go: 431, or a reset when the unread rest of the head is
    // still in the server's socket as hyper closes it. Never an upgrade.
    let req = upgrade_request("/probe").replace(
        "\r\n\r\n",
        &format!("\r\nX-Filler: {}\r\n\r\n", "b".repeat(64 << 10)),
    );
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let _ = s.write_all(req.as_bytes()).await;
    let (got, err) = bounded("answer to a 64 KiB head", read_to_end_or_reset(&mut s)).await;
    println!(
        "64 KiB head: {:?} then {err:?}",
        String::from_utf8_lossy(&got).lines().next()
    );
    assert!(
        status_of(&got) == Some(431) || (got.is_empty() && err.is_some()),
        "{:?} {err:?}",
        String::from_utf8_lossy(&got)
    );

    // More than 100 header lines (hyper's limit), each short: 431.
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = upgrade_request("/probe").replace("\r\n\r\n", &format!("\r\n{many}\r\n"));
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let (got, _) = bounded("answer to 120 headers", read_to_end_or_reset(&mut s)).await;
    assert_eq!(
        status_of(&got),
        Some(431),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    assert_eq!(
        seen.opened.load(Ordering::SeqCst),
        1,
        "only the first was upgraded"
    );
    let mut ws = RawWs::connect(server.addr, "/probe").await;
    ws.echo("still serving").await;
}

// ---------------------------------------------------------------------------------------------
// Connections

#[tokio::test]
async fn over_max_connections_the_upgrade_gets_503() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.max_connections = 5;
    let (server, seen) = server_with(limits).await;

    let mut open = Vec::new();
    for i in 0..5 {
        let mut ws = RawWs::connect(server.addr, "/probe").await;
        ws.echo(&format!("hello {i}")).await;
        open.push(ws);
    }
    assert_eq!(server.open_sessions(), 5);

    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(upgrade_request("/probe").as_bytes())
            .await
            .unwrap();
        let (status, head, _) = bounded("503", read_response_head(&mut s)).await.unwrap();
        assert_eq!(status, 503, "{head}");
        assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    }
    let stats = server.handle.stats();
    assert_eq!(stats.rejected("overloaded"), 3);
    assert_eq!(stats.open_sessions, 5);
    assert_eq!(
        seen.closes.calls(),
        0,
        "a refusal closed an existing session"
    );

    // The five are untouched.
    for (i, ws) in open.iter_mut().enumerate() {
        ws.echo(&format!("still {i}")).await;
    }

    // Closing one frees a slot (once its on_close ran and its task ended).
    let mut first = open.remove(0);
    first.send(&[Frame::close(1000, b"")]).await;
    assert_eq!(first.read_close().await, CloseSeen::Code(1000));
    seen.closes.wait_sessions(1, TIMEOUT).await;
    let deadline = Instant::now() + TIMEOUT;
    let mut sixth = loop {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(upgrade_request("/probe").as_bytes())
            .await
            .unwrap();
        let (status, _, rest) = bounded("handshake", read_response_head(&mut s))
            .await
            .unwrap();
        if status == 101 {
            assert!(rest.is_empty());
            break s;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the freed slot never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    sixth
        .write_all(&Frame::text("sixth").encode())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = bounded("echo on the new session", sixth.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[2..n], b"sixth");
    for ws in &mut open {
        ws.echo("end").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Frame and message size

#[tokio::test]
async fn over_max_frame_or_message_size_is_1009() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.max_frame_size = 1024;
    limits.max_message_size = 4096;
    let (server, seen) = server_with(limits).await;
    let mut expected_closes = 0;

    let mut ws = RawWs::connect(server.addr, "/probe").await;
    // At the limits: accepted.
    ws.send(&[Frame::binary(vec![1; 1024])]).await;
    assert_eq!(ws.read_frame().await.unwrap().payload.len(), 1024);
    ws.send(&[
        Frame::binary(vec![2; 1024]).fin(false),
        Frame::new(CONT, vec![2; 1024]).fin(false),
        Frame::new(CONT, vec![2; 1024]).fin(false),
        Frame::new(CONT, vec![2; 1024]),
    ])
    .await;
    assert_eq!(ws.read_frame().await.unwrap().payload.len(), 4096);

    let cases: Vec<(&str, Vec<Frame>)> = vec![
        ("frame of 1025 bytes", vec![Frame::binary(vec![3; 1025])]),
        (
            "text frame of 2000 bytes",
            vec![Frame::text(vec![b't'; 2000])],
        ),
        (
            "message of 4097 bytes in 5 frames",
            vec![
                Frame::binary(vec![4; 1000]).fin(false),
                Frame::new(CONT, vec![4; 1000]).fin(false),
                Frame::new(CONT, vec![4; 1000]).fin(false),
                Frame::new(CONT, vec![4; 1000]).fin(false),
                Frame::new(CONT, vec![4; 97]),
            ],
        ),
        (
            "continuation frame over the frame limit",
            vec![
                Frame::text("a").fin(false),
                Frame::new(CONT, vec![b'b'; 1500]),
            ],
        ),
    ];
    for (what, frames) in cases {
        let mut bad = RawWs::connect(server.addr, "/probe").await;
        bad.send(&frames).await;
        assert_eq!(bad.read_close().await, CloseSeen::Code(1009), "{what}");
        bad.finish(1009).await;
        expected_closes += 1;
        let log = seen.closes.wait_sessions(expected_closes, TIMEOUT).await;
        assert_eq!(
            log.values().filter(|c| **c == [1009]).count(),
            expected_closes
        );
    }
    ws.echo("unaffected").await;
}

// ---------------------------------------------------------------------------------------------
// A client that never reads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_keeps_the_server_bounded() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.outbound_queue_bytes = 1 << 20;
    limits.ping_interval = None;
    let queue_limit = limits.outbound_queue_bytes;
    let (server, seen) = server_with(limits).await;

    // A small receive buffer (set before connecting, so the kernel does not grow it).
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    let mut stream = bounded("connect", socket.connect(server.addr))
        .await
        .unwrap();
    stream
        .write_all(upgrade_request("/probe").as_bytes())
        .await
        .unwrap();
    let (status, _, _) = bounded("101", read_response_head(&mut stream))
        .await
        .unwrap();
    assert_eq!(status, 101);
    let session = bounded("session", async {
        loop {
            if let Some(s) = seen.sessions.lock().unwrap().first().cloned() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    let rss_before = rss_kib();
    stream.write_all(&Frame::text("go").encode()).await.unwrap();
    // Sample the queue while the flood runs into the wall, for 3 s.
    let t0 = Instant::now();
    let mut max_queued = 0;
    let mut max_rss = rss_before;
    while t0.elapsed() < Duration::from_secs(3) {
        max_queued = max_queued.max(session.queued_bytes());
        max_rss = max_rss.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let flooded = seen.flooded.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooded_later = seen.flooded.load(Ordering::SeqCst);
    let rss_after = rss_kib();
    println!(
        "never-reading client: {} KiB queued by send() before it blocked (of {} MiB), max \
         queued_bytes {max_queued} (limit {queue_limit}), RSS {rss_before} KiB -> max \
         {max_rss} KiB -> {rss_after} KiB",
        flooded >> 10,
        FLOOD_TOTAL >> 20
    );
    assert!(
        !seen.flood_done.load(Ordering::SeqCst),
        "the flood finished"
    );
    assert_eq!(flooded, flooded_later, "send() did not block");
    assert!(flooded < 16 << 20, "{flooded} bytes accepted by send()");
    assert!(max_queued <= queue_limit + FLOOD_CHUNK, "{max_queued}");
    assert!(
        max_rss < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {max_rss} KiB"
    );
    assert!(session.is_open());

    // The client goes away: the blocked sender is released, the session ends.
    drop(stream);
    bounded("flood task to end", async {
        while !seen.flood_done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let code = seen.closes.one().await;
    assert_eq!(code, 1006, "a vanished client is an abnormal close");
    assert_eq!(server.open_sessions(), 0);
}

// ---------------------------------------------------------------------------------------------
// Churn

/// One connection, ended one of four ways.
async fn cycle(addr: std::net::SocketAddr, i: usize) -> bool {
    match i % 4 {
        // Connect and drop without a byte.
        0 => {
            let s = TcpStream::connect(addr).await.expect("connect");
            drop(s);
            false
        }
        // Half a request head, then drop.
        1 => {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let req = upgrade_request("/probe");
            let cut = 10 + i % (req.len() - 20);
            let _ = s.write_all(&req.as_bytes()[..cut]).await;
            drop(s);
            false
        }
        // Handshake, one echo, then the TCP connection is dropped without a close frame.
        2 => {
            let mut ws = RawWs::connect(addr, "/probe").await;
            ws.echo("x").await;
            drop(ws);
            true
        }
        // A normal close.
        _ => {
            let mut ws = RawWs::connect(addr, "/probe").await;
            ws.echo("y").await;
            ws.send(&[Frame::close(1000, b"")]).await;
            assert_eq!(ws.read_close().await, CloseSeen::Code(1000));
            ws.finish(1000).await;
            true
        }
    }
}

/// Runs cycles `from..to`, 200 at a time; the number of completed handshakes.
async fn churn(addr: std::net::SocketAddr, from: usize, to: usize) -> usize {
    use futures::StreamExt;
    futures::stream::iter(from..to)
        .map(|i| tokio::spawn(async move { within(TIMEOUT, "cycle", cycle(addr, i)).await }))
        .buffer_unordered(200)
        .map(|r| usize::from(r.expect("cycle task")))
        .fold(0, |a, b| async move { a + b })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connect_disconnect_cycles_leave_nothing_behind() {
    let _serial = serial().await;
    let mut limits = test_limits();
    limits.handshake_timeout = Duration::from_secs(2);
    let (server, seen) = server_with(limits).await;
    let addr = server.addr;
    // A session that stays open throughout: its open_sessions() must end as just itself.
    let mut watcher = RawWs::connect(addr, "/probe").await;
    watcher.echo("watching").await;
    let watcher_session = seen.sessions.lock().unwrap()[0].clone();
    let total: usize = std::env::var("ENDPOINT_CHURN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    seen.closes.reserve(total);

    let t0 = Instant::now();
    let warm = churn(addr, 0, 1_000).await;
    let settle = |expected: usize| {
        let seen = seen.clone();
        let handle = server.handle.clone();
        async move {
            within(Duration::from_secs(10), "sessions to end", async {
                loop {
                    if seen.closes.sessions() >= expected && handle.stats().open_sessions == 1 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }
    };
    settle(warm).await;
    let rss_warm = rss_kib();
    let fds_warm = open_fds();
    let t_warm = t0.elapsed();

    let mut rest = 0;
    let mut checkpoints = Vec::new();
    for from in (1_000..total).step_by(1_000) {
        rest += churn(addr, from, (from + 1_000).min(total)).await;
        checkpoints.push(rss_kib());
    }
    println!("RSS every 1,000 cycles (KiB): {checkpoints:?}");
    let handshakes = warm + rest;
    settle(handshakes).await;
    // Let the server finish dropping the connections that were cut mid-handshake.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_end = rss_kib();
    let fds_end = open_fds();
    println!(
        "{total} cycles in {:?} (warm-up of 1,000 in {t_warm:?}): {handshakes} handshakes; RSS \
         after warm-up {rss_warm} KiB, at the end {rss_end} KiB ({:+} KiB); open fds {fds_warm} \
         -> {fds_end}",
        t0.elapsed(),
        rss_end as i64 - rss_warm as i64
    );

    assert_eq!(handshakes, total / 2);
    let log = seen.closes.snapshot();
    assert_eq!(log.len(), handshakes, "every session's on_close ran");
    assert!(
        log.values()
            .all(|c| c.len() == 1 && (c[0] == 1000 || c[0] == 1006)),
        "on_close once each, with 1000 or 1006"
    );
    assert_eq!(log.values().filter(|c| c[0] == 1000).count(), total / 4);
    assert_eq!(server.handle.stats().open_sessions, 1);
    let open = watcher_session.open_sessions();
    assert_eq!(open.len(), 1, "open_sessions() = {open:?}");
    assert_eq!(open[0].id(), watcher_session.id());
    assert!(fds_end <= fds_warm + 16, "fds {fds_warm} -> {fds_end}");
    // RSS follows the allocator's high-water mark: it steps up (and sometimes back down)
    // with the number of connections alive at once, which scheduling makes vary: figures of
    // 12 to 24 MiB were seen at the same point of different runs, and a single step of 7 MiB
    // late in a run on a loaded machine. A leak grows with the number of cycles instead, at
    // every checkpoint. So the growth from the warm-up to the end, less the largest single
    // rise between two successive figures (one high-water step), must stay within 4 MiB: a
    // leak of 2 KiB per session (about 1 MiB per checkpoint over nine) exceeds it. The exact
    // checks are above: no session, no descriptor left.
    let mut marks = vec![rss_warm];
    marks.extend_from_slice(&checkpoints);
    marks.push(rss_end);
    let largest_step = marks
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or(0);
    let growth = rss_end.saturating_sub(rss_warm);
    println!("RSS growth {growth} KiB, of which the largest single step {largest_step} KiB");
    assert!(
        growth - largest_step.min(growth) <= 4 * 1024,
        "RSS keeps growing: {marks:?}"
    );
    assert!(
        rss_end <= rss_warm + 16 * 1024,
        "RSS grew from {rss_warm} KiB to {rss_end} KiB"
    );
    watcher.echo("done").await;
}
