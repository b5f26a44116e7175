//! Which broadcasts cross nodes: `Room::broadcast` and `Room::broadcast_except` go to the
//! room's members everywhere (through the broker), `Room::local()` and the endpoint-wide
//! `Session::broadcast` / `broadcast_others` / `Rooms::broadcast` stay on this node.
//!
//! Two ways to see it: a recording broker (what would leave the node), and, with the `redis`
//! feature, two servers in this process sharing a room through a real `redis-server` that the
//! test starts on a free loopback port (and kills, by PID, at the end).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, fast_limits, recv_text, send_text, start, Ws, WsMessage};
use endpoint::broker::{Broker, Inbox, Topic};
use endpoint::prelude::*;
use futures::{SinkExt, StreamExt};

/// Every member joins `r`; a text names the broadcast to make.
#[derive(Default)]
struct Reach;

#[server_endpoint("/reach")]
impl Reach {
    #[on_open]
    fn open(&mut self, session: &Session) {
        session.join("r");
    }

    #[on_message]
    fn message(&mut self, session: &Session, what: String) -> Result<(), EndpointError> {
        let room = session.room("r");
        let tag = format!("{what} from {}", session.id());
        let _ = match what.as_str() {
            "room" => room.broadcast(tag)?,
            "room-except" => room.broadcast_except(tag, session)?,
            "local" => room.local().broadcast(tag)?,
            "local-except" => room.local().broadcast_except(tag, session)?,
            "endpoint" => session.broadcast(tag)?,
            "endpoint-others" => session.broadcast_others(tag)?,
            _ => return Err(EndpointError::from_handler("unknown broadcast".into())),
        };
        Ok(())
    }
}

/// What would go to the other nodes.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<(String, String)>>>);

impl Broker for Recording {
    fn start(&self, _inbox: Inbox) {}
    fn publish(&self, topic: &Topic, message: &Message) {
        let text = message.as_text().unwrap_or_default().to_owned();
        self.0.lock().unwrap().push((topic.room().to_owned(), text));
    }
}

impl Recording {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Nothing more arrives within `quiet` (a ping or pong does not count).
async fn assert_quiet(ws: &mut Ws, quiet: Duration, who: &str) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(other) => panic!("{who} got {other:?}, expected nothing"),
        }
    }
}

/// Both members of the room, joined (a round trip each proves `on_open` ran).
async fn two_members(server: &common::TestServer) -> (Ws, Ws) {
    let mut a = server.connect("/reach").await;
    let mut b = server.connect("/reach").await;
    for ws in [&mut a, &mut b] {
        ws.send(WsMessage::Ping(Vec::new().into())).await.unwrap();
        bounded("pong", async {
            while !matches!(ws.next().await, Some(Ok(WsMessage::Pong(_)))) {}
        })
        .await;
    }
    (a, b)
}

#[tokio::test]
async fn only_room_broadcasts_go_to_the_broker_and_every_kind_reaches_this_node() {
    let recording = Recording::default();
    let server = start(
        Server::new()
            .endpoint::<Reach>()
            .broker(recording.clone())
            .limits(fast_limits()),
    )
    .await;
    let (mut a, mut b) = two_members(&server).await;

    // (what a sends, whether b gets it, whether a gets it, whether it goes to the broker)
    let cases = [
        ("room", true, true, true),
        ("room-except", true, false, true),
        ("local", true, true, false),
        ("local-except", true, false, false),
        ("endpoint", true, true, false),
        ("endpoint-others", true, false, false),
    ];
    for (what, to_b, to_a, published) in cases {
        send_text(&mut a, what).await;
        if to_b {
            assert!(recv_text(&mut b).await.starts_with(what), "{what} to b");
        }
        if to_a {
            assert!(recv_text(&mut a).await.starts_with(what), "{what} to a");
        } else {
            assert_quiet(&mut a, Duration::from_millis(100), "the sender").await;
        }
        let sent = recording.take();
        if published {
            assert_eq!(sent.len(), 1, "{what}: one publish, got {sent:?}");
            assert_eq!(sent[0].0, "r");
            assert!(sent[0].1.starts_with(what), "{what}: {sent:?}");
        } else {
            assert!(
                sent.is_empty(),
                "{what} stays on this node, published {sent:?}"
            );
        }
    }
    server.shutdown().await;
}

#[cfg(feature = "redis")]
mod two_nodes {
    use super::*;
    use endpoint::redis::RedisBroker;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    /// A `redis-server` on a free loopback port, without persistence; killed when dropped.
    struct Redis {
        port: u16,
        child: Child,
    }

    impl Redis {
        fn start() -> Redis {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(std::env::temp_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run redis-server ({e}): apt-get install -y redis-server")
                });
            let redis = Redis { port, child };
            let deadline = Instant::now() + Duration::from_secs(5);
            while !redis.ping() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not answer in 5 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            redis
        }

        fn ping(&self) -> bool {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 7];
            s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn node(redis: &Redis, name: &str) -> common::TestServer {
        let url = format!("redis://127.0.0.1:{}/", redis.port);
        start(
            Server::new()
                .endpoint::<Reach>()
                .broker(RedisBroker::new(&url).expect("redis url"))
                .node_id(name)
                .limits(fast_limits()),
        )
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_room_broadcast_crosses_nodes_and_a_local_one_does_not() {
        let redis = Redis::start();
        let (node_a, node_b) = (node(&redis, "a").await, node(&redis, "b").await);
        let mut on_a = node_a.connect("/reach").await;
        let mut on_b = node_b.connect("/reach").await;
        // The subscriptions are up once a cross-node broadcast arrives: retry until one does.
        bounded("the nodes to see each other", async {
            loop {
                send_text(&mut on_a, "room").await;
                assert!(recv_text(&mut on_a).await.starts_with("room"));
                let got = tokio::time::timeout(Duration::from_millis(200), recv_text(&mut on_b));
                if let Ok(text) = got.await {
                    assert!(text.starts_with("room"), "{text}");
                    return;
                }
            }
        })
        .await;
        // Drain late copies of the retries.
        assert_quiet_or_room(&mut on_b).await;

        for (what, crosses) in [
            ("local", false),
            ("endpoint", false),
            ("room", true),
            ("local", false),
        ] {
            send_text(&mut on_a, what).await;
            assert!(recv_text(&mut on_a).await.starts_with(what), "{what} on a");
            if crosses {
                assert!(recv_text(&mut on_b).await.starts_with(what), "{what} on b");
            } else {
                assert_quiet(&mut on_b, Duration::from_millis(300), "the other node").await;
            }
        }
        node_a.shutdown().await;
        node_b.shutdown().await;
        drop(redis);
    }

    /// Skips the copies of the warm-up broadcasts still on their way to node b.
    async fn assert_quiet_or_room(ws: &mut Ws) {
        loop {
            match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(WsMessage::Text(t)))) => assert!(t.starts_with("room"), "{t}"),
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
                Ok(other) => panic!("unexpected {other:?}"),
            }
        }
    }
}
