//! A chat server: rooms, a browser page, and history that survives restarts.
//!
//! ```text
//! cargo run --release --example chat                         # http://127.0.0.1:8089/
//! cargo run --release --example chat -- --addr 0.0.0.0:9000 --db /var/lib/chat.db
//! cargo run --release --example chat -- --db :memory:        # history only while it runs
//! cargo run --release --example chat --features redis -- --redis redis://127.0.0.1:6379
//! ```
//!
//! With `--redis`, several chat servers share their rooms (see `docs/SCALE_OUT.md`), and the
//! rooms' history lives in Redis Streams: a joiner on any server sees the same history, with
//! the same offsets, and a page that reconnects to another server recovers what it missed.
//!
//! Open `http://127.0.0.1:8089/` in two browser tabs, or `/?room=rust&name=ada` to go straight
//! to a room. The WebSocket endpoint is `ws://127.0.0.1:8089/chat/{room}?name=NICK`; the
//! protocol is described in `examples/chat/README.md`.
//!
//! The Java original it mirrors is the classic `@ServerEndpoint("/chat/{room}")` with a
//! `static Set<Session>` per room; here the rooms, the fan-out and the slow-consumer handling
//! are the framework's, and the shared state is injected, not `static`.

mod app;

use std::path::PathBuf;

use clap::Parser;

/// A chat server: rooms, a browser page, and history that survives restarts.
#[derive(Parser)]
#[command(name = "chat")]
struct Args {
    /// Where to listen (page and WebSocket)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    addr: String,
    /// SQLite file for the history; :memory: keeps it only while the server runs (not used
    /// with --redis: the history is in Redis then)
    #[arg(long, value_name = "PATH", default_value = "chat.db")]
    db: PathBuf,
    /// Share rooms with other chat servers through Redis, e.g. redis://127.0.0.1:6379 (needs
    /// the redis feature; without it, rooms span this server only)
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Serve https:// and wss:// with this certificate chain, together with --tls-key (needs
    /// the tls feature; without both, plain http:// and ws://)
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<String>,
    /// Private key of the --tls-cert certificate
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (mut server, history) = match &args.redis {
        Some(url) => with_redis(url),
        None => match app::Store::open(&args.db) {
            Ok(store) => (
                app::server(app::Hub::new(store)),
                format!("history in {}", args.db.display()),
            ),
            Err(e) => fail(format_args!("cannot open {}: {e}", args.db.display())),
        },
    };
    let scheme = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            server = with_tls(server, cert, key);
            "https"
        }
        // One without the other never gets here: clap refuses it (`requires`).
        _ => "http",
    };
    let server = match server.bind(&args.addr).await {
        Ok(server) => server,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => fail(format_args!(
            "cannot listen on {}: {e}\n(another server, perhaps the echo example, is listening \
             there: stop it, or pass --addr HOST:PORT)",
            args.addr
        )),
        Err(e) => fail(format_args!("cannot listen on {}: {e}", args.addr)),
    };
    println!("chat: {scheme}://{}/  ({history})", server.local_addr()?);
    // Ctrl-C / SIGTERM: every session gets 1001 and its on_close (which tells the rooms who
    // left), then the server returns; a second signal ends the drain at once. Every message was
    // committed before it was delivered, so nothing anyone saw is lost; the database is closed
    // when the server is dropped.
    server.run_until_signal().await?;
    println!("chat: stopped");
    Ok(())
}

/// Rooms shared through Redis, and their history in Redis Streams (`--db` is not used).
#[cfg(feature = "redis")]
fn with_redis(url: &str) -> (endpoint::Server, String) {
    use endpoint::history::{RedisHistory, RoomHistory};
    match endpoint::redis::RedisBroker::new(url) {
        Ok(broker) => {
            let store = app::Store::with(RoomHistory::new(RedisHistory::new(&broker)));
            let hub = app::Hub::new(store);
            hub.set_cluster();
            (
                app::server(hub).broker(broker),
                format!("rooms and history in Redis at {url}"),
            )
        }
        Err(e) => fail(format_args!("{e}")),
    }
}

#[cfg(not(feature = "redis"))]
fn with_redis(_: &str) -> (endpoint::Server, String) {
    fail(format_args!(
        "--redis needs the redis feature: cargo run --example chat --features redis -- ..."
    ))
}

#[cfg(feature = "tls")]
fn with_tls(server: endpoint::Server, cert: &str, key: &str) -> endpoint::Server {
    match endpoint::tls::TlsConfig::from_pem_files(cert, key) {
        Ok(tls) => server.tls(tls),
        Err(e) => fail(format_args!("cannot load the TLS certificate: {e}")),
    }
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: endpoint::Server, _: &str, _: &str) -> endpoint::Server {
    fail(format_args!(
        "--tls-cert/--tls-key need the tls feature: cargo run --example chat --features tls -- ..."
    ))
}

fn fail(why: std::fmt::Arguments<'_>) -> ! {
    eprintln!("chat: {why}");
    std::process::exit(1);
}
