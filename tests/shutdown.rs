//! Graceful shutdown: `run_until` stops accepting, sends 1001 to every session of every
//! endpoint, and returns only after every `on_close` ran — bounded by the close and shutdown
//! timeouts when peers or handlers do not cooperate.

mod common;

use std::time::{Duration, Instant};

use common::*;
use endpoint::prelude::*;

/// Server-wide state, injected with `State<T>`.
#[derive(Default)]
struct Closes {
    rec: Recorder,
}

#[derive(Default)]
struct Alpha;

#[server_endpoint("/alpha")]
impl Alpha {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_close]
    async fn close(&mut self, closes: State<Closes>, reason: CloseReason) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        closes
            .rec
            .push(format!("close:alpha:{}", reason.code().as_u16()));
    }
}

#[derive(Default)]
struct Beta;

#[server_endpoint("/beta/{n}")]
impl Beta {
    #[on_message]
    fn text(&mut self, #[path_param] n: u8, _text: String) -> String {
        n.to_string()
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason, closes: State<Closes>) {
        closes
            .rec
            .push(format!("close:beta:{}", reason.code().as_u16()));
    }
}

fn server() -> Server {
    Server::new()
        .limits(fast_limits())
        .state(Closes::default())
        .endpoint::<Alpha>()
        .endpoint::<Beta>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_client_gets_1001_and_every_on_close_runs_before_run_until_returns() {
    let server = server();
    let closes = server.get_state::<Closes>().unwrap();
    let mut server = start(server).await;

    let mut clients = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 {
            "/alpha".to_owned()
        } else {
            format!("/beta/{i}")
        };
        let mut ws = server.connect(&path).await;
        // Make sure the session is open (on_open done) before shutting down.
        roundtrip(&mut ws, "hi").await;
        clients.push(ws);
    }

    server.begin_shutdown();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let code = recv_close(&mut ws).await.0;
                drain_until_end(&mut ws).await;
                code
            })
        })
        .collect();
    server.wait().await;
    // Counted right after run_until returned: nothing may still be pending.
    let events = closes.rec.events();
    assert_eq!(closes.rec.count("close:alpha:1001"), 5, "{events:#?}");
    assert_eq!(closes.rec.count("close:beta:1001"), 5, "{events:#?}");
    assert_eq!(events.len(), 10, "{events:#?}");
    for r in readers {
        assert_eq!(bounded("client reader", r).await.unwrap(), 1001);
    }
}

#[tokio::test]
async fn no_new_connections_after_shutdown() {
    let mut server = start(server()).await;
    let addr = server.addr;
    server.begin_shutdown();
    server.wait().await;
    match tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/alpha")),
    )
    .await
    {
        Ok(Ok(_)) => panic!("connected to a server that was shut down"),
        Ok(Err(_)) => {}
        Err(_) => panic!("connecting to a shut down server hung"),
    }
}

#[tokio::test]
async fn shutdown_without_sessions_is_prompt() {
    let mut server = start(server()).await;
    let started = Instant::now();
    server.begin_shutdown();
    server.wait().await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[derive(Default)]
struct Stuck;

#[server_endpoint("/stuck")]
impl Stuck {
    #[on_message]
    async fn text(&mut self, _text: String) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }

    #[on_close]
    fn close(&mut self, closes: State<Closes>) {
        closes.rec.push("close:stuck");
    }
}

#[tokio::test]
async fn a_handler_that_never_ends_cannot_hold_shutdown_past_its_deadline() {
    let mut limits = fast_limits();
    limits.shutdown_timeout = Duration::from_millis(300);
    let server = Server::new()
        .limits(limits)
        .state(Closes::default())
        .endpoint::<Stuck>();
    let mut server = start(server).await;
    let mut ws = server.connect("/stuck").await;
    send_text(&mut ws, "sleep").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    server.begin_shutdown();
    server.wait().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "returned before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "shutdown_timeout not honoured: {took:?}"
    );
}
