//! Graceful shutdown under load, on loopback:
//!
//! * 200 sessions with traffic flowing (every client sending continuously), then
//!   `ServerHandle::shutdown()`: every client receives a close frame with 1001, every `on_close`
//!   runs exactly once (counted by session id), `run` returns within the drain deadline, and the
//!   listener is gone;
//! * a handler that never finishes does not keep `run` from returning once
//!   `shutdown_timeout` has passed, and the sessions around it still close with 1001.

mod raw;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use endpoint::{CloseReason, Endpoint, EndpointConfig, HookResult, Message, Server, Session};
use raw::*;
use tokio::net::TcpStream;

#[derive(Clone, Default)]
struct Seen {
    closes: Closes,
    opened: Arc<AtomicUsize>,
    /// Handlers that entered their endless wait.
    stuck: Arc<AtomicUsize>,
    messages: Arc<AtomicUsize>,
}

/// Echoes; the text `hang` makes the handler wait forever.
struct Busy {
    seen: Seen,
}

impl Endpoint for Busy {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/busy")
    }

    async fn on_open(&mut self, _: &Session, _: &endpoint::Handshake) -> HookResult {
        self.seen.opened.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }

    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        self.seen.messages.fetch_add(1, Ordering::Relaxed);
        if message.as_text() == Some("hang") {
            self.seen.stuck.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(Some(message))
    }

    async fn on_close(&mut self, session: &Session, reason: CloseReason) {
        self.seen
            .closes
            .record(session.id().as_u64(), reason.code().as_u16());
    }
}

async fn busy_server(shutdown_timeout: Duration) -> (Running, Seen) {
    let mut limits = test_limits();
    limits.shutdown_timeout = shutdown_timeout;
    limits.close_timeout = Duration::from_secs(1);
    let seen = Seen::default();
    let s = seen.clone();
    let server = Server::new()
        .limits(limits)
        .endpoint_with(move |_| Busy { seen: s.clone() });
    (start(server).await, seen)
}

/// A client that echoes as fast as it can until the server closes; returns the close it saw
/// and the number of echoes.
async fn chatter(mut ws: RawWs, id: usize) -> (CloseSeen, usize) {
    let mut echoes = 0;
    loop {
        ws.send(&[Frame::text(format!("client {id} message {echoes}"))])
            .await;
        // Read until our echo or the close.
        loop {
            match ws.read_frame().await {
                Some(f) if f.opcode == TEXT => {
                    echoes += 1;
                    break;
                }
                Some(f) if f.opcode == CLOSE => {
                    let seen = f.close_code().map_or(CloseSeen::Empty, CloseSeen::Code);
                    ws.finish(1001).await;
                    return (seen, echoes);
                }
                Some(_) => continue,
                None => return (CloseSeen::Eof, echoes),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_sends_1001_to_every_session_and_runs_every_on_close_once() {
    const SESSIONS: usize = 200;
    let drain_deadline = Duration::from_secs(3);
    let (mut server, seen) = busy_server(drain_deadline).await;
    let addr = server.addr;

    let mut clients = Vec::new();
    for id in 0..SESSIONS {
        let ws = RawWs::connect(addr, "/busy").await;
        clients.push(tokio::spawn(async move {
            within(
                Duration::from_secs(10),
                "client to see the close",
                chatter(ws, id),
            )
            .await
        }));
    }
    bounded("all sessions open", async {
        while seen.opened.load(Ordering::SeqCst) < SESSIONS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Traffic flows for a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = seen.messages.load(Ordering::Relaxed);
    assert!(before > SESSIONS, "traffic is flowing: {before} messages");
    assert_eq!(server.open_sessions(), SESSIONS as u64);

    let took = server
        .shutdown_within(drain_deadline + Duration::from_secs(2))
        .await;

    let mut codes = Vec::new();
    let mut echoes = 0;
    for c in clients {
        let (close, n) = c.await.expect("client task");
        codes.push(close);
        echoes += n;
    }
    let log = seen.closes.snapshot();
    println!(
        "shutdown of {SESSIONS} busy sessions: run returned after {took:?} (drain deadline \
         {drain_deadline:?}); {echoes} echoes in all; {} on_close calls",
        seen.closes.calls()
    );
    let not_1001: Vec<_> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != CloseSeen::Code(1001))
        .collect();
    assert!(not_1001.is_empty(), "clients without a 1001: {not_1001:?}");
    assert_eq!(log.len(), SESSIONS, "sessions whose on_close ran");
    for (id, calls) in &log {
        assert_eq!(calls, &[1001], "on_close of session {id}");
    }
    assert!(took < drain_deadline, "run took {took:?}");
    assert_eq!(server.handle.stats().open_sessions, 0);
    // The listener is closed.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_never_finishes_does_not_hold_up_shutdown() {
    let shutdown_timeout = Duration::from_secs(1);
    let (mut server, seen) = busy_server(shutdown_timeout).await;
    let addr = server.addr;

    let mut stuck = RawWs::connect(addr, "/busy").await;
    stuck.send(&[Frame::text("hang")]).await;
    let mut others = Vec::new();
    for id in 0..10 {
        let ws = RawWs::connect(addr, "/busy").await;
        others.push(tokio::spawn(async move {
            within(
                Duration::from_secs(10),
                "client to see the close",
                chatter(ws, id),
            )
            .await
        }));
    }
    bounded("the handler to hang", async {
        while seen.stuck.load(Ordering::SeqCst) == 0 || seen.opened.load(Ordering::SeqCst) < 11 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    let took = server.shutdown_within(Duration::from_secs(5)).await;
    println!("shutdown with a stuck handler: run returned after {took:?} (shutdown_timeout {shutdown_timeout:?})");
    assert!(
        took >= shutdown_timeout - Duration::from_millis(100)
            && took < shutdown_timeout + Duration::from_secs(1),
        "run returned after {took:?}"
    );
    for c in others {
        let (close, _) = c.await.expect("client task");
        assert_eq!(close, CloseSeen::Code(1001));
    }
    // The ten others closed normally; the stuck one never reached on_close.
    let log = seen.closes.wait_sessions(10, TIMEOUT).await;
    assert!(log.values().all(|c| c == &[1001]), "{log:?}");
    assert_eq!(log.len(), 10);
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_shutdown_deadline_a_stuck_session_is_dropped() {
    let shutdown_timeout = Duration::from_secs(1);
    let (mut server, seen) = busy_server(shutdown_timeout).await;
    let mut stuck = RawWs::connect(server.addr, "/busy").await;
    stuck.send(&[Frame::text("hang")]).await;
    bounded("the handler to hang", async {
        while seen.stuck.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    server.shutdown_within(Duration::from_secs(5)).await;
    // Within a second of run returning, the connection is gone (EOF or a close frame).
    let end = within(
        Duration::from_secs(2),
        "the stuck connection to end",
        stuck.read_close(),
    )
    .await;
    println!("stuck session after shutdown: {end:?}");
    assert_eq!(server.handle.stats().open_sessions, 0);
}
