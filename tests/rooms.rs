//! Rooms, broadcast and slow consumers, over real sockets:
//!
//! * a fan-out to 1,000 sessions delivers every message exactly once, in order per sender;
//! * a client that stops reading is closed with 1008 while the others keep receiving, and
//!   memory stays bounded (the queue never exceeds its limit);
//! * room membership is cleaned up on every kind of close;
//! * `join`/`leave`/`rooms()` semantics, `broadcast_except`, endpoint-wide broadcasts, rooms
//!   per endpoint, and broadcasting from a background task through `ServerHandle::rooms`;
//! * keep-alive pings drop a dead peer (1006, `NoPong`) and spare a live one; the idle timeout
//!   closes a silent session with 1001.
//!
//! The file descriptor soft limit here is 20,000 (`ulimit -n`): the fan-out test needs about
//! 2,000 (both ends of ~1,000 sockets live in this process), so it does not raise it.

mod rooms_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use endpoint::prelude::*;
use endpoint::{Limits, Server};
use futures::{SinkExt, StreamExt};
use rooms_support::*;

// ---------------------------------------------------------------------------------------------
// The endpoints under test

/// Sessions of the heavy tests (1,000 clients; tens of MB broadcast) must not overlap, so the
/// memory figures of one are not the traffic of the other.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One endpoint driven by text commands (see [`command`]). `?name=` names the session in the
/// log (default `s<id>`); `?join=a,b` joins rooms in `on_open`.
struct Lab {
    log: Arc<Log>,
    name: String,
}

/// The same endpoint at another path: its rooms are separate from `/lab`'s.
struct Lab2 {
    log: Arc<Log>,
    name: String,
}

