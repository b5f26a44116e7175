//! Rooms across processes through Redis (feature `redis`): two server processes (the
//! `redis_node` example) on two loopback ports share a room through a `redis-server` that this
//! harness starts on a free loopback port (and kills, by PID, at the end).
//!
//! A node process is this test binary run again with `ENDPOINT_REDIS_NODE` set, running only
//! the ignored test `redis_node_process`, which serves the example's endpoint (the example's
//! source is included below as a module): always built, with this test's features, and no
//! nested `cargo build`.
//!
//! Needs the `redis-server` binary: `apt-get install -y redis-server`. Set `ENDPOINT_TEST_LOG=1`
//! to see the nodes' and Redis' logs.

#![cfg(feature = "redis")]

mod common;
#[path = "../examples/redis_node.rs"]
mod redis_node;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{connect, recv_text, send_text, Ws, WsMessage};
use futures::StreamExt;

/// Presence TTL given to the nodes (heartbeat every third of it).
const TTL: Duration = Duration::from_millis(2000);

// ---------------------------------------------------------------------------------------------
// Processes: redis-server and the nodes, each ended by PID when dropped.

/// Set (to the node's flags, one a line) in the environment of a node process.
const NODE_ENV: &str = "ENDPOINT_REDIS_NODE";

/// Not a test: the body of a node process (see the module docs). Does nothing when run
/// otherwise (e.g. by `--include-ignored`).
#[test]
#[ignore = "the body of a node process started by the other tests"]
fn redis_node_process() {
    let Some(args) = std::env::var_os(NODE_ENV) else {
        return;
    };
    if logs() {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    let args = args.into_string().expect("UTF-8 node flags");
    let args = redis_node::node::parse(args.lines().map(str::to_owned));
    let result = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(redis_node::node::run(args));
    result.expect("node");
}

fn logs() -> bool {
    std::env::var_os("ENDPOINT_TEST_LOG").is_some()
}

fn output() -> Stdio {
    if logs() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A `redis-server` on `127.0.0.1:port`, without persistence.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let mut redis = Redis { port, child: None };
        redis.spawn();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); these tests need it: apt-get install -y redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.ping() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING in 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// SIGKILL: no shutdown, no save.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `redis_node` process.
struct Node {
    addr: SocketAddr,
    child: Child,
}

impl Node {
    fn start(redis: &Redis, id: &str) -> Node {
        let args = [
            "--addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--redis".to_owned(),
            redis.url(),
            "--node".to_owned(),
            id.to_owned(),
            "--presence-ttl-ms".to_owned(),
            TTL.as_millis().to_string(),
        ];
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", "redis_node_process", "--ignored", "--nocapture"])
            .env(NODE_ENV, args.join("\n"))
            .stdout(Stdio::piped())
            .stderr(output())
            .spawn()
            .expect("spawn a node process");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // The test harness prints its own lines first.
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(line) = lines.find(|l| l.starts_with("listening on ")) {
                let _ = tx.send(line);
            }
            for _ in lines {} // keep the pipe open and drained
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("node {id} did not print its address within 10 s"));
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("node {id} printed {line:?}"));
        Node { addr, child }
    }

    async fn client(&self, room: &str, name: &str) -> Ws {
        connect(self.addr, &format!("/room/{room}?name={name}")).await
    }

    /// The broker counters, from the node's `GET /stats`.
    fn stats(&self) -> Stats {
        let mut s = TcpStream::connect(self.addr).expect("connect for /stats");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /stats HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut res = String::new();
        s.read_to_string(&mut res).expect("read /stats");
        let body = res.split("\r\n\r\n").nth(1).unwrap_or_default();
        let field = |name: &str| -> &str {
            body.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {name} in /stats: {res:?}"))
        };
        Stats {
            connected: field("connected") == "true",
            outages: field("outages").parse().unwrap(),
            published: field("published").parse().unwrap(),
            received: field("received").parse().unwrap(),
            dropped: field("dropped").parse().unwrap(),
        }
    }

    /// Waits (bounded) until the broker's `connected` is `want`; returns how long it took.
    async fn wait_connected(&self, want: bool, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.stats().connected == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "broker of {} not connected={want} within {within:?}: {:?}",
                self.addr,
                self.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
#[allow(dead_code)] // printed in failure messages
struct Stats {
    connected: bool,
    outages: u64,
    published: u64,
    received: u64,
    dropped: u64,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Client helpers.

/// Asks `who` and returns the `name@node` list, skipping room traffic that arrives meanwhile.
async fn who(ws: &mut Ws) -> BTreeSet<String> {
    send_text(ws, "who").await;
    loop {
        let text = recv_text(ws).await;
        if let Some(list) = text.strip_prefix("members:") {
            return list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
    }
}

/// Polls `who` until it lists exactly `want`; returns how long it took.
async fn wait_presence(ws: &mut Ws, want: &[&str], within: Duration) -> Duration {
    let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
    let start = Instant::now();
    loop {
        let got = who(ws).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "presence is {got:?}, expected {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `n` texts (each wait bounded).
async fn recv_n(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(recv_text(ws).await);
    }
    out
}

/// Asserts nothing but pings arrives for `quiet`.
async fn assert_quiet(ws: &mut Ws, quiet: Duration, who: &str) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(other) => panic!("{who} got an unexpected {other:?}"),
        }
    }
}

/// The sequence numbers of `sender`'s messages (`sender:N`), in arrival order.
fn seqs(messages: &[String], sender: &str) -> Vec<u32> {
    messages
        .iter()
        .filter_map(|m| m.strip_prefix(sender)?.strip_prefix(':')?.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Clients on two nodes in one room see each other's broadcasts exactly once and in order;
/// the publishing node's own clients do not get its broadcasts twice (once locally, once back
/// from Redis); another room hears nothing; presence lists the members of both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_room_exactly_once_in_order() {
    const N: u32 = 300;
    let redis = Redis::start();
    let a = Node::start(&redis, "a");
    let b = Node::start(&redis, "b");
    let mut a1 = a.client("lobby", "a1").await;
    let mut a2 = a.client("lobby", "a2").await;
    let mut b1 = b.client("lobby", "b1").await;
    let mut other = b.client("elsewhere", "o1").await;
    // Both brokers are subscribed once presence spans both nodes.
    let ready = wait_presence(&mut a1, &["a1@a", "a2@a", "b1@b"], Duration::from_secs(10)).await;
    println!("presence across nodes after {ready:?}");
    assert_eq!(
        who(&mut b1).await,
        ["a1@a", "a2@a", "b1@b"].map(String::from).into()
    );
    assert_eq!(who(&mut other).await, ["o1@b"].map(String::from).into());

    // a1 (node a) and b1 (node b) send concurrently.
    let sender = |mut ws: Ws, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..N {
                send_text(&mut ws, &format!("{name}:{i}")).await;
            }
            let got = recv_n(&mut ws, 2 * N as usize).await;
            (ws, got)
        })
    };
    let started = Instant::now();
    let ta = sender(a1, "a1");
    let tb = sender(b1, "b1");
    let got_a2 = recv_n(&mut a2, 2 * N as usize).await;
    let (mut a1, got_a1) = ta.await.unwrap();
    let (mut b1, got_b1) = tb.await.unwrap();
    println!(
        "{} messages each to 3 clients on 2 nodes in {:?}",
        2 * N,
        started.elapsed()
    );

    let expected: Vec<u32> = (0..N).collect();
    for (client, got) in [("a1", &got_a1), ("a2", &got_a2), ("b1", &got_b1)] {
        assert_eq!(seqs(got, "a1"), expected, "{client}: a1's messages");
        assert_eq!(seqs(got, "b1"), expected, "{client}: b1's messages");
    }
    // Exactly once: nothing more arrives (a duplicate would come after the 2N).
    for (ws, name) in [(&mut a1, "a1"), (&mut a2, "a2"), (&mut b1, "b1")] {
        assert_quiet(ws, Duration::from_millis(300), name).await;
    }
    assert_quiet(&mut other, Duration::from_millis(10), "the other room").await;

    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.connected && sb.connected, "{sa:?} {sb:?}");
    assert_eq!(
        (sa.published, sa.received, sa.dropped),
        (u64::from(N), u64::from(N), 0)
    );
    assert_eq!(
        (sb.published, sb.received, sb.dropped),
        (u64::from(N), u64::from(N), 0)
    );
    assert_eq!((sa.outages, sb.outages), (0, 0));
}

