//! axum's WebSocket, written the way its docs and examples do (default configuration, one
//! `send` per message). Fan-out: one unbounded mpsc channel per subscriber and a writer task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bench_servers::port_arg;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    subs: Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Arc::new(Hub::default());
    let app = Router::new()
        .route("/echo", get(echo_upgrade))
        .route("/room", get(room_upgrade))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_arg())).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn echo_upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

// Written as axum's docs write it (a guard calling `send` would move the message).
#[allow(clippy::collapsible_match)]
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if socket.send(msg).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

async fn room_upgrade(ws: WebSocketUpgrade, State(hub): State<Arc<Hub>>) -> Response {
    ws.on_upgrade(move |socket| room(socket, hub))
}

async fn room(mut socket: WebSocket, hub: Arc<Hub>) {
    let first = match socket.recv().await {
        Some(Ok(Message::Text(t))) => t,
        _ => return,
    };
    match first.as_str() {
        "sub" => {
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            let id = hub.next.fetch_add(1, Ordering::Relaxed);
            hub.subs.lock().unwrap().insert(id, tx);
            if socket.send(Message::text("ok")).await.is_ok() {
                let (mut sink, mut stream) = socket.split();
                let writer = tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
                writer.abort();
            }
            hub.subs.lock().unwrap().remove(&id);
        }
        "pub" => {
            if socket.send(Message::text("ok")).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = socket.recv().await {
                if let Message::Binary(_) = msg {
                    let subs = hub.subs.lock().unwrap();
                    for tx in subs.values() {
                        let _ = tx.send(msg.clone());
                    }
                }
            }
        }
        _ => {}
    }
}
