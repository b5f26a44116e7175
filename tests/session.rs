//! The `Session` API from outside the handlers (a clone captured in `on_open`) and from inside:
//! id, query, URI, headers, path params, properties, sending from other tasks, `try_send`,
//! closing, `is_open` and send errors after close, and `open_sessions()`.

mod common;

use std::time::Duration;

use common::*;
use endpoint::prelude::*;
use endpoint::{Limits, SendError};
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq)]
struct User(String);

#[derive(Clone, Debug, PartialEq)]
struct Visits(u32);

/// Hands a clone of every session to the test through a channel.
struct Api {
    sessions: mpsc::UnboundedSender<Session>,
    rec: Recorder,
}

#[server_endpoint("/api/{room}")]
impl Api {
    #[on_open]
    fn open(&mut self, session: &Session, handshake: &Handshake) {
        let who = handshake.query_param("name").unwrap_or_default();
        session.properties().insert(User(who));
        self.rec.push(format!("open:{}", session.id()));
        self.sessions.send(session.clone()).unwrap();
    }

    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> String {
        match text.as_str() {
            "props" => {
                let user = session.properties().get::<User>().map(|u| u.0);
                let visits = session.properties().get::<Visits>().map(|v| v.0);
                format!("{user:?} {visits:?}")
            }
            _ => text,
        }
    }

    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        // Inside on_close the session is already closed for sending.
        let sent = session.try_send("too late");
        self.rec.push(format!(
            "close:{}:{}:open={}:try_send={sent:?}",
            session.id(),
            reason.code().as_u16(),
            session.is_open()
        ));
    }
}

async fn api_server(limits: Limits) -> (TestServer, Recorder, mpsc::UnboundedReceiver<Session>) {
    let rec = Recorder::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let r = rec.clone();
    let server = Server::new().limits(limits).endpoint_with(move |_| Api {
        sessions: tx.clone(),
        rec: r.clone(),
    });
    (start(server).await, rec, rx)
}

async fn next_session(rx: &mut mpsc::UnboundedReceiver<Session>) -> Session {
    bounded("session from on_open", rx.recv())
        .await
        .expect("session")
}

