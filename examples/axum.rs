//! The endpoints mounted inside an axum app: axum's own routes and state, and a chat endpoint
//! at `/chat/{room}`, on one port, over HTTP/1.1 and HTTP/2.
//!
//! ```text
//! cargo run --example axum                        # http://127.0.0.1:8089/health
//! cargo run --example axum -- --addr 0.0.0.0:9000
//! ```
//!
//! Then `curl http://127.0.0.1:8089/health` answers `ok`, `curl http://127.0.0.1:8089/stats`
//! counts the chat's messages, and `ws://127.0.0.1:8089/chat/lobby` is a chat room: every text
//! sent there reaches everyone in the room. `Ctrl-C` sends `1001` to every chat session, runs
//! their `on_close`, then stops axum.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use clap::Parser;
use endpoint::prelude::*;
use endpoint::EndpointService;

/// The app's state, shared by the axum handlers and the endpoint: one `Arc` inside, so each
/// clone is the same counter.
#[derive(Clone, Default)]
pub(crate) struct AppState {
    /// Chat messages relayed since the start.
    pub(crate) messages: Arc<AtomicU64>,
}

/// A chat room per path: every text is broadcast to the room's sessions.
#[derive(Default)]
struct Chat;

#[server_endpoint("/chat/{room}", max_message_size = 65536)]
impl Chat {
    // A new session joins the room named by its path.
    #[on_open]
    fn open(&mut self, session: &Session, #[path_param] room: String) {
        session.join(&room);
    }

    // Counted in the state shared with axum, then sent to everyone in the room (the sender too).
    #[on_message]
    fn text(
        &mut self,
        session: &Session,
        app: State<AppState>,
        #[path_param] room: String,
        text: String,
    ) {
        app.messages.fetch_add(1, Ordering::Relaxed);
        let _ = session.room(&room).broadcast(text);
    }
}

/// The axum app with the endpoints mounted, and the endpoints' handle (for shutdown).
///
/// # Errors
/// As [`Server::into_service`] (a malformed endpoint path).
pub(crate) fn app(state: AppState) -> std::io::Result<(axum::Router, EndpointService)> {
    // The endpoints as a tower service, with the same state as the axum app.
    let endpoints = Server::new()
        .state(state.clone())
        .endpoint::<Chat>()
        .into_service()?;
    // A tower layer in front of it: copies the peer address axum knows (`ConnectInfo`) to
    // where the endpoints look for it, so `Session::remote_addr` is set.
    let chat = tower::ServiceBuilder::new()
        .map_request(|mut req: axum::extract::Request| {
            if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                let addr = *addr;
                req.extensions_mut().insert(addr);
            }
            req
        })
        .service(endpoints.clone());
    let router = axum::Router::new()
        // An ordinary axum route.
        .route("/health", axum::routing::get(|| async { "ok" }))
        // An axum handler reading the state the endpoint writes.
        .route("/stats", axum::routing::get(stats))
        // The chat endpoint: axum hands every request for /chat/{room} (the WebSocket
        // handshake, over HTTP/1.1 or an HTTP/2 extended CONNECT) to the endpoints.
        .route_service("/chat/{room}", chat)
        .with_state(state);
    Ok((router, endpoints))
}

/// `GET /stats`: the messages relayed so far.
async fn stats(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    format!("messages {}\n", state.messages.load(Ordering::Relaxed))
}

/// Serves the app on `listener` until `shutdown` completes, then closes every chat session
/// with `1001` (their `on_close` run) before axum stops.
///
/// # Errors
/// As [`axum::serve`].
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, endpoints) = app(state)?;
    // `ConnectInfo<SocketAddr>` for the layer above.
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, make)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // axum's graceful shutdown does not see upgraded connections: the endpoints close
            // their own sessions (1001, then each on_close, bounded by Limits::shutdown_timeout).
            endpoints.shutdown().await;
        })
        .await
}

/// Chat rooms mounted in an axum app, beside its own routes.
#[derive(Parser)]
#[command(name = "axum")]
struct Args {
    /// Where to listen (axum's routes and the WebSocket)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    addr: String,
}

#[allow(dead_code)] // tests/axum.rs includes this file for `serve`, not for `main`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listener = match tokio::net::TcpListener::bind(&args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                "\n(another server, perhaps the echo or chat example, is listening there: stop \
                 it, or pass --addr HOST:PORT)"
            } else {
                ""
            };
            eprintln!("axum: cannot listen on {}: {e}{hint}", args.addr);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr()?;
    println!("axum: http://{addr}/health, ws://{addr}/chat/{{room}}");
    serve(listener, AppState::default(), endpoint::shutdown_signal()).await
}
