//! The chat example (`examples/chat`) over real sockets: rooms, events, history that survives a
//! restart, refused input, nicknames, and the page served on the same port.

mod chat_support;

use std::time::Duration;

use chat_support::{app, http_get, ChatServer, Client, TempDir};
use serde_json::{json, Value};

/// Long enough for a wrongly routed event to show up on loopback.
const QUIET: Duration = Duration::from_millis(300);

fn names(presence: &Value) -> Vec<&str> {
    presence["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect()
}

fn assert_message(ev: &Value, room: &str, from: &str, text: &str) -> i64 {
    assert_eq!(ev["type"], "message", "{ev}");
    assert_eq!(ev["room"], room, "{ev}");
    assert_eq!(ev["from"], from, "{ev}");
    assert_eq!(ev["text"], text, "{ev}");
    let ts = ev["ts"].as_i64().expect("ts");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now - 60_000..=now + 1_000).contains(&ts),
        "ts {ts} is not ms since epoch"
    );
    assert!(ev["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{ev}");
    ev["offset"].as_i64().expect("offset")
}

#[tokio::test]
async fn two_clients_see_each_other_and_another_room_sees_nothing() {
    let server = ChatServer::start(":memory:".as_ref()).await;

    // alice joins: history (empty), her own join, presence [alice]
    let mut alice = Client::connect(server.addr, "rust", "?name=alice").await;
    let history = alice.expect("history").await;
    let epoch = history["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(
        history,
        json!({ "type": "history", "room": "rust", "you": "alice", "epoch": epoch,
                "offset": 0, "recovered": true, "messages": [] })
    );
    let join = alice.expect("join").await;
    assert_eq!(
        (&join["room"], &join["name"]),
        (&json!("rust"), &json!("alice"))
    );
    assert!(join["ts"].as_i64().is_some(), "{join}");
    assert_eq!(
        alice.expect("presence").await,
        json!({ "type": "presence", "room": "rust", "names": ["alice"] })
    );

    // carol is elsewhere
    let (mut carol, _) = Client::join(server.addr, "go", "carol").await;

    // bob joins: both see his join and a presence listing both
    let (mut bob, history) = Client::join(server.addr, "rust", "bob").await;
    assert_eq!(history["messages"], json!([]));
    assert_eq!(alice.expect("join").await["name"], "bob");
    assert_eq!(names(&alice.expect("presence").await), ["alice", "bob"]);

    // a JSON message reaches the whole room, sender included, with the same offset
    alice.say("hi bob").await;
    let a = assert_message(&alice.next().await, "rust", "alice", "hi bob");
    let b = assert_message(&bob.next().await, "rust", "alice", "hi bob");
    assert_eq!(a, b);

    // a bare text frame is a message too
    bob.send_raw("hello alice").await;
    let b2 = assert_message(&bob.next().await, "rust", "bob", "hello alice");
    assert_eq!(
        assert_message(&alice.next().await, "rust", "bob", "hello alice"),
        b2
    );
    assert_eq!((a, b2), (1, 2), "offsets count up per room");

    // bob leaves: alice sees leave and presence
    bob.close().await;
    let leave = alice.expect("leave").await;
    assert_eq!(
        (&leave["room"], &leave["name"]),
        (&json!("rust"), &json!("bob"))
    );
    assert_eq!(names(&alice.expect("presence").await), ["alice"]);

    // the other room saw none of it
    carol.expect_nothing(QUIET).await;
    carol.say("anyone?").await;
    assert_message(&carol.next().await, "go", "carol", "anyone?");
    alice.expect_nothing(QUIET).await;

    server.stop().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = TempDir::new("chat-history");
    let db = dir.path().join("chat.db");

    let server = ChatServer::start(&db).await;
    let (mut ada, _) = Client::join(server.addr, "lobby", "ada").await;
    let mut sent = Vec::new();
    for text in ["first", "second <b>&amp;</b>", "third ✓"] {
        ada.say(text).await;
        let ev = ada.expect("message").await;
        sent.push(ev);
    }
    let (mut other, _) = Client::join(server.addr, "elsewhere", "eve").await;
    other.say("not in lobby").await;
    other.expect("message").await;
    // Stopped while ada is still connected: shutdown closes her with 1001.
    server.stop().await;
    assert_eq!(ada.expect_close().await.0, 1001);

    let server = ChatServer::start(&db).await;
    let (_grace, history) = Client::join(server.addr, "lobby", "grace").await;
    let messages = history["messages"].as_array().expect("messages");
    let expected: Vec<Value> = sent
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("type");
            m
        })
        .collect();
    assert_eq!(messages, &expected, "history after restart, oldest first");
    server.stop().await;
}

