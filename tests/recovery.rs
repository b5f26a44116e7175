//! Positions, history and recovery of rooms (issue 17), over real sockets:
//!
//! * a client drops its connection, 100 messages are published, it reconnects with its
//!   position and gets exactly those 100, in order, none twice — also while publishing goes on
//!   during the replay;
//! * the same across a server restart with the SQLite store, and a restart
//!   with the memory store changes the epoch;
//! * history trimmed below the position, and a changed epoch: "not recoverable", with what is
//!   available delivered;
//! * stats count recoveries.
//!
//! Redis Streams across two nodes are in `tests/recovery_redis.rs`.

mod recovery_support;

use std::time::Duration;

use endpoint::broker::Topic;
use endpoint::history::{
    History, HistoryError, HistoryFuture, MemoryHistory, Position, Retention, RoomHistory, Slice,
};
use endpoint::Message;
use endpoint::Server;
use recovery_support::*;

const FEED: &str = "/feed/{room}";

fn server(history: RoomHistory) -> Server {
    Server::new()
        .limits(fast_limits())
        .endpoint::<Feed>()
        .history(history)
}

/// A client that saw `n` messages, then dropped; returns (epoch, last offset).
async fn see_then_drop(srv: &Running, room: &str, n: usize) -> (String, u64) {
    let rooms = srv.handle.rooms(FEED).expect("rooms");
    let mut c = Client::connect(srv.addr, room, "").await;
    let r = c.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    let offsets = publish_n(&rooms, room, "before", n).await;
    c.until_offset(*offsets.last().unwrap()).await;
    assert_exactly(&c.offsets(), 1, n as u64);
    let got = c.drop_connection();
    let last = got.last().unwrap().clone();
    (last.epoch, last.offset)
}

#[tokio::test]
async fn a_dropped_client_gets_exactly_the_100_it_missed() {
    let srv = run(server(RoomHistory::memory())).await;
    let rooms = srv.handle.rooms(FEED).unwrap();
    let (epoch, since) = see_then_drop(&srv, "lobby", 5).await;
    // A member that stays, to check live delivery is unaffected.
    let mut stay = Client::connect(srv.addr, "lobby", "epoch=x&since=0").await;
    stay.until_recovery().await;
    let before = stay.got.len();

    let offsets = publish_n(&rooms, "lobby", "missed", 100).await;
    assert_eq!(offsets, (6..=105).collect::<Vec<u64>>());

    let mut back = Client::resume(srv.addr, "lobby", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(r["replayed"], 100);
    assert_eq!(r["epoch"], epoch.as_str());
    assert_exactly(&back.offsets(), 6, 105);
    let texts: Vec<String> = back.got.iter().map(|g| g.text.clone()).collect();
    assert_eq!(texts[0], "missed-1");
    assert_eq!(texts[99], "missed-100");
    assert!(back.got.iter().all(|g| g.epoch == epoch));

    // Then live, once.
    publish_n(&rooms, "lobby", "live", 3).await;
    back.until_offset(108).await;
    assert_exactly(&back.offsets(), 6, 108);
    back.expect_quiet(Duration::from_millis(200)).await;
    stay.until_offset(108).await;
    assert_exactly(&stay.offsets()[before..], 6, 108);

    let h = srv.handle.stats().history.expect("history stats");
    assert!(h.recoveries >= 3 && h.recovered >= 2, "{h:?}");
    assert_eq!(h.published, 108);
    assert_eq!(h.entries, 108);
}

/// A store whose reads take 20 ms (the history read of a recovery is slow, as over a network):
/// publishers keep going meanwhile, so the replay and the live messages held for the session
/// overlap, and the overlap must be delivered once.
struct SlowReads(MemoryHistory);

impl History for SlowReads {
    fn append<'a>(
        &'a self,
        topic: &'a Topic,
        message: &'a Message,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Position, HistoryError>> {
        self.0.append(topic, message, retention)
    }

    fn read<'a>(
        &'a self,
        topic: &'a Topic,
        after: u64,
        limit: usize,
        retention: &'a Retention,
    ) -> HistoryFuture<'a, Result<Slice, HistoryError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.0.read(topic, after, limit, retention).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovery_while_others_keep_publishing_has_no_gap_and_no_duplicate() {
    let keep = Retention::new().max_count(100_000);
    for slow in [false, true] {
        let history = if slow {
            RoomHistory::new(SlowReads(MemoryHistory::new()))
        } else {
            RoomHistory::memory()
        };
        let srv = run(server(history.retention(keep))).await;
        concurrent_rounds(&srv, if slow { 5 } else { 10 }).await;
        let h = srv.handle.stats().history.unwrap();
        assert!(h.recovered >= 5, "{h:?}");
    }
}

