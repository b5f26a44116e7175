//! A minimal node of a cluster sharing rooms through Redis (feature `redis`); the integration
//! tests in `tests/redis_broker.rs` run two of them (as processes of the test binary, which
//! includes this file).
//!
//! ```text
//! cargo run --example redis_node --features redis -- --addr 127.0.0.1:9001 --node a
//! cargo run --example redis_node --features redis -- --addr 127.0.0.1:9002 --node b
//! websocat 'ws://127.0.0.1:9001/room/lobby?name=ann'   # and ...:9002/room/lobby?name=bob
//! curl http://127.0.0.1:9001/stats
//! ```
//!
//! `ws://HOST:PORT/room/{room}?name=NAME` joins `room` under `NAME`. Every text is broadcast to
//! the room on every node (the sender included), except `who`, answered with
//! `members:NAME@NODE,...` (cluster-wide presence). `GET /stats` answers the broker's
//! counters: `connected=true outages=0 published=0 received=0 dropped=0`.
//!
//! Flags (`--help` lists them): `--addr HOST:PORT` (default `127.0.0.1:8089`, like every
//! example; the bound address is printed as `listening on ADDR`), `--redis URL` (default
//! `redis://127.0.0.1:6379`), `--node ID`, `--presence-ttl-ms N` (default 15000).

use clap::Parser;

// Outside the `redis`-only module, so that `--help` and a bad flag answer the same in a build
// without the feature.
/// A node of a cluster sharing rooms through Redis (needs the redis feature).
#[derive(Parser)]
#[command(name = "redis_node")]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct Args {
    /// Where to listen; the bound address is printed as "listening on ADDR"
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    addr: String,
    /// The Redis server the nodes share rooms through
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// This node's name in cluster-wide presence (without it, hostname-pid-random)
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// How long a node's presence outlives its last heartbeat, in milliseconds
    #[arg(long, value_name = "N", default_value_t = 15000)]
    presence_ttl_ms: u64,
}

#[cfg(feature = "redis")]
pub(crate) mod node {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use endpoint::prelude::*;
    use endpoint::redis::RedisBroker;
    use endpoint::server::{HttpRequest, HttpResponse};
    use endpoint::ServerHandle;

    #[derive(Default)]
    pub(crate) struct Node {
        room: String,
    }

    #[server_endpoint("/room/{room}")]
    impl Node {
        #[on_open]
        fn open(&mut self, session: &Session, handshake: &Handshake, #[path_param] room: String) {
            if let Some(name) = handshake.query_param("name") {
                session.set_name(name);
            }
            session.join(&room);
            self.room = room;
        }

        #[on_message]
        async fn message(
            &mut self,
            session: &Session,
            text: String,
        ) -> Result<Option<String>, EndpointError> {
            let room = session.room(&self.room);
            if text == "who" {
                let names: Vec<String> = room
                    .members_everywhere()
                    .await
                    .into_iter()
                    .map(|m| format!("{}@{}", m.name, m.node))
                    .collect();
                return Ok(Some(format!("members:{}", names.join(","))));
            }
            let _ = room.broadcast(text)?;
            Ok(None)
        }
    }

    fn stats(handle: Option<&ServerHandle>) -> String {
        match handle.and_then(|h| h.stats().broker) {
            Some(b) => format!(
                "connected={} outages={} published={} received={} dropped={}\n",
                b.connected, b.outages, b.published, b.received, b.dropped
            ),
            None => "no broker\n".to_owned(),
        }
    }

    /// Parses the flags (see [`Args`](super::Args)), given without the program's name; a bad
    /// one exits with clap's message and code 2.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> super::Args {
        use clap::Parser;
        super::Args::parse_from(std::iter::once("redis_node".to_owned()).chain(args))
    }

    /// Serves until SIGINT or SIGTERM; prints `listening on ADDR` once bound.
    pub(crate) async fn run(args: super::Args) -> std::io::Result<()> {
        // The /stats route needs the server's handle, which exists once bound; it is taken out
        // again after the run, or the server would own itself and never be dropped.
        let handle: Arc<Mutex<Option<ServerHandle>>> = Arc::default();
        let fallback = handle.clone();
        let mut server = Server::new()
            .endpoint::<Node>()
            .broker(
                RedisBroker::new(&args.redis)?
                    .presence_ttl(Duration::from_millis(args.presence_ttl_ms)),
            )
            .fallback(move |req: HttpRequest| {
                let handle = fallback.clone();
                async move {
                    if req.uri().path() == "/stats" {
                        let handle = handle.lock().unwrap().clone();
                        HttpResponse::new(Bytes::from(stats(handle.as_ref())).into())
                    } else {
                        let mut res = HttpResponse::new(Bytes::from_static(b"not found").into());
                        *res.status_mut() = http::StatusCode::NOT_FOUND;
                        res
                    }
                }
            });
        if let Some(node) = args.node {
            server = server.node_id(node);
        }
        let server = server.bind(&args.addr).await?;
        *handle.lock().unwrap() = Some(server.handle());
        println!("listening on {}", server.local_addr()?);
        let result = server.run_until(endpoint::shutdown_signal()).await;
        handle.lock().unwrap().take();
        result
    }
}

#[cfg(feature = "redis")]
#[allow(dead_code)] // unused when tests/redis_broker.rs includes this file as a module
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = node::parse(std::env::args().skip(1));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    node::run(args).await
}

#[cfg(not(feature = "redis"))]
#[allow(dead_code)]
fn main() {
    Args::parse(); // --help and a bad flag answer as in a build with the feature
    eprintln!(
        "redis_node needs the redis feature: cargo run --example redis_node --features redis"
    );
    std::process::exit(2);
}
