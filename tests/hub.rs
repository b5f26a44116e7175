//! `Hub<E>`: pushes to an endpoint's rooms and sessions from outside its handlers (a timer
//! task here, as Tomcat's snake timer), taken from the `Server` builder before `bind`, typed by
//! the endpoint (no path to spell, with or without the context path); cluster-wide through the
//! Redis broker (feature `redis`, a real `redis-server` started on a free loopback port and
//! killed by PID at the end).

mod common;

use std::time::Duration;

use common::*;
use endpoint::prelude::*;
use endpoint::{EndpointError, Hub};

/// Joins the room named by `?room=` (if any).
#[derive(Default)]
struct Board;

#[server_endpoint("/board")]
impl Board {
    #[on_open]
    fn open(&mut self, session: &Session) {
        if let Some(room) = session.query_param("room") {
            session.join(&room);
        }
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("echo:{text}")
    }
}

#[derive(Default)]
struct Other;

#[server_endpoint("/other")]
impl Other {
    #[on_message]
    fn text(&mut self, _text: String) {}
}

/// Sends `tick N` to `room` every 20 ms, from a task that has no session.
fn timer(hub: Hub<Board>, room: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0.. {
            tick.tick().await;
            if let Ok(room) = hub.room(room) {
                let _ = room.broadcast(format!("tick {n}"));
            }
        }
    })
}

async fn next_tick(ws: &mut Ws) -> u64 {
    let text = recv_text(ws).await;
    text.strip_prefix("tick ")
        .unwrap_or_else(|| panic!("not a tick: {text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_hub_taken_before_bind_reaches_a_room_from_a_timer_task() {
    let server = Server::new()
        .endpoint::<Board>()
        .context_path("/app")
        .limits(fast_limits());
    let hub = server.hub::<Board>();
    // Before the server is built, pushes fail, naming the endpoint.
    assert!(!hub.is_serving());
    let err = hub.broadcast("too early").unwrap_err();
    assert!(matches!(err, EndpointError::NotServing("/board")), "{err}");
    assert!(err.to_string().contains("\"/board\""), "{err}");
    assert!(hub.room("lobby").is_err());

    let server = start(server).await;
    assert!(hub.is_serving());
    let mut inside = server.connect("/app/board?room=lobby").await;
    let mut outside = server.connect("/app/board").await;
    let ticker = timer(hub.clone(), "lobby");
    let first = next_tick(&mut inside).await;
    assert_eq!(next_tick(&mut inside).await, first + 1, "in order");
    // Not in the room: no ticks, only its own echo.
    assert_eq!(roundtrip(&mut outside, "hi").await, "echo:hi");
    ticker.abort();

    // Every session of the endpoint, not only the room.
    let d = hub.broadcast_local("to all").unwrap();
    assert_eq!(d.delivered, 2);
    assert_eq!(recv_text(&mut outside).await, "to all");
    loop {
        if recv_text(&mut inside).await == "to all" {
            break;
        }
    }
    assert_eq!(hub.sessions().len(), 2);
    assert_eq!(hub.rooms().unwrap().names(), vec!["lobby".to_owned()]);

    // The handle finds the rooms with or without the context path.
    assert!(server.handle.rooms("/board").is_some());
    assert!(server.handle.rooms("/app/board").is_some());
    assert!(server.handle.rooms("/app").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn bind_fails_for_a_hub_of_an_endpoint_the_server_does_not_serve() {
    let server = Server::new().endpoint::<Other>();
    let _hub = server.hub::<Board>();
    let err = server.bind("127.0.0.1:0").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"/board\""), "{err}");
    assert!(err.to_string().contains("Server::endpoint"), "{err}");
}

#[cfg(feature = "redis")]
mod cluster {
    use super::*;
    use endpoint::redis::RedisBroker;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    /// A `redis-server` on a free loopback port, without persistence; killed (by PID) on drop.
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

    fn node(redis: &Redis, name: &str) -> Server {
        let url = format!("redis://127.0.0.1:{}/", redis.port);
        Server::new()
            .endpoint::<Board>()
            .broker(RedisBroker::new(&url).expect("redis url"))
            .node_id(name)
            .limits(fast_limits())
    }

    /// The timer runs on node a only; members of the room on both nodes get every tick in
    /// order, and a session in no room on node b gets the hub's endpoint-wide broadcast.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hub_from_a_timer_task_reaches_a_room_on_two_nodes() {
        let redis = Redis::start();
        let a = node(&redis, "a");
        let hub = a.hub::<Board>();
        let (node_a, node_b) = (start(a).await, start(node(&redis, "b")).await);
        let mut on_a = node_a.connect("/board?room=snakes").await;
        let mut on_b = node_b.connect("/board?room=snakes").await;
        let mut idle_b = node_b.connect("/board").await;
        let ticker = timer(hub.clone(), "snakes");

        let first_a = next_tick(&mut on_a).await;
        // Node b's subscription may take a moment: its first tick is some later one.
        let first_b = next_tick(&mut on_b).await;
        for _ in 0..5 {
            assert!(next_tick(&mut on_b).await > first_b);
        }
        let mut last_a = first_a;
        for _ in 0..5 {
            let n = next_tick(&mut on_a).await;
            assert_eq!(n, last_a + 1, "node a: in order, none lost");
            last_a = n;
        }
        ticker.abort();
        // Ticks on node b come in order too, with no gap once they started.
        let mut last_b = None;
        loop {
            match tokio::time::timeout(Duration::from_millis(300), recv_text(&mut on_b)).await {
                Err(_) => break,
                Ok(text) => {
                    let n: u64 = text.strip_prefix("tick ").unwrap().parse().unwrap();
                    if let Some(last) = last_b {
                        assert_eq!(n, last + 1, "node b: in order, none lost");
                    }
                    last_b = Some(n);
                }
            }
        }

        // Every session of the endpoint on every node, rooms or not.
        let d = hub.broadcast("everyone").unwrap();
        assert_eq!(d.delivered, 1, "node a's one session");
        assert_eq!(recv_text(&mut idle_b).await, "everyone");
        assert_eq!(recv_text(&mut on_b).await, "everyone");
        let text = loop {
            let t = recv_text(&mut on_a).await;
            if !t.starts_with("tick ") {
                break t;
            }
        };
        assert_eq!(text, "everyone");
        // Local only: node b's sessions hear nothing more.
        assert_eq!(hub.broadcast_local("a only").unwrap().delivered, 1);
        let quiet = tokio::time::timeout(Duration::from_millis(300), recv_text(&mut idle_b)).await;
        assert!(quiet.is_err(), "a local broadcast crossed nodes: {quiet:?}");

        node_a.shutdown().await;
        node_b.shutdown().await;
        drop(redis);
    }
}