async fn concurrent_rounds(srv: &Running, rounds: usize) {
    let rooms = srv.handle.rooms(FEED).unwrap();
    for round in 0..rounds {
        let room = format!("busy{round}");
        let (epoch, since) = see_then_drop(srv, &room, 3).await;
        publish_n(&rooms, &room, "missed", 100).await;
        // A publisher over a WebSocket, and one through the server's rooms, both running
        // while the client reconnects and its history is replayed.
        let mut ws_pub = Client::connect(srv.addr, &room, "").await;
        ws_pub.until_recovery().await;
        let r2 = rooms.clone();
        let room2 = room.clone();
        let background = tokio::spawn(async move { publish_n(&r2, &room2, "bg", 300).await });
        let over_ws = tokio::spawn(async move {
            use futures::{SinkExt, StreamExt};
            let mut acks = 0;
            for i in 0..100 {
                ws_pub
                    .ws
                    .send(WsMessage::Text(format!("pub:ws-{i}").into()))
                    .await
                    .unwrap();
            }
            while acks < 100 {
                match within(TIMEOUT, "ack", ws_pub.ws.next()).await {
                    Some(Ok(WsMessage::Text(t))) if t.starts_with("ok:") => acks += 1,
                    Some(Ok(WsMessage::Text(t))) if t.starts_with("err:") => panic!("{t}"),
                    Some(Ok(_)) => {}
                    other => panic!("publisher socket: {other:?}"),
                }
            }
        });
        let mut back = Client::resume(srv.addr, &room, &epoch, since).await;
        let r = back.until_recovery().await;
        assert_eq!(r["recovered"], true, "{r}");
        background.await.unwrap();
        over_ws.await.unwrap();
        let top = 3 + 100 + 300 + 100;
        back.until_offset(top).await;
        assert_exactly(&back.offsets(), since + 1, top);
        back.expect_quiet(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn trimmed_history_is_not_recoverable_and_the_rest_is_delivered() {
    let srv = run(server(
        RoomHistory::memory().retention(Retention::new().max_count(20)),
    ))
    .await;
    let rooms = srv.handle.rooms(FEED).unwrap();
    let (epoch, since) = see_then_drop(&srv, "small", 5).await;
    publish_n(&rooms, "small", "missed", 100).await; // offsets 6..=105; 86..=105 kept
    let mut back = Client::resume(srv.addr, "small", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], false, "{r}");
    assert_eq!(r["lost"], "trimmed");
    assert_eq!(r["replayed"], 20);
    assert_exactly(&back.offsets(), 86, 105);
    // Live goes on after it.
    publish_n(&rooms, "small", "live", 1).await;
    back.until_offset(106).await;
    assert_exactly(&back.offsets(), 86, 106);
    let h = srv.handle.stats().history.unwrap();
    assert_eq!(h.not_recovered, 1, "{h:?}");
}

#[tokio::test]
async fn a_changed_epoch_is_not_recoverable_and_the_available_history_is_delivered() {
    let srv = run(server(RoomHistory::memory())).await;
    let rooms = srv.handle.rooms(FEED).unwrap();
    let (epoch, _) = see_then_drop(&srv, "e", 10).await;
    let mut back = Client::resume(srv.addr, "e", "not-the-epoch", 4).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], false, "{r}");
    assert_eq!(r["lost"], "epoch");
    assert_eq!(r["epoch"], epoch.as_str());
    assert_exactly(&back.offsets(), 1, 10);
    // Ahead of the room: not recoverable, nothing replayed.
    let mut ahead = Client::resume(srv.addr, "e", &epoch, 50).await;
    let r = ahead.until_recovery().await;
    assert_eq!(
        (r["recovered"].clone(), r["lost"].clone()),
        (false.into(), "ahead".into())
    );
    assert!(ahead.got.is_empty());
    // Up to date: recovered, nothing to replay.
    let mut current = Client::resume(srv.addr, "e", &epoch, 10).await;
    let r = current.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    assert!(current.got.is_empty());
    publish_n(&rooms, "e", "x", 1).await;
    current.until_offset(11).await;
    assert_exactly(&current.offsets(), 11, 11);
}

