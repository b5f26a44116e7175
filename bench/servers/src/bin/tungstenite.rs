//! The floor: a hand-written tokio-tungstenite loop, 4 KiB read buffer. Echo coalesces writes:
//! every message already readable is queued (`feed`), then the socket is flushed once. Fan-out
//! goes through one unbounded mpsc channel per subscriber, drained the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bench_servers::port_arg;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    subs: Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port_arg())).await?;
    println!("listening on {}", listener.local_addr()?);
    let hub = Arc::new(Hub::default());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, hub.clone()));
    }
}

async fn serve(stream: TcpStream, hub: Arc<Hub>) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let mut path = String::new();
    // The callback's error type is tungstenite's (an HTTP response), not ours to make smaller.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, res: Response| {
        path = req.uri().path().to_owned();
        Ok(res)
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    match path.as_str() {
        "/echo" => echo(ws).await,
        "/room" => room(ws, hub).await,
        _ => {
            let mut ws = ws;
            let _ = ws.close(None).await;
        }
    }
}

async fn echo(mut ws: Ws) {
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.feed(msg).await.is_err() {
            return;
        }
        // Queue every message already readable, then flush once.
        loop {
            match ws.next().now_or_never() {
                None => break,
                Some(Some(Ok(msg))) => {
                    if (msg.is_text() || msg.is_binary()) && ws.feed(msg).await.is_err() {
                        return;
                    }
                }
                Some(_) => {
                    let _ = ws.flush().await;
                    return;
                }
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

async fn room(mut ws: Ws, hub: Arc<Hub>) {
    let first = match ws.next().await {
        Some(Ok(Message::Text(t))) => t,
        _ => return,
    };
    match first.as_str() {
        "sub" => {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let id = hub.next.fetch_add(1, Ordering::Relaxed);
            hub.subs.lock().unwrap().insert(id, tx);
            if ws.send(Message::text("ok")).await.is_ok() {
                loop {
                    tokio::select! {
                        m = rx.recv() => {
                            let Some(m) = m else { break };
                            if ws.feed(m).await.is_err() { break }
                            let mut failed = false;
                            while let Ok(m) = rx.try_recv() {
                                if ws.feed(m).await.is_err() { failed = true; break }
                            }
                            if failed || ws.flush().await.is_err() { break }
                        }
                        incoming = ws.next() => match incoming {
                            Some(Ok(_)) => {}
                            _ => break,
                        }
                    }
                }
            }
            hub.subs.lock().unwrap().remove(&id);
        }
        "pub" => {
            if ws.send(Message::text("ok")).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_binary() {
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