/// Redis killed and restarted: clients of one node keep talking during the outage, the
/// outage shows in the stats, and after the restart the brokers reconnect, re-announce
/// presence and carry traffic between nodes again (without replaying the outage's messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_local_delivery_goes_on_and_cross_node_resumes() {
    let mut redis = Redis::start();
    let a = Node::start(&redis, "a");
    let b = Node::start(&redis, "b");
    let mut a1 = a.client("lobby", "a1").await;
    let mut a2 = a.client("lobby", "a2").await;
    let mut b1 = b.client("lobby", "b1").await;
    wait_presence(&mut b1, &["a1@a", "a2@a", "b1@b"], Duration::from_secs(10)).await;
    send_text(&mut a1, "before").await;
    for ws in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(recv_text(ws).await, "before");
    }

    redis.kill();
    let killed = Instant::now();
    let (da, db) = (
        a.wait_connected(false, Duration::from_secs(5)).await,
        b.wait_connected(false, Duration::from_secs(5)).await,
    );
    println!("outage seen by node a after {da:?}, by node b after {db:?}");
    assert_eq!((a.stats().outages, b.stats().outages), (1, 1));

    // Local delivery during the outage, on both nodes.
    for i in 0..20 {
        send_text(&mut a1, &format!("during:{i}")).await;
        assert_eq!(recv_text(&mut a1).await, format!("during:{i}"));
        assert_eq!(recv_text(&mut a2).await, format!("during:{i}"));
        send_text(&mut b1, &format!("b-during:{i}")).await;
        assert_eq!(recv_text(&mut b1).await, format!("b-during:{i}"));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Presence falls back to the node's own members while Redis is away.
    assert_eq!(who(&mut b1).await, ["b1@b"].map(String::from).into());
    let sa = a.stats();
    assert!(!sa.connected && sa.dropped >= 20, "{sa:?}");

    redis.spawn();
    let restarted = Instant::now();
    println!("redis down for {:?}", restarted - killed);
    let ra = a.wait_connected(true, Duration::from_secs(10)).await;
    let rb = b.wait_connected(true, Duration::from_secs(10)).await;
    println!(
        "reconnected after the restart: node a {ra:?}, node b {:?}",
        restarted.elapsed()
    );
    let _ = rb;

    // Cross-node delivery resumes at once, in both directions, and nothing from the outage is
    // replayed (pub/sub has no history).
    send_text(&mut a1, "after:a").await;
    assert_eq!(recv_text(&mut b1).await, "after:a");
    send_text(&mut b1, "after:b").await;
    assert_eq!(recv_text(&mut b1).await, "after:b");
    for ws in [&mut a1, &mut a2] {
        assert_eq!(recv_text(ws).await, "after:a");
        assert_eq!(recv_text(ws).await, "after:b");
    }
    println!(
        "cross-node delivery resumed {:?} after the restart",
        restarted.elapsed()
    );
    // Presence was re-announced into the empty, restarted Redis.
    let took = wait_presence(&mut a1, &["a1@a", "a2@a", "b1@b"], Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(1),
        "presence re-announced late: {took:?}"
    );
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.outages, sb.outages), (1, 1), "{sa:?} {sb:?}");
    assert!(sa.connected && sb.connected);
    for ws in [&mut a1, &mut a2, &mut b1] {
        assert_quiet(ws, Duration::from_millis(200), "a client").await;
    }
}