#[tokio::test]
async fn a_fresh_join_gets_the_last_messages_then_live() {
    let srv = run(server(RoomHistory::memory())).await;
    let rooms = srv.handle.rooms(FEED).unwrap();
    publish_n(&rooms, "f", "old", 30).await;
    let mut c = Client::connect(srv.addr, "f", "last=10").await;
    let r = c.until_recovery().await;
    assert_eq!(r["recovered"], true);
    assert_eq!(r["top"], 30);
    assert_exactly(&c.offsets(), 21, 30);
    publish_n(&rooms, "f", "new", 2).await;
    c.until_offset(32).await;
    assert_exactly(&c.offsets(), 21, 32);
}

#[tokio::test]
async fn publish_without_history_is_a_clear_error() {
    let srv = run(Server::new().limits(fast_limits()).endpoint::<Feed>()).await;
    let rooms = srv.handle.rooms(FEED).unwrap();
    let e = rooms.room("x").publish("hi").await.unwrap_err();
    assert!(e.to_string().contains("Server::history"), "{e}");
    let mut c = Client::connect(srv.addr, "x", "").await;
    let r = c.until_recovery().await;
    assert_eq!(r["type"], "error", "{r}");
}

#[tokio::test]
async fn a_memory_store_restarted_is_a_new_epoch() {
    let mut first = run(server(RoomHistory::memory())).await;
    let (epoch, since) = see_then_drop(&first, "m", 3).await;
    first.shutdown().await;
    let second = run(server(RoomHistory::memory())).await;
    publish_n(&second.handle.rooms(FEED).unwrap(), "m", "after", 2).await;
    let mut back = Client::resume(second.addr, "m", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(
        (r["recovered"].clone(), r["lost"].clone()),
        (false.into(), "epoch".into())
    );
    assert_exactly(&back.offsets(), 1, 2);
}

#[tokio::test]
async fn the_sqlite_store_recovers_across_a_server_restart() {
    use endpoint::history::SqliteHistory;
    let dir = std::env::temp_dir().join(format!("endpoint-recovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("history.db");
    let _ = std::fs::remove_file(&db);
    let store = || RoomHistory::new(SqliteHistory::open(&db).expect("open db"));

    let mut first = run(server(store())).await;
    let (epoch, since) = see_then_drop(&first, "s", 5).await;
    publish_n(
        &first.handle.rooms(FEED).unwrap(),
        "s",
        "before-restart",
        60,
    )
    .await;
    first.shutdown().await;
    drop(first);

    let second = run(server(store())).await;
    publish_n(
        &second.handle.rooms(FEED).unwrap(),
        "s",
        "after-restart",
        40,
    )
    .await;
    let mut back = Client::resume(second.addr, "s", &epoch, since).await;
    let r = back.until_recovery().await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(r["epoch"], epoch.as_str(), "the epoch survives the restart");
    assert_exactly(&back.offsets(), 6, 105);
    assert_eq!(back.got[0].text, "before-restart-1");
    assert_eq!(back.got[99].text, "after-restart-40");
    let h = second.handle.stats().history.unwrap();
    assert_eq!(h.entries, 105, "{h:?}");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_sqlite_store_keeps_its_bounds() {
    use endpoint::history::SqliteHistory;
    let store = SqliteHistory::open(":memory:").unwrap();
    let t = Topic::new("/e", "r");
    let keep = Retention::new().max_count(10).max_bytes(30);
    for i in 1..=20u64 {
        let p = store
            .append(&t, &Message::text(format!("m{i:03}")), &keep)
            .await
            .unwrap();
        assert_eq!(p.offset, i);
    }
    // 30 bytes of 4-byte messages: the newest 7 (the count bound, 10, is looser).
    let s = store.read(&t, 0, 100, &keep).await.unwrap();
    let offsets: Vec<u64> = s.entries.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, (14..=20).collect::<Vec<_>>());
    assert_eq!((s.top, s.first), (20, 14));
    assert_eq!(s.entries[0].message, Message::text("m014"));
    let s = store.read(&t, 17, 2, &keep).await.unwrap();
    assert_eq!(
        s.entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
        [18, 19]
    );
    let b = store
        .append(&t, &Message::binary(vec![0u8, 255]), &keep)
        .await
        .unwrap();
    let s = store.read(&t, b.offset - 1, 1, &keep).await.unwrap();
    assert_eq!(s.entries[0].message, Message::binary(vec![0u8, 255]));
}
