//! The floor: a hand-written tokio-tungstenite client, configured and written as the harness's
//! tokio-tungstenite server (`bench/servers/src/bin/tungstenite.rs`): 4 KiB read buffer
//! (tungstenite's default 128 KiB buffer is zero-filled before each read and touched in full
//! per connection), `TCP_NODELAY`, `client_async_with_config` on a `TcpStream` of its own, one
//! task per connection, a multi-thread tokio runtime (one worker under `taskset -c 0`). See
//! the crate's docs for the modes.
//!
//! `CLI_TUNGSTENITE_READ_BUFFER=N` sets another read buffer size (bytes), to see what the 4 KiB
//! costs on large messages.
//!
//! - echo: the first `--inflight` messages are queued (`feed`) and flushed once; then every
//!   message already readable is queued back (`feed`) and the socket flushed once (the writes
//!   coalesced, as the server floor does).
//! - idle: one 20-byte echo (`send`, `next`), then the stream moves into a task that reads it
//!   (a client that answers the server's pings), and nothing else is kept.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bench_clients::{
    connect_all, finish, measure_echo, parse_args, payload, watchdog, Args, EchoCounters,
    IdleBaseline,
};
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const NAME: &str = "tungstenite";

type Ws = WebSocketStream<TcpStream>;

/// 4 KiB unless `CLI_TUNGSTENITE_READ_BUFFER` says otherwise.
fn read_buffer_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("CLI_TUNGSTENITE_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4096)
    })
}

async fn open(args: &Args) -> io::Result<Ws> {
    let stream = TcpStream::connect((args.host.as_str(), args.port)).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(read_buffer_size());
    let (ws, _) = tokio_tungstenite::client_async_with_config(args.url(), stream, Some(config))
        .await
        .map_err(io::Error::other)?;
    Ok(ws)
}

/// One connection's echo loop: K in flight, every echo queued back, one flush per batch.
async fn echo_loop(mut ws: Ws, conn: usize, k: usize, message: Bytes, counters: Arc<EchoCounters>) {
    let len = message.len();
    for _ in 0..k {
        if ws.feed(Message::Binary(message.clone())).await.is_err() {
            return counters.error();
        }
    }
    if ws.flush().await.is_err() {
        return counters.error();
    }
    // What to send back for a message received (`None`: nothing).
    let handle = |msg: Message| -> Option<Message> {
        match msg {
            Message::Binary(b) if b.len() == len => {
                counters.received(conn);
                Some(Message::Binary(b))
            }
            Message::Ping(_) | Message::Pong(_) => None,
            _ => {
                counters.error();
                None
            }
        }
    };
    while let Some(Ok(msg)) = ws.next().await {
        if let Some(back) = handle(msg) {
            if ws.feed(back).await.is_err() {
                return counters.error();
            }
        }
        // Queue every message already readable, then flush once.
        loop {
            match ws.next().now_or_never() {
                None => break,
                Some(Some(Ok(msg))) => {
                    if let Some(back) = handle(msg) {
                        if ws.feed(back).await.is_err() {
                            return counters.error();
                        }
                    }
                }
                Some(_) => return counters.error(),
            }
        }
        if ws.flush().await.is_err() {
            return counters.error();
        }
    }
    counters.error()
}

async fn echo(args: &Args) -> io::Result<String> {
    let counters = EchoCounters::new(args.conns);
    let t = Instant::now();
    let a = args.clone();
    let conns: Vec<Ws> = connect_all(args.conns, args.connect_concurrency, move |_| {
        let args = a.clone();
        async move { open(&args).await }
    })
    .await?;
    let connect_s = t.elapsed().as_secs_f64();
    let message = payload(args.payload);
    for (conn, ws) in conns.into_iter().enumerate() {
        tokio::spawn(echo_loop(
            ws,
            conn,
            args.inflight,
            message.clone(),
            counters.clone(),
        ));
    }
    measure_echo(args, NAME, &counters, connect_s).await
}

async fn idle(args: &Args) -> io::Result<String> {
    let baseline = IdleBaseline::take(args)?;
    let a = args.clone();
    let opened = connect_all(args.conns, args.connect_concurrency, move |_| {
        let args = a.clone();
        async move {
            let mut ws = open(&args).await?;
            ws.send(Message::Binary(Bytes::from_static(&[b'x'; 20])))
                .await
                .map_err(io::Error::other)?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) if b.len() == 20 => break,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => return Err(io::Error::other("no 20-byte binary echo")),
                }
            }
            // Reads on (and so answers pings) until the process ends.
            tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
            Ok(())
        }
    })
    .await?;
    baseline.report(args, NAME, opened.len()).await
}

#[tokio::main]
async fn main() {
    let args = parse_args("cli-tungstenite");
    watchdog(&args, NAME);
    let result = match args.mode.as_str() {
        "echo" => echo(&args).await,
        _ => idle(&args).await,
    };
    finish(&args, NAME, result)
}