#[server_endpoint("/lab")]
impl Lab {
    #[on_open]
    fn open(&mut self, session: &Session) {
        self.name = opened(&self.log, session);
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> Option<String> {
        command(&self.log, &self.name, session, &text)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push(&self.name, format!("error:{}", kind(error)));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log
            .push(&self.name, format!("close:{}", reason.code().as_u16()));
    }
}

#[server_endpoint("/lab2")]
impl Lab2 {
    #[on_open]
    fn open(&mut self, session: &Session) {
        self.name = opened(&self.log, session);
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> Option<String> {
        command(&self.log, &self.name, session, &text)
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push(&self.name, format!("error:{}", kind(error)));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log
            .push(&self.name, format!("close:{}", reason.code().as_u16()));
    }
}

fn opened(log: &Log, session: &Session) -> String {
    let name = session
        .query_param("name")
        .unwrap_or_else(|| format!("s{}", session.id()));
    if let Some(rooms) = session.query_param("join") {
        for room in rooms.split(',') {
            assert!(session.join(room), "first join of {room} must succeed");
        }
    }
    log.register(&name, session);
    log.push(&name, "open");
    name
}

fn kind(error: &EndpointError) -> String {
    match error {
        EndpointError::SlowConsumer { limit } => format!("slow-consumer:{limit}"),
        EndpointError::NoPong(_) => "no-pong".into(),
        EndpointError::Panic(_) => "panic".into(),
        EndpointError::Protocol(_) => "protocol".into(),
        EndpointError::Timeout(_) => "timeout".into(),
        other => format!("other:{other}"),
    }
}

/// `echo:X` -> `X`; `join:R`/`leave:R` -> `join:R:<bool>`; `rooms` -> `rooms:a,b`;
/// `pub:R:X` (room broadcast), `except:R:X` (all but me), `all:X` (`Session::broadcast`),
/// `others:X` (`broadcast_others`) log their `Delivery`; `flood:R:COUNT:SIZE` broadcasts COUNT
/// binary messages of SIZE bytes at once; `panic`; `idle:MS` sets the idle timeout; `close`.
fn command(log: &Log, me: &str, session: &Session, text: &str) -> Option<String> {
    let (cmd, arg) = text.split_once(':').unwrap_or((text, ""));
    let delivered = |what: &str, d: endpoint::Delivery| {
        log.push(me, format!("{what}:{}:{}", d.delivered, d.overflowed));
    };
    match cmd {
        "echo" => Some(arg.to_owned()),
        "join" => Some(format!("join:{arg}:{}", session.join(arg))),
        "leave" => Some(format!("leave:{arg}:{}", session.leave(arg))),
        "rooms" => Some(format!("rooms:{}", session.rooms().join(","))),
        "pub" | "except" => {
            let (room, text) = arg.split_once(':').expect("pub:ROOM:TEXT");
            let room = session.room(room);
            let d = if cmd == "pub" {
                room.broadcast(text.to_owned())
            } else {
                room.broadcast_except(text.to_owned(), session)
            };
            delivered(cmd, d.expect("a String encodes"));
            None
        }
        "all" => {
            delivered(cmd, session.broadcast(arg.to_owned()).expect("encodes"));
            None
        }
        "others" => {
            let d = session.broadcast_others(arg.to_owned()).expect("encodes");
            delivered(cmd, d);
            None
        }
        "flood" => {
            let parts: Vec<&str> = arg.split(':').collect();
            let (count, size): (usize, usize) =
                (parts[1].parse().unwrap(), parts[2].parse().unwrap());
            let payload = Bytes::from(vec![7u8; size]);
            let room = session.room(parts[0]);
            let mut total = endpoint::Delivery::default();
            // Synchronously: the connection task cannot drain the queue in between.
            for _ in 0..count {
                let d = room.broadcast(payload.clone()).expect("encodes");
                total.delivered += d.delivered;
                total.overflowed += d.overflowed;
            }
            delivered(cmd, total);
            None
        }
        "panic" => panic!("handler panic on request"),
        "idle" => {
            let ms = arg.parse().expect("idle:MS");
            session.set_idle_timeout(Some(Duration::from_millis(ms)));
            Some("idle:set".into())
        }
        "close" => {
            session.close(CloseReason::new(4001, "asked")).unwrap();
            None
        }
        other => Some(format!("unknown:{other}")),
    }
}

async fn lab_server(limits: Limits) -> (Running, Arc<Log>) {
    let log = Log::new();
    let (l1, l2) = (log.clone(), log.clone());
    let server = Server::new()
        .limits(limits)
        .endpoint_with(move |_| Lab {
            log: l1.clone(),
            name: String::new(),
        })
        .endpoint_with(move |_| Lab2 {
            log: l2.clone(),
            name: String::new(),
        });
    (run(server).await, log)
}

fn ids(sessions: &[Session]) -> Vec<u64> {
    let mut ids: Vec<u64> = sessions.iter().map(|s| s.id().as_u64()).collect();
    ids.sort_unstable();
    ids
}

// ---------------------------------------------------------------------------------------------
// 1. Fan-out

const FAN_CLIENTS: usize = 1_000;
const PUBLISHERS: usize = 3;
const PER_PUBLISHER: usize = 50;

/// 1,000 clients in one room; 3 publishers send 50 numbered messages each, which their
/// sessions broadcast to the room. Every client gets all 150, each publisher's in order, no
/// duplicate and nothing more (an `end` marker broadcast afterwards is the next message).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fan_out_to_1000_sessions_exactly_once_in_order_per_sender() {
    let _heavy = HEAVY.lock().await;
    let started = Instant::now();
    let (server, log) = lab_server(fast_limits()).await;
    let addr = server.addr;

    let clients: Vec<Ws> = within(
        Duration::from_secs(20),
        "1,000 connections",
        futures::stream::iter(0..FAN_CLIENTS)
            .map(|_| connect(addr, "/lab?join=fan"))
            .buffer_unordered(64)
            .collect(),
    )
    .await;
    let room = server
        .handle
        .rooms("/lab")
        .expect("/lab is registered")
        .room("fan");
    eventually("1,000 members in the room", || room.len() == FAN_CLIENTS).await;
    assert_eq!(room.members().len(), FAN_CLIENTS);
    let connected = started.elapsed();