#[tokio::test]
async fn history_is_the_last_50_oldest_first() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "busy", "ada").await;
    for n in 0..55 {
        ada.say(&format!("m{n}")).await;
        ada.expect("message").await;
    }
    let (_bob, history) = Client::join(server.addr, "busy", "bob").await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (5..55).map(|n| format!("m{n}")).collect();
    assert_eq!(texts, expected);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_session_stays_open() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "r", "ada").await;
    let (mut bob, _) = Client::join(server.addr, "r", "bob").await;
    ada.expect("join").await;
    ada.expect("presence").await;

    // Looks like JSON, is not: a decode error.
    ada.send_raw(r#"{"text": "unterminated"#).await;
    let err = ada.expect("error").await;
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("decode error") && msg.contains("invalid JSON"),
        "{msg}"
    );
    // JSON without a string `text`.
    ada.send_raw(r#"{"txt": "x"}"#).await;
    ada.expect("error").await;
    ada.send_raw(r#"{"text": 5}"#).await;
    ada.expect("error").await;
    // Empty and blank texts.
    ada.send_raw("   \n\t").await;
    assert!(ada.expect("error").await["message"]
        .as_str()
        .unwrap()
        .contains("empty"));
    ada.say("").await;
    ada.expect("error").await;
    // Over 4 KiB (bytes, not characters): 2049 two-byte characters = 4098 bytes.
    ada.say(&"é".repeat(2049)).await;
    assert!(ada.expect("error").await["message"]
        .as_str()
        .unwrap()
        .contains("too long"));
    ada.send_raw(&"a".repeat(app::MAX_TEXT_BYTES + 1)).await;
    ada.expect("error").await;

    // Nothing of that reached bob; exactly 4096 bytes is accepted, and the session is open.
    let limit = "é".repeat(app::MAX_TEXT_BYTES / 2);
    ada.say(&limit).await;
    assert_message(&ada.next().await, "r", "ada", &limit);
    assert_message(&bob.next().await, "r", "ada", &limit);
    bob.expect_nothing(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn nicknames_from_the_query_or_guest_names() {
    let server = ChatServer::start(":memory:".as_ref()).await;

    // trimmed
    let mut c = Client::connect(server.addr, "n", "?name=%20%20Ada%20Lovelace%20").await;
    assert_eq!(c.expect("history").await["you"], "Ada Lovelace");
    // cut to 32 characters (not bytes)
    let long = "ü".repeat(40);
    let mut d = Client::connect(server.addr, "n", &format!("?name={long}")).await;
    assert_eq!(d.expect("history").await["you"], "ü".repeat(32));
    // no name, an empty one, a blank one: distinct guest-N names
    let mut guests = Vec::new();
    for query in ["", "?name=", "?name=%20%20", "?other=1"] {
        let mut g = Client::connect(server.addr, "n", query).await;
        let you = g.expect("history").await["you"]
            .as_str()
            .unwrap()
            .to_owned();
        let n = you
            .strip_prefix("guest-")
            .unwrap_or_else(|| panic!("{you}"));
        assert!(n.parse::<u64>().is_ok(), "{you}");
        guests.push((you, g));
    }
    let mut unique: Vec<&str> = guests.iter().map(|(n, _)| n.as_str()).collect();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{unique:?}");

    // presence lists everyone in the room, sorted
    let (_e, _) = Client::join(server.addr, "n", "zed").await;
    c.expect("join").await; // d joined
    c.expect("presence").await;
    let presence = loop {
        let ev = c.next().await;
        if ev["type"] == "presence" && names(&ev).contains(&"zed") {
            break ev;
        }
    };
    let mut expected: Vec<String> = vec!["Ada Lovelace".into(), "ü".repeat(32), "zed".into()];
    expected.extend(guests.iter().map(|(n, _)| n.clone()));
    expected.sort();
    assert_eq!(names(&presence), expected);
    let _ = d.expect("join").await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_room_name_gets_an_error_and_1008() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    for room in ["bad%20room", "sl%2Fash", "%3Cb%3E", &"x".repeat(65)] {
        let mut c = Client::connect(server.addr, room, "?name=ada").await;
        let err = c.expect("error").await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("invalid room name"),
            "{room}: {err}"
        );
        assert_eq!(c.expect_close().await.0, 1008, "{room}");
    }
    // 64 characters of the allowed set is fine.
    let ok = format!("A-z_0.9{}", "r".repeat(57));
    let (_c, history) = Client::join(server.addr, &ok, "ada").await;
    assert_eq!(history["room"], ok.as_str());
    server.stop().await;
}

#[tokio::test]
async fn the_page_is_served_on_the_same_port() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let header = |h: &[(String, String)], name: &str| {
        h.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };

    let (status, h, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
    assert!(body.contains(r#"<script src="/chat.js""#), "{body}");
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no CDN"
    );
    // a shared room link is the same page
    let (status, _, _) = http_get(server.addr, "/?room=rust&name=ada").await;
    assert_eq!(status, 200);

    for (path, ty) in [
        ("/chat.js", "text/javascript"),
        ("/chat.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, h, body) = http_get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(header(&h, "content-type").starts_with(ty), "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    let (_, _, js) = http_get(server.addr, "/chat.js").await;
    assert!(
        !js.contains("innerHTML"),
        "the page must not build HTML from data"
    );

    assert_eq!(http_get(server.addr, "/nope").await.0, 404);
    // the endpoint's path without an upgrade
    assert_eq!(http_get(server.addr, "/chat/rust").await.0, 426);
    server.stop().await;
}

#[tokio::test]
async fn binary_frames_and_oversized_frames_close_the_connection() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut ada, _) = Client::join(server.addr, "r", "ada").await;
    ada.send_binary(vec![1, 2, 3]).await;
    assert_eq!(ada.expect_close().await.0, 1003);

    let (mut bob, _) = Client::join(server.addr, "r", "bob").await;
    bob.send_raw(&"x".repeat(65 * 1024)).await;
    assert_eq!(bob.expect_close().await.0, 1009);
    server.stop().await;
}
