//! Recovery across nodes with Redis Streams (feature `redis`): two server processes share a
//! room's offsets and history through a `redis-server` this harness starts on a free loopback
//! port (and kills, by PID, at the end). A client that dropped from one node reconnects to the
//! other with its position and gets exactly what it missed, also while both nodes publish,
//! also after its node was killed with SIGKILL; a Redis restarted without persistence is a new
//! epoch.
//!
//! A node process is this test binary run again with `ENDPOINT_RECOVERY_NODE` set (to the
//! Redis URL), running only the ignored test `recovery_node_process`: the `Feed` endpoint of
//! `tests/recovery_support` with a `RedisBroker` and a `RedisHistory`.
//!
//! Needs the `redis-server` binary: `apt-get install -y redis-server`.

#![cfg(feature = "redis")]

mod recovery_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use endpoint::history::{RedisHistory, Retention, RoomHistory};
use endpoint::redis::RedisBroker;
use endpoint::Server;
use futures::{SinkExt, StreamExt};
use recovery_support::*;

const NODE_ENV: &str = "ENDPOINT_RECOVERY_NODE";

/// Not a test: the body of a node process (see the module docs).
#[test]
#[ignore = "the body of a node process started by the other tests"]
fn recovery_node_process() {
    let Some(url) = std::env::var_os(NODE_ENV) else {
        return;
    };
    let url = url.into_string().expect("UTF-8 URL");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async move {
            let broker = RedisBroker::connect(&url)
                .await
                .expect("redis")
                .backoff(Duration::from_millis(50), Duration::from_millis(200));
            let history = RoomHistory::new(RedisHistory::new(&broker))
                .retention(Retention::new().max_count(100_000));
            let bound = Server::new()
                .endpoint::<Feed>()
                .broker(broker)
                .history(history)
                .bind("127.0.0.1:0")
                .await
                .expect("bind");
            let handle = bound.handle();
            let addr = bound.local_addr().expect("local_addr");
            let server = tokio::spawn(bound.run());
            let deadline = Instant::now() + Duration::from_secs(10);
            while !handle.stats().broker.is_some_and(|b| b.connected) {
                assert!(Instant::now() < deadline, "broker not connected");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!("listening on {addr}");
            server.await.expect("server task").expect("server");
        });
}

struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install -y redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
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

struct Node {
    addr: SocketAddr,
    child: Child,
}