    // Every client reads concurrently, on its own task.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut next = [0usize; PUBLISHERS];
                let mut got = 0;
                loop {
                    let text =
                        match within(Duration::from_secs(20), "fan-out message", ws.next()).await {
                            Some(Ok(WsMessage::Text(t))) => t.as_str().to_owned(),
                            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                            other => panic!("unexpected {other:?} after {got} messages"),
                        };
                    if text == "end" {
                        break;
                    }
                    let (p, seq) = text.split_once(':').expect("P:SEQ");
                    let (p, seq): (usize, usize) = (p.parse().unwrap(), seq.parse().unwrap());
                    assert_eq!(
                        seq, next[p],
                        "publisher {p}: got #{seq}, expected #{} (duplicate, gap or reorder)",
                        next[p]
                    );
                    next[p] += 1;
                    got += 1;
                }
                assert_eq!(next, [PER_PUBLISHER; PUBLISHERS]);
                (got, ws)
            })
        })
        .collect();

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        publishers.push(connect(addr, &format!("/lab?name=pub{p}")).await);
    }
    let sending = Instant::now();
    // All publishers at once, each pipelining its messages.
    futures::future::join_all(publishers.iter_mut().enumerate().map(|(p, ws)| async move {
        for seq in 0..PER_PUBLISHER {
            bounded(
                "publish",
                ws.feed(WsMessage::text(format!("pub:fan:{p}:{seq}"))),
            )
            .await
            .unwrap();
        }
        bounded("flush", ws.flush()).await.unwrap();
    }))
    .await;
    // Once every broadcast is done, an end marker: per-recipient order puts it last.
    eventually("every broadcast to be made", || {
        (0..PUBLISHERS).all(|p| log.of(&format!("pub{p}")).len() == 1 + PER_PUBLISHER)
    })
    .await;
    let end = room.broadcast("end").unwrap();
    assert_eq!((end.delivered, end.overflowed), (FAN_CLIENTS, 0));

    let mut clients = Vec::with_capacity(FAN_CLIENTS);
    for reader in readers {
        let (got, ws) = within(Duration::from_secs(20), "reader", reader)
            .await
            .expect("reader panicked");
        assert_eq!(got, PUBLISHERS * PER_PUBLISHER);
        clients.push(ws);
    }
    let fanned = sending.elapsed();
    for p in 0..PUBLISHERS {
        let deliveries = log.of(&format!("pub{p}"));
        assert_eq!(deliveries[0], "open");
        for d in &deliveries[1..] {
            assert_eq!(d, &format!("pub:{FAN_CLIENTS}:0"), "publisher {p}");
        }
    }
    let stats = server.handle.stats();
    assert_eq!(stats.slow_consumers, 0);
    assert_eq!(stats.open_sessions, (FAN_CLIENTS + PUBLISHERS) as u64);
    assert_eq!(room.len(), FAN_CLIENTS);
    drop(clients);
    eventually("the room to empty once the clients are gone", || {
        room.is_empty()
    })
    .await;
    eprintln!(
        "fan-out: {FAN_CLIENTS} clients connected in {connected:?}; {} messages x {FAN_CLIENTS} \
         recipients delivered in {fanned:?}",
        PUBLISHERS * PER_PUBLISHER
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Slow consumer

const QUEUE_LIMIT: usize = 64 * 1024;
const MSG: usize = 16 * 1024;
/// 3,072 x 16 KiB = 48 MiB broadcast to every member.
const FEED_MESSAGES: usize = 3_072;
const HEALTHY: usize = 3;

fn numbered(seq: usize) -> Bytes {
    let mut payload = vec![0u8; MSG];
    payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    Bytes::from(payload)
}

fn seq_of(payload: &[u8]) -> usize {
    assert_eq!(payload.len(), MSG);
    u64::from_be_bytes(payload[..8].try_into().unwrap()) as usize
}

/// A member that stops reading is closed with 1008 (on_error: `SlowConsumer`) while the others
/// get all 48 MiB; its queue never exceeds the limit, and the process's memory stays bounded.
/// When it reads again it gets an in-order prefix of the feed, then the close frame or the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_reader_is_closed_1008_others_get_everything_memory_bounded() {
    let _heavy = HEAVY.lock().await;
    let mut limits = fast_limits();
    limits.outbound_queue_bytes = QUEUE_LIMIT;
    limits.close_timeout = Duration::from_millis(300);
    let (server, log) = lab_server(limits).await;

    let mut stalled = server.connect("/lab?join=feed&name=stalled").await;
    let slow = log.session("stalled").await;
    let mut readers = Vec::new();
    let mut healthy = Vec::new();
    for i in 0..HEALTHY {
        let name = format!("h{i}");
        let mut ws = server.connect(&format!("/lab?join=feed&name={name}")).await;
        healthy.push(log.session(&name).await);
        readers.push(tokio::spawn(async move {
            let mut next = 0;
            while next < FEED_MESSAGES {
                match within(Duration::from_secs(20), "feed message", ws.next()).await {
                    Some(Ok(WsMessage::Binary(b))) => {
                        assert_eq!(seq_of(&b), next, "healthy reader: gap or reorder");
                        next += 1;
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    other => panic!("healthy reader: unexpected {other:?} after {next} messages"),
                }
            }
            ws
        }));
    }
    let room = server.handle.rooms("/lab").unwrap().room("feed");
    assert_eq!(room.len(), HEALTHY + 1);

    // Client and server share this process: the RSS covers the server's queues and buffers,
    // the clients' read buffers, and the messages in flight. The kernel's socket buffers are
    // not in it.
    let rss_before = rss_kib();
    let mut rss_peak = rss_before;
    let mut max_queued = 0;
    let mut overflowed = 0;
    let started = Instant::now();
    for seq in 0..FEED_MESSAGES {
        // Broadcasts never wait; the test paces itself on the healthy members only (as an
        // application reading `queued_bytes` could), so only the stalled one can overflow.
        let deadline = Instant::now() + Duration::from_secs(10);
        while healthy.iter().any(|s| s.queued_bytes() + MSG > QUEUE_LIMIT) {
            assert!(
                Instant::now() < deadline,
                "healthy readers stopped draining"
            );
            tokio::task::yield_now().await;
        }
        let d = room.broadcast(numbered(seq)).unwrap();
        overflowed += d.overflowed;
        max_queued = max_queued.max(slow.queued_bytes());
        if seq % 64 == 0 {
            rss_peak = rss_peak.max(rss_kib());
        }
    }
    let broadcast_for = started.elapsed();
    let mut healthy_clients = Vec::new();
    for reader in readers {
        let ws = within(Duration::from_secs(20), "healthy reader", reader)
            .await
            .expect("healthy reader panicked");
        healthy_clients.push(ws);
    }
    rss_peak = rss_peak.max(rss_kib());
    let rss_after = rss_kib();

    assert_eq!(overflowed, 1, "exactly one overflow: the stalled member's");
    assert!(
        max_queued <= QUEUE_LIMIT + MSG,
        "the stalled session's queue held {max_queued} bytes, limit {QUEUE_LIMIT}"
    );
    assert_eq!(
        log.wait_for("stalled", "error:").await,
        format!("error:slow-consumer:{QUEUE_LIMIT}")
    );
    assert_eq!(log.wait_for("stalled", "close:").await, "close:1008");
    assert!(!slow.is_open());
    assert_eq!(server.handle.stats().slow_consumers, 1);
    assert!(
        !room.members().contains(&slow),
        "closed member left the room"
    );
    for name in ["h0", "h1", "h2"] {
        assert_eq!(log.of(name), ["open"], "{name} was not disturbed");
    }
    let growth_mib = rss_peak.saturating_sub(rss_before) as f64 / 1024.0;
    let broadcast_mib = (FEED_MESSAGES * MSG) as f64 / (1024.0 * 1024.0);
    assert!(
        growth_mib < 16.0,
        "RSS grew by {growth_mib:.1} MiB while {broadcast_mib:.0} MiB were broadcast to each \
         member (a queue holding the stalled member's backlog would hold all of it)"
    );

    // Reading again: an in-order prefix of the feed (nothing skipped), then 1008 or the end.
    let mut got = 0;
    let ending = within(Duration::from_secs(10), "stalled client to drain", async {
        loop {
            match stalled.next().await {
                Some(Ok(WsMessage::Binary(b))) => {
                    assert_eq!(seq_of(&b), got, "stalled reader: gap or reorder");
                    got += 1;
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    assert_eq!(code, Some(1008), "close frame");
                    break "close frame 1008".to_owned();
                }
                Some(Ok(other)) => panic!("stalled reader: unexpected {other:?}"),
                Some(Err(e)) => break format!("error: {e}"),
                None => break "end of stream".to_owned(),
            }
        }
    })
    .await;
    assert!(
        got < FEED_MESSAGES,
        "the stalled reader cannot have got everything"
    );
    eprintln!(
        "slow consumer: {broadcast_mib:.0} MiB x {} members broadcast in {broadcast_for:?}; \
         stalled queue max {max_queued} B (limit {QUEUE_LIMIT}); RSS before {rss_before} KiB, \
         peak {rss_peak} KiB (+{growth_mib:.1} MiB), after {rss_after} KiB; the stalled \
         client then read {got} messages and saw: {ending}",
        HEALTHY + 1
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Membership cleaned up on every kind of close

/// A `target` session in rooms `a` and `b` (its client, its session), a `witness` in room `a`
/// (its client, kept open by the caller).
async fn members(limits: Limits) -> (Running, Arc<Log>, Ws, Session, Ws) {
    let (server, log) = lab_server(limits).await;
    let witness_ws = server.connect("/lab?join=a&name=witness").await;
    let mut ws = server.connect("/lab?join=a&name=target").await;
    assert_eq!(ask(&mut ws, "join:b").await, "join:b:true");
    let target = log.session("target").await;
    let witness = log.session("witness").await;
    let rooms = server.handle.rooms("/lab").unwrap();
    assert_eq!(
        ids(&rooms.room("a").members()),
        ids(&[target.clone(), witness])
    );
    assert_eq!(
        ids(&rooms.room("b").members()),
        ids(std::slice::from_ref(&target))
    );
    assert_eq!(target.rooms(), ["a", "b"]);
    (server, log, ws, target, witness_ws)
}

/// After `target` closed with `code`: it is in no room, rooms no longer list it, and it cannot
/// join again.
async fn assert_left(server: &Running, log: &Log, target: &Session, code: u16) {
    assert_eq!(
        log.wait_for("target", "close:").await,
        format!("close:{code}")
    );
    let rooms = server.handle.rooms("/lab").unwrap();
    let a = rooms.room("a");
    assert!(!a.members().contains(target), "still a member of a");
    assert!(
        !rooms.room("b").members().contains(target),
        "still a member of b"
    );
    assert_eq!(rooms.room("b").len(), 0);
    assert!(
        !rooms.names().contains(&"b".to_owned()),
        "empty room b is gone"
    );
    assert!(
        target.rooms().is_empty(),
        "rooms() after close: {:?}",
        target.rooms()
    );
    assert!(!target.join("a"), "join after close must be refused");
    assert!(!target.join("c"), "join after close must be refused");
    assert!(!a.members().contains(target) && rooms.room("c").is_empty());
    assert!(!target.leave("a"));
    assert!(!target.is_open());
}

#[tokio::test]
async fn membership_cleaned_up_after_peer_close_frame() {
    let (server, log, mut ws, target, _witness) = members(fast_limits()).await;
    send_close(&mut ws, 1000, "bye").await;
    drain_until_end(&mut ws).await;
    assert_left(&server, &log, &target, 1000).await;
    // The witness is untouched.
    let a = server.handle.rooms("/lab").unwrap().room("a");
    assert_eq!(a.len(), 1);
    assert!(log.session("witness").await.is_open());
}

#[tokio::test]
async fn membership_cleaned_up_after_tcp_drop() {
    let (server, log, ws, target, _witness) = members(fast_limits()).await;
    drop(ws); // no close frame
    assert_left(&server, &log, &target, 1006).await;
}

#[tokio::test]
async fn membership_cleaned_up_after_protocol_error() {
    let (server, log) = lab_server(fast_limits()).await;
    let _witness = server.connect("/lab?join=a&name=witness").await;
    let mut raw = Raw::connect(server.addr, "/lab?join=a,b&name=target").await;
    let target = log.session("target").await;
    assert_eq!(target.rooms(), ["a", "b"]);
    // RSV1 set without a negotiated extension.
    raw.write(&client_frame(0b100, 0x1, b"x")).await;
    assert_left(&server, &log, &target, 1002).await;
    assert_eq!(log.of("target")[1], "error:protocol");
}

#[tokio::test]
async fn membership_cleaned_up_after_handler_panic() {
    let (server, log, mut ws, target, _witness) = members(fast_limits()).await;
    send_text(&mut ws, "panic").await;
    assert_eq!(recv_close(&mut ws).await, 1011);
    assert_left(&server, &log, &target, 1011).await;
}

#[tokio::test]
async fn membership_cleaned_up_after_server_side_close() {
    let (server, log, mut ws, target, _witness) = members(fast_limits()).await;
    target
        .close(CloseReason::new(4001, "from the server"))
        .unwrap();
    assert_eq!(recv_close(&mut ws).await, 4001);
    drain_until_end(&mut ws).await;
    assert_left(&server, &log, &target, 4001).await;
}

#[tokio::test]
async fn membership_cleaned_up_after_slow_consumer_overflow() {
    let (server, log, mut ws, target, _witness) = members(fast_limits()).await;
    // 64 x 128 KiB into room b (target only), at once: over the 1 MiB default queue. (Larger
    // than a broadcast writes to an idle socket itself, 64 KiB: the socket's buffers would
    // take a burst of those, and nothing would overflow.)
    send_text(&mut ws, "flood:b:64:131072").await;
    assert_left(&server, &log, &target, 1008).await;
    assert_eq!(
        log.of("target")[1..3],
        ["flood:8:1", "error:slow-consumer:1048576"]
    );
    assert_eq!(server.handle.stats().slow_consumers, 1);
}

#[tokio::test]
async fn membership_cleaned_up_after_idle_timeout() {
    let (server, log, mut ws, target, _witness) = members(fast_limits()).await;
    assert_eq!(ask(&mut ws, "idle:100").await, "idle:set");
    assert_eq!(recv_close(&mut ws).await, 1001);
    assert_left(&server, &log, &target, 1001).await;
    assert_eq!(log.of("target")[1], "error:timeout");
}

#[tokio::test]
async fn membership_cleaned_up_after_server_shutdown() {
    let (mut server, log, mut ws, target, mut witness_ws) = members(fast_limits()).await;
    let witness = log.session("witness").await;
    let witness_reader = tokio::spawn(async move {
        let code = recv_close(&mut witness_ws).await;
        drain_until_end(&mut witness_ws).await;
        code
    });
    let reader = tokio::spawn(async move {
        let code = recv_close(&mut ws).await;
        drain_until_end(&mut ws).await;
        code
    });
    server.shutdown().await;
    assert_eq!(reader.await.unwrap(), 1001);
    assert_eq!(witness_reader.await.unwrap(), 1001);
    assert_left(&server, &log, &target, 1001).await;
    assert_eq!(log.wait_for("witness", "close:").await, "close:1001");
    assert!(witness.rooms().is_empty());
    let rooms = server.handle.rooms("/lab").unwrap();
    assert!(rooms.names().is_empty(), "rooms left: {:?}", rooms.names());
    assert!(rooms.sessions().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. Semantics

#[tokio::test]
async fn join_leave_and_rooms_semantics() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut ws = server.connect("/lab?name=me").await;
    let me = log.session("me").await;
    let rooms = server.handle.rooms("/lab").unwrap();
    assert_eq!(ask(&mut ws, "rooms").await, "rooms:");
    assert_eq!(ask(&mut ws, "join:x").await, "join:x:true");
    assert_eq!(
        ask(&mut ws, "join:x").await,
        "join:x:false",
        "already a member"
    );
    assert_eq!(ask(&mut ws, "join:y").await, "join:y:true");
    assert_eq!(ask(&mut ws, "rooms").await, "rooms:x,y", "joining order");
    assert_eq!(rooms.room("x").len(), 1);
    assert_eq!(rooms.room("x").members(), std::slice::from_ref(&me));
    let mut names = rooms.names();
    names.sort();
    assert_eq!(names, ["x", "y"]);

    assert_eq!(ask(&mut ws, "leave:x").await, "leave:x:true");
    assert_eq!(
        ask(&mut ws, "leave:x").await,
        "leave:x:false",
        "no longer a member"
    );
    assert_eq!(ask(&mut ws, "leave:nowhere").await, "leave:nowhere:false");
    assert_eq!(ask(&mut ws, "rooms").await, "rooms:y");
    assert!(rooms.room("x").is_empty());
    assert_eq!(rooms.names(), ["y"], "a room without members is not listed");
    assert_eq!(
        ask(&mut ws, "join:x").await,
        "join:x:true",
        "rejoin after leave"
    );
    assert_eq!(ask(&mut ws, "rooms").await, "rooms:y,x");

    // A room is a name: a room object for an empty room is fine, and rooms are per endpoint
    // of this server only.
    assert!(rooms.room("never").is_empty());
    assert!(server.handle.rooms("/nope").is_none());
    assert_eq!(me.room("y").members(), std::slice::from_ref(&me));
}

#[tokio::test]
async fn broadcast_except_skips_the_sender_and_room_broadcast_includes_it() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut a = server.connect("/lab?join=r&name=a").await;
    let mut b = server.connect("/lab?join=r&name=b").await;
    let mut c = server.connect("/lab?join=r&name=c").await;
    let mut outsider = server.connect("/lab?join=elsewhere&name=o").await;
    log.session("o").await;

    send_text(&mut a, "except:r:hi").await;
    assert_eq!(recv_text(&mut b).await, "hi");
    assert_eq!(recv_text(&mut c).await, "hi");
    // Had `a` got "hi", it would come before this answer.
    assert_eq!(ask(&mut a, "echo:sync").await, "sync");
    assert_eq!(ask(&mut outsider, "echo:sync").await, "sync");
    assert_eq!(log.wait_for("a", "except:").await, "except:2:0");

    send_text(&mut a, "pub:r:all-of-r").await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_text(ws).await, "all-of-r");
    }
    assert_eq!(ask(&mut outsider, "echo:sync").await, "sync");
    assert_eq!(log.wait_for("a", "pub:").await, "pub:3:0");
}

#[tokio::test]
async fn session_broadcast_reaches_every_session_of_the_endpoint_only() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut a = server.connect("/lab?join=r&name=a").await;
    let mut b = server.connect("/lab?name=b").await; // in no room
    let mut other = server.connect("/lab2?name=other").await; // another endpoint
    log.session("b").await;
    log.session("other").await;

    send_text(&mut a, "all:to-everyone").await;
    assert_eq!(
        recv_text(&mut a).await,
        "to-everyone",
        "broadcast includes the sender"
    );
    assert_eq!(recv_text(&mut b).await, "to-everyone");
    assert_eq!(log.wait_for("a", "all:").await, "all:2:0");

    send_text(&mut a, "others:not-me").await;
    assert_eq!(recv_text(&mut b).await, "not-me");
    assert_eq!(
        ask(&mut a, "echo:sync").await,
        "sync",
        "broadcast_others skips the sender"
    );
    assert_eq!(log.wait_for("a", "others:").await, "others:1:0");

    assert_eq!(
        ask(&mut other, "echo:sync").await,
        "sync",
        "/lab2 got nothing"
    );
    assert_eq!(server.handle.rooms("/lab").unwrap().sessions().len(), 2);
    assert_eq!(server.handle.rooms("/lab2").unwrap().sessions().len(), 1);
}

