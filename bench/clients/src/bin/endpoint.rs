//! endpoint's own client (`endpoint::client::Client`) under the harness's load: endpoints
//! written by hand (`impl Endpoint` with `EndpointConfig::client()` + `impl ClientEndpoint`),
//! default `Limits`, `#[tokio::main]` (under `taskset -c 0` tokio sees one core and runs one
//! worker, as the servers do). See the crate's docs for the modes.
//!
//! - echo: every echo is sent back by returning it from `on_message` (the reply path: the
//!   runtime writes it, masked with a fresh mask, from the connection's own task); the first
//!   `--inflight` messages go out with `Connection::send`.
//! - idle: each connection sends one 20-byte message with `Connection::send`, its `on_message`
//!   reports the echo, and the `Connection` handle is kept (as an application keeps it to send).

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bench_clients::{
    connect_all, finish, measure_echo, parse_args, payload, watchdog, Args, EchoCounters,
    IdleBaseline,
};
use endpoint::client::{Client, ClientEndpoint, Connection};
use endpoint::{CloseReason, Endpoint, EndpointConfig, HookResult, Message, Session};
use tokio::sync::oneshot;

const NAME: &str = "endpoint";

/// Sends every echo back; counts it on its connection's counter.
struct Echo {
    counters: Arc<EchoCounters>,
    conn: usize,
    len: usize,
}

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }

    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        match &message {
            Message::Binary(b) if b.len() == self.len => self.counters.received(self.conn),
            _ => self.counters.error(),
        }
        Ok(Some(message))
    }

    async fn on_close(&mut self, _: &Session, _: CloseReason) {
        self.counters.error();
    }
}
impl ClientEndpoint for Echo {}

/// Tells the opener that the one echo came back, then stays silent.
struct IdleOnce(Option<oneshot::Sender<bool>>);

impl Endpoint for IdleOnce {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }

    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        let ok = matches!(&message, Message::Binary(b) if b.len() == 20);
        if let Some(tx) = self.0.take() {
            let _ = tx.send(ok);
        }
        Ok(None)
    }
}
impl ClientEndpoint for IdleOnce {}

async fn echo(args: &Args) -> io::Result<String> {
    let client = Client::new();
    let url = args.url();
    let counters = EchoCounters::new(args.conns);
    let t = Instant::now();
    let len = args.payload;
    let c = counters.clone();
    let conns: Vec<Connection> = connect_all(args.conns, args.connect_concurrency, move |conn| {
        let (client, url, counters) = (client.clone(), url.clone(), c.clone());
        async move {
            client
                .connect(
                    &url,
                    Echo {
                        counters,
                        conn,
                        len,
                    },
                )
                .await
                .map_err(io::Error::other)
        }
    })
    .await?;
    let connect_s = t.elapsed().as_secs_f64();
    let message = payload(args.payload);
    for c in &conns {
        for _ in 0..args.inflight {
            c.send(message.clone()).await.map_err(io::Error::other)?;
        }
    }
    measure_echo(args, NAME, &counters, connect_s).await
}

async fn idle(args: &Args) -> io::Result<String> {
    let client = Client::new();
    let url = args.url();
    let baseline = IdleBaseline::take(args)?;
    let conns: Vec<Connection> = connect_all(args.conns, args.connect_concurrency, move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let (tx, rx) = oneshot::channel();
            let c = client
                .connect(&url, IdleOnce(Some(tx)))
                .await
                .map_err(io::Error::other)?;
            c.send(vec![b'x'; 20]).await.map_err(io::Error::other)?;
            match rx.await {
                Ok(true) => Ok(c),
                _ => Err(io::Error::other("no 20-byte binary echo")),
            }
        }
    })
    .await?;
    let n = conns.len();
    let result = baseline.report(args, NAME, n).await;
    drop(conns);
    result
}

#[tokio::main]
async fn main() {
    let args = parse_args("cli-endpoint");
    watchdog(&args, NAME);
    let result = match args.mode.as_str() {
        "echo" => echo(&args).await,
        _ => idle(&args).await,
    };
    finish(&args, NAME, result)
}
