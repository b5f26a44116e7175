//! The chat's recovery protocol (`examples/chat/README.md`): a page that reconnects with
//! `?epoch=E&since=OFFSET` gets exactly the messages it missed in its `history` event, in
//! order, none twice, also while others keep talking; across a restart (SQLite); a changed
//! epoch is "not recoverable"; with Redis (feature `redis`) two chat servers share offsets and
//! history, so a page recovers on the other server.

mod chat_support;

use std::collections::BTreeSet;
use std::time::Duration;

use chat_support::{ChatServer, Client, TempDir};
use serde_json::Value;

/// Offsets and texts of a `history` event's messages.
fn offsets(history: &Value) -> Vec<u64> {
    history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].as_u64().expect("offset"))
        .collect()
}

/// `ada` says `n` messages `"{tag} i"`, each read back; returns the last event.
async fn say_n(ada: &mut Client, tag: &str, n: usize) -> Value {
    let mut last = Value::Null;
    for i in 1..=n {
        let text = format!("{tag} {i}");
        ada.say(&text).await;
        // (joins, leaves and presence of others may come in between)
        last = loop {
            let ev = ada.next().await;
            if ev["type"] == "message" && ev["text"] == text.as_str() {
                break ev;
            }
        };
    }
    last
}

/// bob saw some messages of `room` and dropped: (epoch, offset).
async fn bob_drops(server: &ChatServer, ada: &mut Client, room: &str) -> (String, u64) {
    let (mut bob, _) = Client::join(server.addr, room, "bob").await;
    assert_eq!(ada.expect("join").await["name"], "bob");
    ada.expect("presence").await;
    let seen = say_n(ada, "seen", 3).await;
    let mut last = Value::Null;
    for _ in 0..3 {
        last = bob.expect("message").await;
    }
    assert_eq!(last["offset"], seen["offset"]);
    drop(bob); // the TCP connection is gone, no close handshake
    assert_eq!(ada.expect("leave").await["name"], "bob");
    ada.expect("presence").await;
    (
        last["epoch"].as_str().unwrap().to_owned(),
        last["offset"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_page_that_reconnects_with_its_position_gets_exactly_what_it_missed() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "lobby", "ada").await;
    let (epoch, since) = bob_drops(&server, &mut ada, "lobby").await;
    say_n(&mut ada, "missed", 100).await;

    let mut bob = Client::connect(
        server.addr,
        "lobby",
        &format!("?name=bob&epoch={epoch}&since={since}"),
    )
    .await;
    let history = bob.expect("history").await;
    assert_eq!(history["recovered"], true, "{history}");
    assert_eq!(history["epoch"], epoch.as_str());
    let got = offsets(&history);
    assert_eq!(got, (since + 1..=since + 100).collect::<Vec<u64>>());
    assert_eq!(history["messages"][0]["text"], "missed 1");
    assert_eq!(history["messages"][99]["text"], "missed 100");
    assert_eq!(history["offset"], since + 100);
    bob.expect("join").await;
    bob.expect("presence").await;
    // and then live, once
    ada.say("welcome back").await;
    let live = bob.expect("message").await;
    assert_eq!(live["offset"], since + 101);
    bob.expect_nothing(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_while_the_room_keeps_talking_has_no_gap_and_no_duplicate() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "busy", "ada").await;
    let (epoch, since) = bob_drops(&server, &mut ada, "busy").await;
    say_n(&mut ada, "missed", 100).await;
    // carol talks (pipelined, 200 messages) while bob reconnects
    let (mut carol, _) = Client::join(server.addr, "busy", "carol").await;
    let talk = tokio::spawn(async move {
        for i in 0..200 {
            carol.say(&format!("carol {i}")).await;
        }
        carol
    });
    let mut bob = Client::connect(
        server.addr,
        "busy",
        &format!("?name=bob&epoch={epoch}&since={since}"),
    )
    .await;
    let history = bob.expect("history").await;
    assert_eq!(history["recovered"], true, "{history}");
    let mut got = offsets(&history);
    let top = since + 100 + 200;
    let _carol = talk.await.unwrap();
    while got.last().copied().unwrap_or(since) < top {
        let ev = bob.next().await;
        if ev["type"] == "message" {
            got.push(ev["offset"].as_u64().unwrap());
        }
    }
    assert_eq!(
        got,
        (since + 1..=top).collect::<Vec<u64>>(),
        "exactly once, in order"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_page_recovers_across_a_server_restart() {
    let dir = TempDir::new("chat-recovery");
    let db = dir.path().join("chat.db");
    let server = ChatServer::start(&db).await;
    let (mut ada, _) = Client::join(server.addr, "lobby", "ada").await;
    let (epoch, since) = bob_drops(&server, &mut ada, "lobby").await;
    say_n(&mut ada, "before", 40).await;
    server.stop().await;
    assert_eq!(ada.expect_close().await.0, 1001);

    let server = ChatServer::start(&db).await;
    let (mut ada, _) = Client::join(server.addr, "lobby", "ada").await;
    say_n(&mut ada, "after", 60).await;
    let mut bob = Client::connect(
        server.addr,
        "lobby",
        &format!("?name=bob&epoch={epoch}&since={since}"),
    )
    .await;
    let history = bob.expect("history").await;
    assert_eq!(history["recovered"], true, "{history}");
    assert_eq!(
        history["epoch"],
        epoch.as_str(),
        "the epoch survives a restart"
    );
    assert_eq!(
        offsets(&history),
        (since + 1..=since + 100).collect::<Vec<u64>>()
    );
    assert_eq!(history["messages"][0]["text"], "before 1");
    assert_eq!(history["messages"][99]["text"], "after 60");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_epoch_is_not_recoverable_and_the_page_gets_the_last_messages() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "e", "ada").await;
    say_n(&mut ada, "m", 5).await;
    let mut bob = Client::connect(server.addr, "e", "?name=bob&epoch=gone&since=2").await;
    let history = bob.expect("history").await;
    assert_eq!(history["recovered"], false, "{history}");
    assert_eq!(history["lost"], "epoch");
    assert_eq!(offsets(&history), [1, 2, 3, 4, 5]);
    server.stop().await;
}

#[cfg(feature = "redis")]
mod with_redis {
    use super::*;
    use chat_support::app;
    use endpoint::history::{RedisHistory, RoomHistory};
    use endpoint::redis::RedisBroker;
    use std::io::{Read, Write};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    struct Redis(Child, u16);

    impl Redis {
        fn start() -> Redis {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(std::env::temp_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (apt-get install -y redis-server)");
            // Killed and waited for on drop, also if it never answers.
            let redis = Redis(child, port);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                    let mut buf = [0u8; 7];
                    s.write_all(b"PING\r\n").is_ok()
                        && s.read_exact(&mut buf).is_ok()
                        && &buf == b"+PONG\r\n"
                });
                if ok {
                    return redis;
                }
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn node(redis: &Redis) -> ChatServer {
        let url = format!("redis://127.0.0.1:{}/", redis.1);
        let broker = RedisBroker::connect(&url).await.expect("redis");
        let store = app::Store::with(RoomHistory::new(RedisHistory::new(&broker)));
        let hub = app::Hub::new(store);
        hub.set_cluster();
        let server = app::server(hub).broker(broker);
        let node = ChatServer::start_with("127.0.0.1:0".parse().unwrap(), server).await;
        // The broker connects once the server runs: wait until publishing works.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node.broker_connected() {
            assert!(Instant::now() < deadline, "broker not connected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        node
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_chat_servers_share_history_and_a_page_recovers_on_the_other() {
        let redis = Redis::start();
        let a = node(&redis).await;
        let b = node(&redis).await;
        let (mut ada, _) = Client::join(a.addr, "lobby", "ada").await;
        // bob on b sees ada's messages with the same offsets
        let mut bob = Client::connect(b.addr, "lobby", "?name=bob").await;
        assert_eq!(
            bob.expect("history").await["messages"],
            serde_json::json!([])
        );
        let mut seen = BTreeSet::new();
        say_n(&mut ada, "hello", 3).await;
        while seen.len() < 3 {
            let ev = bob.next().await;
            if ev["type"] == "message" {
                seen.insert(ev["offset"].as_u64().unwrap());
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        let epoch = a_epoch(&mut ada, &a).await;
        drop(bob);
        say_n(&mut ada, "missed", 50).await; // offsets 4..=53
                                             // a fresh joiner on b sees the history written through a
        let (_carol, history) = Client::join(b.addr, "lobby", "carol").await;
        assert_eq!(
            offsets(&history),
            (4..=53).collect::<Vec<u64>>(),
            "the last 50"
        );
        // bob comes back on a, from his position
        let mut bob =
            Client::connect(a.addr, "lobby", &format!("?name=bob&epoch={epoch}&since=3")).await;
        let history = bob.expect("history").await;
        assert_eq!(history["recovered"], true, "{history}");
        assert_eq!(offsets(&history), (4..=53).collect::<Vec<u64>>());
    }

    /// The epoch, from a `history` event of a throwaway joiner on `server`.
    async fn a_epoch(_ada: &mut Client, server: &ChatServer) -> String {
        let (_c, history) = Client::join(server.addr, "lobby", "probe").await;
        history["epoch"].as_str().unwrap().to_owned()
    }
}