#[tokio::test]
async fn request_data_is_available_on_the_session() {
    let (server, rec, mut rx) = api_server(fast_limits()).await;
    let mut ws = connect_with_headers(
        server.addr,
        "/api/rust%20lang?name=ada%20l&x=1&name=bob",
        &[("x-test", "yes")],
    )
    .await;
    let s = next_session(&mut rx).await;

    assert_eq!(
        rec.events(),
        [format!("open:{}", s.id())],
        "the same session as in on_open"
    );
    assert_eq!(s.query(), Some("name=ada%20l&x=1&name=bob"));
    assert_eq!(
        s.query_param("name").as_deref(),
        Some("ada l"),
        "first value, decoded"
    );
    assert_eq!(s.query_param("x").as_deref(), Some("1"));
    assert_eq!(s.query_param("missing"), None);
    assert_eq!(s.request_uri().path(), "/api/rust%20lang");
    assert_eq!(s.request_uri().query(), s.query());
    assert_eq!(s.path_param("room"), Some("rust lang"));
    assert_eq!(s.path_param("nope"), None);
    assert_eq!(
        s.headers().get("x-test").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    // What the handshake consumed is not kept; the rest is.
    for consumed in [
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
    ] {
        assert!(s.headers().get(consumed).is_none(), "{consumed} kept");
    }
    assert!(s.headers().get("host").is_some());
    assert_eq!(s.endpoint_path(), "/api/{room}");
    assert_eq!(s.subprotocol(), None);
    assert!(s.remote_addr().unwrap().ip().is_loopback());
    assert!(s.is_open());

    // Another connection: another id.
    let _ws2 = server.connect("/api/x").await;
    let s2 = next_session(&mut rx).await;
    assert_ne!(s.id(), s2.id());
    drop(ws.close(None).await);
}

#[tokio::test]
async fn properties_are_shared_between_handlers_and_other_tasks() {
    let (server, _rec, mut rx) = api_server(fast_limits()).await;
    let mut ws = server.connect("/api/r?name=ada").await;
    let s = next_session(&mut rx).await;
    assert_eq!(
        s.properties().get::<User>(),
        Some(User("ada".into())),
        "set in on_open"
    );
    assert_eq!(roundtrip(&mut ws, "props").await, r#"Some("ada") None"#);
    assert_eq!(s.properties().insert(Visits(3)), None);
    assert_eq!(
        s.properties().insert(Visits(5)),
        Some(Visits(3)),
        "insert returns the old value"
    );
    assert_eq!(roundtrip(&mut ws, "props").await, r#"Some("ada") Some(5)"#);
    assert!(s.properties().contains::<Visits>());
    assert_eq!(s.properties().remove::<Visits>(), Some(Visits(5)));
    assert_eq!(roundtrip(&mut ws, "props").await, r#"Some("ada") None"#);
}

#[tokio::test]
async fn sends_from_another_task_and_errors_after_close() {
    let (server, rec, mut rx) = api_server(fast_limits()).await;
    let mut ws = server.connect("/api/r").await;
    let s = next_session(&mut rx).await;

    let sender = s.clone();
    bounded(
        "send from a task",
        tokio::spawn(async move { sender.send("from a task").await }),
    )
    .await
    .unwrap()
    .expect("send");
    assert_eq!(recv_text(&mut ws).await, "from a task");
    s.try_send(b"bin".to_vec()).expect("try_send");
    assert_eq!(recv_data(&mut ws).await, WsMessage::binary(b"bin".to_vec()));

    send_close(&mut ws, 1000, "bye").await;
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert_eq!(
        events[1],
        format!("close:{}:1000:open=false:try_send=Err(Closed)", s.id()),
        "{events:#?}"
    );
    assert!(!s.is_open());
    assert_eq!(
        bounded("send after close", s.send("late")).await,
        Err(SendError::Closed)
    );
    assert_eq!(s.try_send("late"), Err(SendError::Closed));
    assert_eq!(s.ping(&b"late"[..]), Err(SendError::Closed));
    assert!(s.open_sessions().is_empty());
}

#[tokio::test]
async fn close_from_another_task_sends_the_code_and_runs_on_close() {
    let (server, rec, mut rx) = api_server(fast_limits()).await;
    let mut ws = server.connect("/api/r").await;
    let s = next_session(&mut rx).await;
    s.try_send("last words").unwrap();
    s.close(CloseReason::new(4001, "kicked")).unwrap();
    assert!(!s.is_open(), "closing: no longer open");
    assert_eq!(s.try_send("after close()"), Err(SendError::Closed));
    assert_eq!(recv_text(&mut ws).await, "last words");
    assert_eq!(recv_close(&mut ws).await, (4001, "kicked".to_owned()));
    drain_until_end(&mut ws).await;
    let events = rec.wait_count("close:", 1).await;
    assert!(
        events[1].starts_with(&format!("close:{}:4001:", s.id())),
        "{events:#?}"
    );
    // Closing again is harmless.
    s.close(CloseReason::normal()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rec.count("close:"), 1);
}

#[tokio::test]
async fn closing_with_a_code_that_may_not_be_sent_is_refused_at_the_call() {
    let (server, _rec, mut rx) = api_server(fast_limits()).await;
    let mut ws = server.connect("/api/r").await;
    let s = next_session(&mut rx).await;
    // 1005, 1006 and 1015 only report a close; 1004, 999, 2999 and 5000 are no codes at all.
    for code in [1005, 1006, 1015, 1004, 999, 2999, 5000] {
        let refused = s.close(CloseReason::new(code, "nope"));
        assert_eq!(refused, Err(SendError::InvalidCloseCode(code)), "{code}");
        let text = refused.unwrap_err().to_string();
        assert!(text.contains(&code.to_string()), "{text}");
        assert!(text.contains("may not be sent"), "{text}");
    }
    // Nothing happened: the session is open and still sends.
    assert!(s.is_open());
    s.try_send("still open").unwrap();
    assert_eq!(recv_text(&mut ws).await, "still open");
    // A sendable code goes on the wire as given.
    s.close(CloseReason::new(CloseCode::TRY_AGAIN_LATER, "later"))
        .unwrap();
    assert_eq!(recv_close(&mut ws).await, (1013, "later".to_owned()));
}

/// Answers with the results of two `try_send`s made in one synchronous step, so the connection
/// task cannot drain the queue in between. (The returned report waits for room like `send`.)
#[derive(Default)]
struct Filler;

#[server_endpoint("/fill")]
impl Filler {
    #[on_message]
    fn text(&mut self, session: &Session, _text: String) -> String {
        let first = session.try_send("0123456789");
        let second = session.try_send("0123456789");
        format!("{first:?} {second:?} {}", session.queued_bytes())
    }
}

#[tokio::test]
async fn try_send_reports_a_full_queue_without_waiting() {
    let mut limits = fast_limits();
    limits.outbound_queue_bytes = 16;
    let server = start(Server::new().limits(limits).endpoint::<Filler>()).await;
    let mut ws = server.connect("/fill").await;
    for _ in 0..2 {
        send_text(&mut ws, "go").await;
        assert_eq!(recv_text(&mut ws).await, "0123456789");
        assert_eq!(recv_text(&mut ws).await, "Ok(()) Err(Full) 10");
    }

    let mut limits = fast_limits();
    limits.outbound_queue_bytes = 20;
    let server = start(Server::new().limits(limits).endpoint::<Filler>()).await;
    let mut ws = server.connect("/fill").await;
    send_text(&mut ws, "go").await;
    assert_eq!(recv_text(&mut ws).await, "0123456789");
    assert_eq!(recv_text(&mut ws).await, "0123456789");
    assert_eq!(recv_text(&mut ws).await, "Ok(()) Ok(()) 20");
}

// ---------------------------------------------------------------------------------------------
// open_sessions

struct Count {
    rec: Recorder,
}

#[server_endpoint("/count")]
impl Count {
    #[on_message]
    fn text(&mut self, session: &Session, _text: &str) -> String {
        let all = session.open_sessions();
        assert!(
            all.iter().any(|s| s.id() == session.id()),
            "includes itself"
        );
        assert!(
            all.iter().all(|s| s.endpoint_path() == "/count"),
            "same endpoint only"
        );
        all.len().to_string()
    }

    #[on_close]
    fn close(&mut self, session: &Session) {
        self.rec
            .push(format!("close:{}", session.open_sessions().len()));
    }
}

#[derive(Default)]
struct Elsewhere;

#[server_endpoint("/elsewhere")]
impl Elsewhere {
    #[on_message]
    fn text(&mut self, session: &Session, _text: &str) -> String {
        session.open_sessions().len().to_string()
    }
}

#[tokio::test]
async fn open_sessions_grows_and_shrinks() {
    let rec = Recorder::new();
    let r = rec.clone();
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(move |_| Count { rec: r.clone() })
            .endpoint::<Elsewhere>(),
    )
    .await;
    let mut other = server.connect("/elsewhere").await;
    let mut a = server.connect("/count").await;
    assert_eq!(roundtrip(&mut a, "n").await, "1");
    let mut b = server.connect("/count").await;
    let mut c = server.connect("/count").await;
    assert_eq!(roundtrip(&mut a, "n").await, "3");
    assert_eq!(roundtrip(&mut c, "n").await, "3");
    assert_eq!(roundtrip(&mut other, "n").await, "1", "per endpoint");

    send_close(&mut b, 1000, "").await;
    drain_until_end(&mut b).await;
    rec.wait_count("close:", 1).await;
    assert_eq!(roundtrip(&mut a, "n").await, "2");

    // An abnormal end leaves the registry too.
    drop(c);
    rec.wait_count("close:", 2).await;
    assert_eq!(roundtrip(&mut a, "n").await, "1");
    assert_eq!(
        rec.events(),
        ["close:2", "close:1"],
        "on_close no longer counts itself"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrent senders

#[derive(Default)]
struct Flood;

const TASKS: usize = 100;
const PER_TASK: usize = 50;

#[server_endpoint("/flood")]
impl Flood {
    #[on_message]
    fn text(&mut self, session: &Session, _text: String) {
        for t in 0..TASKS {
            let session = session.clone();
            tokio::spawn(async move {
                for n in 0..PER_TASK {
                    session.send(format!("{t}:{n}")).await.expect("send");
                }
            });
        }
    }
}

/// Reads `TASKS * PER_TASK` messages and checks each sender's messages arrive complete and in
/// order.
async fn check_flood(ws: &mut Ws) {
    let mut next = vec![0usize; TASKS];
    for _ in 0..TASKS * PER_TASK {
        let text = recv_text(ws).await;
        let (t, n) = text.split_once(':').expect("t:n");
        let (t, n): (usize, usize) = (t.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, next[t], "sender {t} out of order");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_TASK), "{next:?}");
    let extra = tokio::time::timeout(Duration::from_millis(100), recv_data(ws)).await;
    assert!(
        extra.is_err(),
        "no message beyond the expected ones: {extra:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_tasks_sending_into_one_session_arrive_complete_and_ordered() {
    let server = start(Server::new().limits(fast_limits()).endpoint::<Flood>()).await;
    let mut ws = server.connect("/flood").await;
    send_text(&mut ws, "go").await;
    check_flood(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_through_a_tiny_queue_wait_and_stay_ordered() {
    let mut limits = fast_limits();
    limits.outbound_queue_bytes = 64; // senders mostly wait for room
    let (server, _rec, mut rx) = api_server(limits).await;
    let mut ws = server.connect("/api/flood").await;
    let s = next_session(&mut rx).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for n in 0..PER_TASK {
                    s.send(format!("{t}:{n}")).await.expect("send");
                }
            })
        })
        .collect();
    check_flood(&mut ws).await;
    for t in tasks {
        bounded("sender task", t).await.unwrap();
    }
}