impl Node {
    fn start(redis: &Redis) -> Node {
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .args([
                "--exact",
                "recovery_node_process",
                "--ignored",
                "--nocapture",
            ])
            .env(NODE_ENV, redis.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(line) = lines.find(|l| l.starts_with("listening on ")) {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("the node printed its address");
        let addr = line["listening on ".len()..].parse().expect("address");
        Node { addr, child }
    }

    /// SIGKILL, no goodbye.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A publisher over a WebSocket: `pub:TEXT`, each acknowledged with its offset.
struct Publisher(Client);

impl Publisher {
    async fn connect(addr: SocketAddr, room: &str) -> Publisher {
        let mut c = Client::connect(addr, room, "").await;
        c.until_recovery().await;
        Publisher(c)
    }

    /// Publishes `n`, pipelined; returns the offsets acknowledged.
    async fn publish(&mut self, tag: &str, n: usize) -> Vec<u64> {
        for i in 1..=n {
            self.0
                .ws
                .send(WsMessage::Text(format!("pub:{tag}-{i}").into()))
                .await
                .expect("send");
        }
        let mut acks = Vec::new();
        while acks.len() < n {
            match within(TIMEOUT, "ack", self.0.ws.next()).await {
                Some(Ok(WsMessage::Text(t))) => {
                    if let Some(o) = t.strip_prefix("ok:") {
                        acks.push(o.parse().unwrap());
                    } else {
                        assert!(!t.starts_with("err:"), "{t}");
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("publisher: {other:?}"),
            }
        }
        acks
    }
}

/// A client of `a` saw `n` messages published on `b`, then dropped: (epoch, offset).
async fn see_then_drop(a: &Node, b: &Node, room: &str, n: usize) -> (String, u64) {
    let mut c = Client::connect(a.addr, room, "").await;
    let r = c.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    let mut p = Publisher::connect(b.addr, room).await;
    let acks = p.publish("before", n).await;
    c.until_offset(*acks.last().unwrap()).await;
    let got = c.drop_connection();
    let last = got.last().unwrap().clone();
    (last.epoch, last.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_on_the_other_node_exactly_once_also_while_both_publish() {
    let redis = Redis::start();
    let a = Node::start(&redis);
    let b = Node::start(&redis);
    let (epoch, since) = see_then_drop(&a, &b, "r", 5).await;
    assert_eq!(since, 5);
    // A member of node a that stays: it sees every message once, in offset order, whichever
    // node published it.
    let mut stay = Client::connect(a.addr, "r", &format!("epoch={epoch}&since={since}")).await;
    stay.until_recovery().await;

    let mut pb = Publisher::connect(b.addr, "r").await;
    assert_eq!(
        pb.publish("missed", 100).await,
        (6..=105).collect::<Vec<u64>>()
    );

    // Back on the *other* node, while both nodes keep publishing.
    let mut pa = Publisher::connect(a.addr, "r").await;
    let on_a = tokio::spawn(async move { pa.publish("a", 200).await });
    let on_b = tokio::spawn(async move { pb.publish("b", 200).await });
    let mut back = Client::resume(b.addr, "r", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    let acks_a = on_a.await.unwrap();
    let acks_b = on_b.await.unwrap();
    let top = 105 + 400;
    let mut all: Vec<u64> = acks_a.iter().chain(&acks_b).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (106..=top).collect::<Vec<u64>>(),
        "offsets from Redis, one each"
    );
    back.until_offset(top).await;
    assert_exactly(&back.offsets(), 6, top);
    assert_eq!(back.got[0].text, "missed-1");
    stay.until_offset(top).await;
    assert_exactly(&stay.offsets(), 6, top);
    back.expect_quiet(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_node_killed_with_sigkill_recovers_on_the_other() {
    let redis = Redis::start();
    let mut a = Node::start(&redis);
    let b = Node::start(&redis);
    let mut c = Client::connect(a.addr, "k", "").await;
    c.until_recovery().await;
    let mut pb = Publisher::connect(b.addr, "k").await;
    pb.publish("before", 7).await;
    c.until_offset(7).await;
    let epoch = c.got[0].epoch.clone();
    a.kill(); // SIGKILL: the client's connection dies with it
    let missed = pb.publish("missed", 100).await;
    assert_eq!(missed, (8..=107).collect::<Vec<u64>>());
    let mut back = Client::resume(b.addr, "k", &epoch, 7).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_exactly(&back.offsets(), 8, 107);
    pb.publish("live", 1).await;
    back.until_offset(108).await;
    assert_exactly(&back.offsets(), 8, 108);
    // A node started after the kill serves the same history.
    let a2 = Node::start(&redis);
    let mut late = Client::resume(a2.addr, "k", &epoch, 100).await;
    let r = late.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_exactly(&late.offsets(), 101, 108);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_without_its_data_is_a_new_epoch() {
    let mut redis = Redis::start();
    let a = Node::start(&redis);
    let (epoch, since) = see_then_drop(&a, &a, "e", 3).await;
    redis.kill();
    redis.spawn(); // same port, empty
                   // Publishing fails while the broker reconnects, then works, in a new epoch.
    let mut p = Publisher::connect(a.addr, "e").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        p.0.ws
            .send(WsMessage::Text("pub:after".into()))
            .await
            .unwrap();
        let t = loop {
            match within(TIMEOUT, "ack", p.0.ws.next()).await {
                Some(Ok(WsMessage::Text(t))) if t.starts_with("ok:") || t.starts_with("err:") => {
                    break t
                }
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        };
        if t.starts_with("ok:") {
            break;
        }
        assert!(Instant::now() < deadline, "publish never worked again: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut back = Client::resume(a.addr, "e", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], false, "{r}");
    assert_eq!(r["lost"], "epoch");
    assert_ne!(r["epoch"], epoch.as_str());
    assert_eq!(back.got.len(), 1, "the new epoch's history: {:?}", back.got);
    assert_eq!(back.got[0].text, "after");
}
