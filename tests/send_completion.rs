//! Send completion and the send timeout, against clients that stop reading (raw TCP: the
//! kernel's buffers fill and the server's writes stop).
//!
//! - `Session::send_flushed` resolves once the message is written to the socket, not when it
//!   is queued (Java's `Future<Void>` / `SendHandler`).
//! - `Session::send` waits for room at most the send timeout (`Limits::send_timeout`, 20 s by
//!   default, Tomcat's `BLOCKING_SEND_TIMEOUT`; `Session::set_send_timeout` per session); past
//!   it the send fails with `SendError::Timeout` and the session is closed with 1008. A handler
//!   stuck in such a send reads nothing, so it would never see the peer's FIN (CLOSE-WAIT
//!   forever): the timeout bounds that too.

mod common;

use std::time::{Duration, Instant};

use common::*;
use endpoint::prelude::*;
use endpoint::{Limits, SendError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

type Sessions = mpsc::UnboundedSender<Session>;

#[derive(Default)]
struct Sink {
    log: Option<Recorder>,
}

#[server_endpoint("/sink")]
impl Sink {
    #[on_open]
    fn open(&mut self, session: &Session, sessions: State<Sessions>, log: State<Recorder>) {
        if let Some(ms) = session.query_param("send_timeout_ms") {
            let ms: u64 = ms.parse().expect("send_timeout_ms");
            session.set_send_timeout(Some(Duration::from_millis(ms)));
        }
        self.log = Some((*log).clone());
        let _ = sessions.send(session.clone());
    }

    /// `flood`: sends 64 KiB messages until a send fails, and records why.
    #[on_message]
    async fn text(&mut self, session: &Session, text: String) -> Option<Bytes> {
        if text == "big" {
            // A returned reply waits for queue room like `send`, bounded the same way.
            return Some(Bytes::from(vec![9u8; 64 << 10]));
        }
        if text == "flood" {
            let chunk = Bytes::from(vec![7u8; 64 << 10]);
            let started = Instant::now();
            loop {
                if let Err(e) = session.send(chunk.clone()).await {
                    let log = self.log.as_ref().expect("opened");
                    log.push(format!("send_err:{e:?}:{}", started.elapsed().as_millis()));
                    break;
                }
            }
        }
        None
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        if let Some(log) = &self.log {
            log.push(format!("error:{error}"));
        }
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        if let Some(log) = &self.log {
            log.push(format!("close:{}", reason.code().as_u16()));
        }
    }
}

async fn server(limits: Limits) -> (TestServer, Recorder, mpsc::UnboundedReceiver<Session>) {
    let (tx, rx) = mpsc::unbounded_channel::<Session>();
    let log = Recorder::new();
    let server = start(
        Server::new()
            .endpoint::<Sink>()
            .state(tx)
            .state(log.clone())
            .limits(limits),
    )
    .await;
    (server, log, rx)
}

fn limits() -> Limits {
    let mut limits = fast_limits();
    limits.ping_interval = None;
    limits
}

/// The most the kernel can hold between the server's socket and the client's (both sides'
/// largest buffers on this machine), so that "written" can be told from "queued".
fn kernel_slack() -> usize {
    let max = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().last().and_then(|v| v.parse().ok()))
            .unwrap_or(8 << 20)
    };
    max("/proc/sys/net/ipv4/tcp_wmem") + max("/proc/sys/net/ipv4/tcp_rmem")
}

#[tokio::test]
async fn send_flushed_resolves_once_the_message_is_written_to_the_socket() {
    let (server, _log, mut rx) = server(limits()).await;
    let mut client = RawWs::connect(server.addr, "/sink").await;
    let session = bounded("session", rx.recv()).await.expect("session");
    session.set_send_timeout(Some(Duration::from_secs(30)));

    let slack = kernel_slack();
    let total = slack + (16 << 20);
    let payload = Bytes::from(vec![1u8; total]);
    let flushed = tokio::spawn({
        let session = session.clone();
        async move { session.send_flushed(payload).await }
    });
    // A plain send of a small message is queued at once, behind it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !flushed.is_finished(),
        "send_flushed resolved while the client read nothing and {total} bytes cannot fit in \
         the kernel's buffers ({slack})"
    );

    // Read; note how much had arrived when send_flushed resolved.
    let mut read = 0usize;
    let mut when_flushed = None;
    let mut buf = vec![0u8; 256 << 10];
    let deadline = Instant::now() + Duration::from_secs(20);
    while read < total {
        assert!(
            Instant::now() < deadline,
            "read only {read} of {total} bytes"
        );
        let n = within(
            Duration::from_secs(10),
            "client read",
            client.stream.read(&mut buf),
        )
        .await
        .expect("read");
        assert!(n > 0, "connection ended after {read} bytes");
        read += n;
        if when_flushed.is_none() && flushed.is_finished() {
            when_flushed = Some(read);
        }
    }
    let result = within(Duration::from_secs(10), "send_flushed", flushed)
        .await
        .expect("task");
    assert_eq!(result, Ok(()));
    if let Some(at) = when_flushed {
        assert!(
            at + slack >= total,
            "send_flushed resolved when the client had {at} of {total} bytes: more than the \
             kernel can hold ({slack}) was still unwritten"
        );
    }
    // And a quick one on an idle connection resolves once written.
    within(
        Duration::from_secs(5),
        "small send_flushed",
        session.send_flushed("small"),
    )
    .await
    .expect("small");
    server.shutdown().await;
}