/// A node killed with SIGKILL cannot say goodbye: its members leave presence when its keys
/// expire, within the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_leaves_presence_within_the_ttl() {
    let redis = Redis::start();
    let a = Node::start(&redis, "a");
    let mut b = Node::start(&redis, "b");
    let mut a1 = a.client("lobby", "a1").await;
    let _b1 = b.client("lobby", "b1").await;
    let _b2 = b.client("lobby", "b2").await;
    wait_presence(&mut a1, &["a1@a", "b1@b", "b2@b"], Duration::from_secs(10)).await;
    // Heartbeats keep presence alive past the TTL.
    tokio::time::sleep(TTL + TTL / 2).await;
    assert_eq!(
        who(&mut a1).await,
        ["a1@a", "b1@b", "b2@b"].map(String::from).into()
    );

    b.child.kill().expect("SIGKILL node b");
    b.child.wait().expect("reap node b");
    let gone = wait_presence(&mut a1, &["a1@a"], TTL + Duration::from_secs(2)).await;
    println!("killed node left presence after {gone:?} (TTL {TTL:?})");
    assert!(
        gone <= TTL + Duration::from_millis(500),
        "left after {gone:?}"
    );
}

/// A node shut down gracefully (SIGTERM) removes its presence at once, long before the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shut_down_leaves_presence_at_once() {
    let redis = Redis::start();
    let a = Node::start(&redis, "a");
    let mut b = Node::start(&redis, "b");
    let mut a1 = a.client("lobby", "a1").await;
    let mut b1 = b.client("lobby", "b1").await;
    wait_presence(&mut a1, &["a1@a", "b1@b"], Duration::from_secs(10)).await;
    // b1 reads, so it answers the 1001 close at once.
    let b1 = tokio::spawn(async move { while let Some(Ok(_)) = b1.next().await {} });

    let pid = b.child.id().to_string();
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("sh -c kill");
    assert!(status.success(), "kill -TERM {pid}");
    let sent = Instant::now();
    let exited = loop {
        if let Some(status) = b.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "node b still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(exited.success(), "node b: {exited}");
    common::bounded("b1's connection closed", b1).await.unwrap();
    let gone = wait_presence(&mut a1, &["a1@a"], Duration::from_secs(5)).await;
    println!(
        "node b exited {:?} after SIGTERM; presence updated {gone:?} later",
        sent.elapsed()
    );
    // Expiry would take at least TTL - TTL/3 (the last heartbeat was at most TTL/3 ago).
    assert!(
        gone < TTL / 2,
        "presence kept {gone:?} after the shutdown: left to expire?"
    );
}