#[tokio::test]
async fn rooms_of_two_endpoints_with_the_same_name_are_separate() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut a = server.connect("/lab?join=lobby&name=a").await;
    let mut b = server.connect("/lab2?join=lobby&name=b").await;
    let (sa, sb) = (log.session("a").await, log.session("b").await);

    let lab = server.handle.rooms("/lab").unwrap().room("lobby");
    let lab2 = server.handle.rooms("/lab2").unwrap().room("lobby");
    assert_eq!(lab.members(), std::slice::from_ref(&sa));
    assert_eq!(lab2.members(), std::slice::from_ref(&sb));
    assert_eq!(sa.room("lobby").members(), std::slice::from_ref(&sa));

    send_text(&mut a, "pub:lobby:from-lab").await;
    assert_eq!(recv_text(&mut a).await, "from-lab");
    send_text(&mut b, "pub:lobby:from-lab2").await;
    assert_eq!(recv_text(&mut b).await, "from-lab2", "not from-lab");
    assert_eq!(
        ask(&mut a, "echo:sync").await,
        "sync",
        "/lab got nothing from /lab2"
    );
    assert_eq!(log.wait_for("a", "pub:").await, "pub:1:0");
    assert_eq!(log.wait_for("b", "pub:").await, "pub:1:0");
}