#[tokio::test]
async fn a_send_to_a_peer_that_stopped_reading_times_out_closes_1008_and_sees_the_fin() {
    let (server, log, mut rx) = server(limits()).await;
    let mut client = RawWs::connect(server.addr, "/sink?send_timeout_ms=300").await;
    let session = bounded("session", rx.recv()).await.expect("session");
    assert_eq!(session.send_timeout(), Some(Duration::from_millis(300)));
    let started = Instant::now();
    client.write(&client_frame(0x1, b"flood")).await;
    // The handler is now stuck in `send`; the client stops reading and goes away (FIN).
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.stream.shutdown().await.expect("shutdown");

    let events = log.wait_count("close:", 1).await;
    let elapsed = started.elapsed();
    let send_err = events
        .iter()
        .find(|e| e.starts_with("send_err:"))
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert!(
        send_err.starts_with("send_err:Timeout(300ms)"),
        "{send_err}"
    );
    let waited: u128 = send_err.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        waited >= 300,
        "timed out after {waited} ms, before the send timeout"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:a send waited more than 300ms")),
        "{events:#?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("close:1008"),
        "{events:#?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "on_close after {elapsed:?}"
    );
    assert!(server_stats_slow(&server).await >= 1);
    server.shutdown().await;
}

async fn server_stats_slow(server: &TestServer) -> u64 {
    server.handle.stats().slow_consumers
}

#[tokio::test]
async fn the_send_timeout_defaults_to_20_s_and_is_set_per_session() {
    assert_eq!(
        Limits::default().send_timeout,
        Some(Duration::from_secs(20))
    );
    let (server, _log, mut rx) = server(limits()).await;
    let mut ws = server.connect("/sink").await;
    let session = bounded("session", rx.recv()).await.expect("session");
    assert_eq!(session.send_timeout(), Some(Duration::from_secs(20)));
    session.set_send_timeout(None);
    assert_eq!(session.send_timeout(), None);
    session.set_send_timeout(Some(Duration::from_secs(2)));
    assert_eq!(session.send_timeout(), Some(Duration::from_secs(2)));
    // Sends to a reading peer are unaffected.
    session.send_flushed("hello").await.expect("flushed");
    assert_eq!(recv_text(&mut ws).await, "hello");
    assert_eq!(session.close(CloseReason::normal()), Ok(()),);
    assert!(matches!(
        session.send_flushed("late").await,
        Err(SendError::Closed)
    ));
    server.shutdown().await;
}

/// The connection's own replies (a handler's return value) wait for room like `send`, within
/// the same bound: a client that pipelines requests and reads none of the answers is closed.
#[tokio::test]
async fn a_reply_waiting_for_room_is_bounded_by_the_send_timeout_too() {
    let (server, log, mut rx) = server(limits()).await;
    let mut client = RawWs::connect(server.addr, "/sink?send_timeout_ms=300").await;
    let _session = bounded("session", rx.recv()).await.expect("session");
    // 1,000 requests of 64 KiB answers each (62.5 MiB): more than the queue and the kernel hold.
    let mut requests = Vec::new();
    for _ in 0..1000 {
        requests.extend_from_slice(&client_frame(0x1, b"big"));
    }
    client.write(&requests).await;
    client.stream.shutdown().await.expect("shutdown");
    let events = log.wait_count("close:", 1).await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error:a send waited more than 300ms")),
        "{events:#?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("close:1008"),
        "{events:#?}"
    );
    server.shutdown().await;
}
