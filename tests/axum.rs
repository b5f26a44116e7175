//! The endpoints mounted in axum: `examples/axum.rs` itself (included with `#[path]`) on an
//! ephemeral port — its routes, its state shared with the endpoint, and the chat WebSocket on
//! the same port, over HTTP/1.1 and over HTTP/2 (axum's server enables extended CONNECT) — an
//! axum middleware that refuses an upgrade with 401 before the endpoints see it, and graceful
//! shutdown of the axum server closing every session with 1001.

mod common;
mod h2_support;

#[path = "../examples/axum.rs"]
#[allow(dead_code)]
mod example;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use endpoint::prelude::*;
use futures::{SinkExt, StreamExt};
use h2_support::H2Conn;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct App {
    addr: SocketAddr,
    state: example::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start_example() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = example::AppState::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(example::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    App {
        addr,
        state,
        stop: Some(stop),
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_routes_and_websockets_share_one_port() {
    let app = start_example().await;
    let res = http(
        app.addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "ok");
    let res = http(
        app.addr,
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 404);

    // Two HTTP/1.1 clients and one HTTP/2 stream in one room.
    let mut a = connect(app.addr, "/chat/lobby").await;
    let mut b = connect(app.addr, "/chat/lobby").await;
    let mut other = connect(app.addr, "/chat/elsewhere").await;
    let mut conn = H2Conn::connect(app.addr).await;
    let (head, mut c) = conn.websocket("/chat/lobby", &[]).await;
    assert_eq!(head.version, http::Version::HTTP_2);
    // The HTTP/2 session is in the room once it answers its own message.
    c.send(WsMessage::text("c is here")).await.unwrap();
    loop {
        match bounded("c's own message", c.next()).await {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "c is here" => break,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(recv_text(&mut a).await, "c is here");
    assert_eq!(recv_text(&mut b).await, "c is here");

    send_text(&mut a, "hello lobby").await;
    assert_eq!(recv_text(&mut a).await, "hello lobby");
    assert_eq!(recv_text(&mut b).await, "hello lobby");
    match bounded("c gets a's message", c.next()).await {
        Some(Ok(WsMessage::Text(t))) => assert_eq!(t.as_str(), "hello lobby"),
        other => panic!("{other:?}"),
    }
    send_text(&mut other, "only here").await;
    assert_eq!(recv_text(&mut other).await, "only here");

    // The state the endpoint wrote, read by an axum handler.
    assert_eq!(app.state.messages.load(Ordering::Relaxed), 3);
    let res = http(
        app.addr,
        "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.body, "messages 3\n");
    // A refusal of the endpoints' table comes through axum unchanged.
    let res = http(
        app.addr,
        &upgrade_request("/chat/lobby", &["sec-websocket-key"], &[]),
    )
    .await;
    assert_eq!(res.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_of_the_axum_server_closes_every_session_with_1001() {
    let mut app = start_example().await;
    let mut clients = Vec::new();
    for room in ["a", "b", "c"] {
        let mut ws = connect(app.addr, &format!("/chat/{room}")).await;
        send_text(&mut ws, "hi").await;
        assert_eq!(recv_text(&mut ws).await, "hi");
        clients.push(ws);
    }
    let _ = app.stop.take().unwrap().send(());
    for ws in &mut clients {
        assert_eq!(recv_close(ws).await.0, 1001);
        // reading on answers the close, so the session's closing handshake completes
        drain_until_end(ws).await;
    }
    bounded("axum::serve to return", &mut app.task)
        .await
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// An axum middleware in front of the endpoints

#[derive(Default)]
struct Closes {
    rec: Recorder,
}

#[derive(Default)]
struct Secret;

#[server_endpoint("/ws/secret")]
impl Secret {
    #[on_open]
    fn open(&mut self, closes: State<Closes>) {
        closes.rec.push("open");
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

/// Lets a request through only with `Authorization: Bearer letmein`.
async fn require_token(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let ok = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer letmein");
    if ok {
        next.run(req).await
    } else {
        (http::StatusCode::UNAUTHORIZED, "token required\n").into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_middleware_refuses_an_upgrade_with_401() {
    let server = Server::new()
        .limits(fast_limits())
        .state(Closes::default())
        .endpoint::<Secret>();
    let closes = server.get_state::<Closes>().unwrap();
    let endpoints = server.into_service().unwrap();
    let router = axum::Router::new()
        .route("/api/health", axum::routing::get(|| async { "ok" }))
        .route_service("/ws/{*rest}", endpoints.clone())
        .layer(axum::middleware::from_fn(require_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, router).await });

    let res = http(addr, &upgrade_request("/ws/secret", &[], &[])).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.body, "token required\n");
    assert!(
        endpoints
            .handle()
            .stats()
            .rejected
            .iter()
            .all(|(_, n)| *n == 0),
        "the endpoints never saw it"
    );

    let mut ws =
        connect_with_headers(addr, "/ws/secret", &[("authorization", "Bearer letmein")]).await;
    assert_eq!(roundtrip(&mut ws, "in").await, "in");
    closes.rec.wait_count("open", 1).await;
    assert_eq!(closes.rec.count("open"), 1);
    task.abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
}
