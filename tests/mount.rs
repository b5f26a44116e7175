//! The endpoints mounted as a hyper service beside other routes of a server of the user's own.

use std::convert::Infallible;
use std::time::Duration;

use endpoint::prelude::*;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::service::{service_fn, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Default)]
struct Echo;

#[server_endpoint("/ws/echo")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("echo: {text}")
    }
}

/// A user's own hyper server: `/health` is its own route, `/ws/...` goes to the endpoints.
async fn users_server(endpoints: endpoint::EndpointService) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, remote) = listener.accept().await.unwrap();
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let app = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let endpoints = endpoints.clone();
                    async move {
                        if req.uri().path() == "/health" {
                            let body = Full::new(Bytes::from_static(b"ok"));
                            return Ok::<_, Infallible>(hyper::Response::new(body));
                        }
                        req.extensions_mut().insert(remote);
                        endpoints.call(req).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), app)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn endpoints_mount_beside_other_routes() {
    let endpoints = Server::new().endpoint::<Echo>().into_service().unwrap();
    let handle = endpoints.handle();
    let addr = users_server(endpoints.clone()).await;

    let health = get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let unknown = get(addr, "/nope").await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    let plain = get(addr, "/ws/echo").await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/echo"))
        .await
        .unwrap();
    ws.send(WsMessage::text("hi")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, WsMessage::text("echo: hi"));
    let stats = handle.stats();
    assert_eq!(stats.open_sessions, 1);
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.rejected("not_found"), 1);
    assert_eq!(stats.rejected("upgrade_required"), 1);

    // Graceful shutdown of the mounted endpoints: 1001, then the session is gone.
    let closing = tokio::spawn(async move { endpoints.shutdown().await });
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    assert!(ws.next().await.is_none_or(|m| m.is_err()));
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handle.stats().open_sessions, 0);
}
