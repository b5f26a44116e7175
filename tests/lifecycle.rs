//! Lifecycle order on every ending path: `on_open` completes before any message, handlers of a
//! session run strictly one at a time, and `on_close` runs exactly once, last, with the right
//! code — after a peer close frame, a protocol error, a dropped TCP connection, a handler panic,
//! a server-initiated `Session::close`, and a server shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use endpoint::prelude::*;

/// Counts hooks running at once for one endpoint type (all sessions of a test run one at a time
/// here, since each test opens one session).
#[derive(Default)]
struct Probe {
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// Held while a hook runs; released on return and on unwind.
struct Busy(Arc<Probe>);

impl Busy {
    fn enter(probe: &Arc<Probe>) -> Busy {
        let now = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max_active.fetch_max(now, Ordering::SeqCst);
        Busy(probe.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Life {
    rec: Recorder,
    probe: Arc<Probe>,
}

#[server_endpoint("/life")]
impl Life {
    #[on_open]
    async fn open(&mut self) {
        let _busy = Busy::enter(&self.probe);
        self.rec.push("open");
        // Messages the client sends meanwhile must wait for on_open to finish.
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.rec.push("open-done");
    }

    #[on_message]
    async fn text(&mut self, session: &Session, text: String) -> String {
        let _busy = Busy::enter(&self.probe);
        self.rec.push(format!("msg:{text}"));
        match text.as_str() {
            "panic" => panic!("boom in handler"),
            "close" => {
                session.send("closing").await.expect("send before close");
                session.close(CloseReason::new(4000, "done")).unwrap();
            }
            "slow" => tokio::time::sleep(Duration::from_millis(150)).await,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        self.rec.push(format!("done:{text}"));
        format!("echo:{text}")
    }

    #[on_error]
    async fn error(&mut self, error: &EndpointError) {
        let _busy = Busy::enter(&self.probe);
        self.rec.push(format!("error:{error}"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    #[on_close]
    async fn close(&mut self, session: &Session, reason: CloseReason) {
        let _busy = Busy::enter(&self.probe);
        assert!(!session.is_open(), "session must be closed in on_close");
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.rec.push(format!(
            "close:{}:{}",
            reason.code().as_u16(),
            reason.reason()
        ));
    }
}

async fn life_server() -> (TestServer, Recorder, Arc<Probe>) {
    let rec = Recorder::new();
    let probe = Arc::new(Probe::default());
    let (r, p) = (rec.clone(), probe.clone());
    let server = Server::new()
        .limits(fast_limits())
        .endpoint_with(move |_| Life {
            rec: r.clone(),
            probe: p.clone(),
        });
    (start(server).await, rec, probe)
}

/// Shuts the server down (which would expose a second `on_close`), then checks the invariants
/// and returns the events.
async fn finish(server: TestServer, rec: &Recorder, probe: &Probe) -> Vec<String> {
    server.shutdown().await;
    let events = rec.events();
    assert_lifecycle(&events);
    assert_eq!(
        probe.max_active.load(Ordering::SeqCst),
        1,
        "hooks overlapped: {events:#?}"
    );
    assert_eq!(
        probe.active.load(Ordering::SeqCst),
        0,
        "a hook is still running"
    );
    events
}

#[tokio::test]
async fn peer_close_frame_ends_with_its_code_after_every_message() {
    let (server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    // Sent at once, while on_open still sleeps: they must be handled after it, in order, one
    // at a time.
    for m in ["a", "b", "c"] {
        send_text(&mut ws, m).await;
    }
    for m in ["a", "b", "c"] {
        assert_eq!(recv_text(&mut ws).await, format!("echo:{m}"));
    }
    send_close(&mut ws, 1000, "bye").await;
    assert_eq!(
        recv_close(&mut ws).await.0,
        1000,
        "the server answers our close frame"
    );
    drain_until_end(&mut ws).await;
    rec.wait_count("close:", 1).await;

    let events = finish(server, &rec, &probe).await;
    assert_eq!(
        events,
        [
            "open",
            "open-done",
            "msg:a",
            "done:a",
            "msg:b",
            "done:b",
            "msg:c",
            "done:c",
            "close:1000:bye"
        ]
    );
}

#[tokio::test]
async fn protocol_error_closes_1002_and_reaches_on_error_before_on_close() {
    let (server, rec, probe) = life_server().await;
    let mut raw = RawWs::connect(server.addr, "/life").await;
    raw.write(&client_frame(0x1, b"a")).await;
    let reply = raw.read_frame().await.expect("echo");
    assert_eq!(
        (reply.opcode, reply.payload.as_slice()),
        (0x1, &b"echo:a"[..])
    );

    // RSV1 set without a negotiated extension: a protocol error.
    raw.write(&encode_frame(true, 0b100, 0x1, b"x", Some([1, 2, 3, 4])))
        .await;
    assert_eq!(raw.read_close().await.0, 1002);
    raw.write(&client_close(1002)).await;
    raw.expect_eof().await;
    rec.wait_count("close:", 1).await;

    let events = finish(server, &rec, &probe).await;
    assert_eq!(events[..4], ["open", "open-done", "msg:a", "done:a"]);
    assert!(events[4].starts_with("error:protocol error"), "{events:#?}");
    assert!(events[5].starts_with("close:1002:"), "{events:#?}");
    assert_eq!(events.len(), 6, "{events:#?}");
}

#[tokio::test]
async fn dropped_tcp_reports_1006_after_the_running_handler() {
    let (server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    assert_eq!(roundtrip(&mut ws, "a").await, "echo:a");
    // The handler sleeps while the peer vanishes without a close frame.
    send_text(&mut ws, "slow").await;
    drop(ws);
    rec.wait_count("close:", 1).await;

    let events = finish(server, &rec, &probe).await;
    assert_eq!(
        events[..6],
        [
            "open",
            "open-done",
            "msg:a",
            "done:a",
            "msg:slow",
            "done:slow"
        ]
    );
    assert!(
        events.last().unwrap().starts_with("close:1006"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn handler_panic_closes_1011_after_on_error() {
    let (server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    assert_eq!(roundtrip(&mut ws, "a").await, "echo:a");
    send_text(&mut ws, "panic").await;
    assert_eq!(recv_close(&mut ws).await.0, 1011);
    drain_until_end(&mut ws).await;
    rec.wait_count("close:", 1).await;

    let events = finish(server, &rec, &probe).await;
    assert_eq!(
        events[..5],
        ["open", "open-done", "msg:a", "done:a", "msg:panic"]
    );
    assert!(
        events[5].starts_with("error:") && events[5].contains("boom in handler"),
        "{events:#?}"
    );
    assert!(events[6].starts_with("close:1011"), "{events:#?}");
    assert_eq!(events.len(), 7, "{events:#?}");
}

#[tokio::test]
async fn session_close_sends_queued_messages_then_the_close_frame() {
    let (server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    send_text(&mut ws, "close").await;
    assert_eq!(
        recv_text(&mut ws).await,
        "closing",
        "messages queued before close() go first"
    );
    assert_eq!(recv_close(&mut ws).await, (4000, "done".to_owned()));
    drain_until_end(&mut ws).await;
    rec.wait_count("close:", 1).await;

    let events = finish(server, &rec, &probe).await;
    assert_eq!(
        events,
        [
            "open",
            "open-done",
            "msg:close",
            "done:close",
            "close:4000:done"
        ]
    );
}

#[tokio::test]
async fn server_shutdown_closes_1001_and_on_close_runs_before_run_until_returns() {
    let (mut server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    assert_eq!(roundtrip(&mut ws, "a").await, "echo:a");
    server.begin_shutdown();
    assert_eq!(recv_close(&mut ws).await.0, 1001);
    drain_until_end(&mut ws).await;
    server.wait().await;
    // No waiting here: run_until has returned, so on_close must already have run.
    let events = rec.events();
    assert_eq!(
        events,
        [
            "open",
            "open-done",
            "msg:a",
            "done:a",
            "close:1001:server shutting down"
        ]
    );
    finish(server, &rec, &probe).await;
}

#[tokio::test]
async fn shutdown_during_a_handler_lets_it_finish_then_closes_1001() {
    let (mut server, rec, probe) = life_server().await;
    let mut ws = server.connect("/life").await;
    assert_eq!(roundtrip(&mut ws, "a").await, "echo:a");
    send_text(&mut ws, "slow").await;
    rec.wait_count("msg:slow", 1).await;
    server.begin_shutdown();
    // The reply to "slow" may or may not make it (the session is closing); the close is 1001.
    let code = loop {
        match recv_data(&mut ws).await {
            WsMessage::Text(t) => assert_eq!(t.as_str(), "echo:slow"),
            WsMessage::Close(Some(f)) => break u16::from(f.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1001);
    drain_until_end(&mut ws).await;
    server.wait().await;
    let events = rec.events();
    assert_eq!(events[4..6], ["msg:slow", "done:slow"], "{events:#?}");
    assert!(events[6].starts_with("close:1001"), "{events:#?}");
    finish(server, &rec, &probe).await;
}

#[tokio::test]
async fn shutdown_with_a_silent_peer_still_runs_on_close_before_returning() {
    let (mut server, rec, probe) = life_server().await;
    // A raw client that never answers the close frame: the server gives up after close_timeout.
    let mut raw = RawWs::connect(server.addr, "/life").await;
    raw.write(&client_frame(0x1, b"a")).await;
    assert_eq!(raw.read_frame().await.unwrap().payload, b"echo:a");
    server.begin_shutdown();
    server.wait().await;
    let events = rec.events();
    assert!(
        events.last().unwrap().starts_with("close:1001"),
        "{events:#?}"
    );
    assert_eq!(raw.read_close().await.0, 1001);
    finish(server, &rec, &probe).await;
}