#[tokio::test]
async fn server_handle_rooms_broadcast_from_a_background_task() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut a = server.connect("/lab?join=news&name=a").await;
    let mut b = server.connect("/lab?join=news&name=b").await;
    let mut c = server.connect("/lab?name=c").await;
    log.session("a").await;
    log.session("b").await;
    log.session("c").await;

    let rooms = server.handle.rooms("/lab").unwrap();
    let ticker = tokio::spawn(async move {
        let mut delivered = Vec::new();
        for n in 0..3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            delivered.push(
                rooms
                    .room("news")
                    .broadcast(format!("tick{n}"))
                    .unwrap()
                    .delivered,
            );
        }
        delivered.push(rooms.broadcast("to-all").unwrap().delivered);
        delivered
    });
    for ws in [&mut a, &mut b] {
        for n in 0..3 {
            assert_eq!(recv_text(ws).await, format!("tick{n}"));
        }
        assert_eq!(recv_text(ws).await, "to-all");
    }
    assert_eq!(
        recv_text(&mut c).await,
        "to-all",
        "c is in no room: only the endpoint-wide one"
    );
    assert_eq!(bounded("ticker", ticker).await.unwrap(), [2, 2, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// 5. Keep-alive and idle timeout

fn keep_alive_limits() -> Limits {
    let mut limits = fast_limits();
    limits.ping_interval = Some(Duration::from_millis(200));
    limits.pong_timeout = Duration::from_millis(300);
    limits
}

#[tokio::test]
async fn keep_alive_drops_a_peer_that_never_answers_pings() {
    let (server, log) = lab_server(keep_alive_limits()).await;
    let started = Instant::now();
    let mut raw = Raw::connect(server.addr, "/lab?name=dead").await;
    let dead = log.session("dead").await;
    // The raw client neither reads nor answers: a ping at ~200 ms, no frame back by ~500 ms.
    assert_eq!(log.wait_for("dead", "close:").await, "close:1006");
    let elapsed = started.elapsed();
    assert_eq!(log.of("dead"), ["open", "error:no-pong", "close:1006"]);
    assert!(
        elapsed >= Duration::from_millis(450),
        "dropped after {elapsed:?}, before ping interval + pong timeout"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "dropped only after {elapsed:?}"
    );
    assert!(!dead.is_open());
    // What the server wrote before dropping the connection: the keep-alive ping, nothing else.
    let bytes = raw.read_to_end().await;
    assert_eq!(frame_opcodes(&bytes), [0x9], "frames: {bytes:?}");
    drop(server);
}

#[tokio::test]
async fn keep_alive_spares_a_peer_that_reads_and_answers_pings() {
    let (server, log) = lab_server(keep_alive_limits()).await;
    let mut ws = server.connect("/lab?name=alive").await;
    let alive = log.session("alive").await;
    // Reading lets tungstenite answer each ping with a pong; 1.2 s is six ping intervals.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    while let Ok(next) = tokio::time::timeout_at(until, ws.next()).await {
        match next {
            Some(Ok(WsMessage::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 3, "only {pings} keep-alive pings in 1.2 s");
    assert!(alive.is_open());
    assert_eq!(log.of("alive"), ["open"]);
    assert_eq!(ask(&mut ws, "echo:still-here").await, "still-here");
}

/// An endpoint that takes pongs: the keep-alive pongs reach it.
struct Ponger {
    log: Arc<Log>,
}

#[server_endpoint("/ponger")]
impl Ponger {
    #[on_open]
    fn open(&mut self, session: &Session) {
        self.log.register("ponger", session);
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_message]
    fn pong(&mut self, _pong: Pong) {
        self.log.push("ponger", "pong");
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        self.log.push("ponger", format!("error:{}", kind(error)));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log
            .push("ponger", format!("close:{}", reason.code().as_u16()));
    }
}

#[tokio::test]
async fn keep_alive_pongs_reach_a_pong_handler_and_the_session_stays_open() {
    let log = Log::new();
    let l = log.clone();
    let server = Server::new()
        .limits(keep_alive_limits())
        .endpoint_with(move |_| Ponger { log: l.clone() });
    let server = run(server).await;
    let mut ws = server.connect("/ponger").await;
    let session = log.session("ponger").await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    while let Ok(next) = tokio::time::timeout_at(until, ws.next()).await {
        match next {
            Some(Ok(WsMessage::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 3, "only {pings} keep-alive pings in 1.2 s");
    assert!(session.is_open());
    let seen = log.of("ponger");
    assert!(
        seen.len() >= 2 && seen.iter().all(|s| s == "pong"),
        "{seen:?}"
    );
    assert_eq!(ask(&mut ws, "still-here").await, "still-here");
}

#[tokio::test]
async fn idle_timeout_closes_a_silent_session_with_1001() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut ws = server.connect("/lab?name=quiet").await;
    let quiet = log.session("quiet").await;
    assert_eq!(quiet.idle_timeout(), None);
    assert_eq!(ask(&mut ws, "idle:300").await, "idle:set");
    let since = Instant::now();
    assert_eq!(quiet.idle_timeout(), Some(Duration::from_millis(300)));
    assert_eq!(recv_close(&mut ws).await, 1001);
    let elapsed = since.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "idle close after {elapsed:?}"
    );
    drain_until_end(&mut ws).await;
    assert_eq!(log.wait_for("quiet", "close:").await, "close:1001");
    assert_eq!(log.of("quiet"), ["open", "error:timeout", "close:1001"]);
}

#[tokio::test]
async fn idle_timeout_is_reset_by_messages() {
    let (server, log) = lab_server(fast_limits()).await;
    let mut ws = server.connect("/lab?name=chatty").await;
    assert_eq!(ask(&mut ws, "idle:300").await, "idle:set");
    // A message every 100 ms for 900 ms: never idle for 300 ms.
    for n in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ask(&mut ws, &format!("echo:{n}")).await, n.to_string());
    }
    assert_eq!(log.of("chatty"), ["open"]);
    assert_eq!(recv_close(&mut ws).await, 1001, "then silence closes it");
    assert_eq!(log.wait_for("chatty", "close:").await, "close:1001");
}
