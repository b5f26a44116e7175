//! Running a built server: the accept loop of a [`BoundServer`], or an [`EndpointService`]
//! inside another server; [`ServerHandle`]; graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use std::convert::Infallible;

use http::Request;

use super::http::{handle_request, serve_tcp, Handled};
use super::state::{HttpResponse, ServerState};
use crate::message::{CloseCode, CloseReason};
use crate::protocol::handshake::Rejection;
use crate::rooms::broker::Inbox;
use crate::rooms::Rooms;
use crate::stats::Stats;

/// A handle to a bound or running server: counters, rooms, shutdown. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    server: Arc<ServerState>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(crate) fn new(server: Arc<ServerState>) -> Self {
        ServerHandle { server }
    }

    /// The server's connection reactor, once a plain TCP connection started it.
    #[cfg(test)]
    pub(crate) fn reactor(&self) -> Option<Arc<crate::connection::reactor::Reactor>> {
        self.server.connections.reactor.get().cloned().flatten()
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        let open: usize = self
            .server
            .router
            .iter()
            .map(|(_, r)| r.registry.len())
            .sum();
        let mut stats = self.server.counters().snapshot(open as u64);
        stats.broker = self.server.broker.as_ref().map(|l| l.broker.stats());
        stats.history = self
            .server
            .state
            .get::<crate::rooms::history::HistoryLink>()
            .map(|h| h.stats());
        stats
    }

    /// The rooms of the endpoint registered at `path` (its URI template as written, with or
    /// without the server's [context path](crate::Server::context_path)), for broadcasting
    /// from outside a session, e.g. a background task. [`Server::hub`](crate::Server::hub)
    /// does the same by endpoint type, before the server is bound.
    pub fn rooms(&self, path: &str) -> Option<Rooms> {
        let context = self.server.context_path.as_str();
        let find = |path: &str| {
            self.server
                .router
                .iter()
                .find(|(t, _)| t.as_str() == path)
                .map(|(_, r)| Rooms::new(r.registry.clone()))
        };
        find(path).or_else(|| {
            path.strip_prefix(context)
                .filter(|rest| !context.is_empty() && rest.starts_with('/'))
                .and_then(find)
        })
    }

    /// Starts a graceful shutdown, as if the future given to
    /// [`run_until`](BoundServer::run_until) had completed; called again during the drain, it
    /// forces the end.
    pub fn shutdown(&self) {
        self.server.stop.notify_one();
    }
}

/// A server bound to a socket, ready to [`run`](BoundServer::run).
#[must_use = "a bound server does nothing until run"]
pub struct BoundServer {
    listener: TcpListener,
    server: Arc<ServerState>,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl BoundServer {
    pub(crate) fn new(listener: TcpListener, server: Arc<ServerState>) -> Self {
        BoundServer { listener, server }
    }

    /// The address the server listens on (useful after binding port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for counters, rooms and shutdown, usable while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(self.server.clone())
    }

    /// Serves until the process ends (or [`ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// Never returns in practice; accept errors are logged and retried.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully like
    /// [`run_until`](BoundServer::run_until); a second signal during the drain forces the end.
    ///
    /// # Errors
    /// As [`run_until`](BoundServer::run_until).
    pub async fn run_until_signal(self) -> io::Result<()> {
        let handle = self.handle();
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            handle.shutdown();
            shutdown_signal().await;
            warn!("second signal: forcing shutdown");
            handle.shutdown();
        });
        let result = self.run().await;
        signals.abort();
        result
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: stops accepting, sends
    /// `1001` to every session, waits for every `on_close` and returns. The drain ends early
    /// at [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout), or when
    /// [`ServerHandle::shutdown`] is called (again); sessions still open then are dropped
    /// without their `on_close`.
    ///
    /// # Errors
    /// None so far; the `Result` leaves room for listener failures.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        let BoundServer { listener, server } = self;
        if let Ok(addr) = listener.local_addr() {
            let endpoints: Vec<_> = server.router.iter().map(|(t, _)| t.as_str()).collect();
            info!(%addr, ?endpoints, "listening");
        }
        server.start_broker();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = server.stop.notified() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let task = serve_tcp(server.clone(), stream, remote);
                        server.spawn(task);
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        server.shutdown().await;
        Ok(())
    }
}

impl ServerState {
    /// Hands the broker its inbox (once, when the server starts serving).
    pub(crate) fn start_broker(&self) {
        if let Some(link) = &self.broker {
            let endpoints = self
                .router
                .iter()
                .map(|(_, r)| Arc::downgrade(&r.registry))
                .collect();
            link.broker.start(Inbox { endpoints });
        }
    }

    /// Spawns an HTTP connection task, tracked for the drain and dropped when the drain ends.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Graceful shutdown: see [`BoundServer::run_until`].
    pub(crate) async fn shutdown(&self) {
        self.connections.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.shutdown_tx.send(true);
        let mut n = 0;
        for (_, route) in self.router.iter() {
            for session in route.registry.snapshot() {
                session.close_internal(CloseReason::new(
                    CloseCode::GOING_AWAY,
                    "server shutting down",
                ));
                n += 1;
            }
        }
        info!(sessions = n, "shutting down");
        self.tracker.close();
        let deadline = self.limits().shutdown_timeout;
        tokio::select! {
            () = self.tracker.wait() => info!("all sessions closed"),
            () = tokio::time::sleep(deadline) => {
                warn!(?deadline, open = self.tracker.len(), "shutdown deadline passed; dropping what is left");
            }
            () = self.stop.notified() => {
                warn!(open = self.tracker.len(), "shutdown forced; dropping what is left");
            }
        }
        // Whatever is left is dropped: sockets close, sessions leave their registries and
        // rooms (their on_close does not run).
        for (_, route) in self.router.iter() {
            for session in route.registry.snapshot() {
                session.abort_task();
            }
        }
        if let Some(Some(reactor)) = self.connections.reactor.get() {
            reactor.abort_all();
        }
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        // Every session has left its rooms: the broker can withdraw this node at once (it may
        // block briefly on the network, hence off the runtime's threads).
        if let Some(link) = &self.broker {
            let link = link.clone();
            let _ = tokio::task::spawn_blocking(move || link.broker.stop()).await;
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM: pass it to
/// [`BoundServer::run_until`].
///
/// ```no_run
/// # async fn demo(server: endpoint_runtime::BoundServer) -> std::io::Result<()> {
/// server.run_until(endpoint_runtime::shutdown_signal()).await
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = term => info!("SIGTERM received"),
    }
}

/// The endpoints as a hyper service, for mounting beside other routes: from
/// [`Server::into_service`](crate::Server::into_service).
///
/// It answers WebSocket upgrades to its endpoints (`101`, or the refusals of the
/// [`handshake`](crate::handshake) table) and `404` to anything else, so a router in front can
/// send it the paths it owns. Sessions run on the current tokio runtime; the
/// [`fallback`](crate::Server::fallback) and TLS (`Server::tls`) are for the built-in listener and are not
/// used here. The peer address is taken from a `SocketAddr` in the request's extensions, if the
/// outer server puts one there.
///
/// [`answer`](EndpointService::answer) takes a request with any body type, and the service is
/// also a [`tower::Service`](tower_service::Service), so the endpoints mount in frameworks built
/// on hyper and tower: in axum, `Router::new().route_service("/chat/{room}", endpoints)` (see
/// the README's "Using it with axum" and `examples/axum.rs`). The upgrade only needs the
/// request's headers and hyper's upgrade extension; over HTTP/2 it answers an extended CONNECT
/// (RFC 8441) when the outer server enables it (hyper's `enable_connect_protocol`).
///
/// ```no_run
/// use std::convert::Infallible;
/// use endpoint_runtime::{Bytes, Server};
/// use http_body_util::Full;
/// use hyper::service::{service_fn, Service};
///
/// # async fn demo(ws: Server, stream: tokio::net::TcpStream) -> std::io::Result<()> {
/// let endpoints = ws.into_service()?;
/// let app = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
///     let endpoints = endpoints.clone();
///     async move {
///         if req.uri().path() == "/health" {
///             return Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok"))));
///         }
///         endpoints.call(req).await
///     }
/// });
/// hyper::server::conn::http1::Builder::new()
///     .serve_connection(hyper_util::rt::TokioIo::new(stream), app)
///     .with_upgrades()
///     .await
///     .ok();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EndpointService {
    server: Arc<ServerState>,
}

impl std::fmt::Debug for EndpointService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointService").finish_non_exhaustive()
    }
}

impl EndpointService {
    pub(crate) fn new(server: Arc<ServerState>) -> Self {
        EndpointService { server }
    }

    /// Answers one request: a WebSocket upgrade to an endpoint, a refusal, or `404`.
    pub fn answer<B>(&self, req: Request<B>) -> HttpResponse {
        let remote = req.extensions().get::<SocketAddr>().copied();
        match handle_request(&self.server, req, remote, false) {
            Handled::Response(r) => r,
            Handled::Fallback(req) => {
                super::upgrade::reject(&self.server, Rejection::NotFound, req.uri().path(), remote)
            }
        }
    }

    /// A handle for counters, rooms and shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(self.server.clone())
    }

    /// Graceful shutdown of the sessions this service opened: `1001` to each, then waits for
    /// their `on_close` (bounded by [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout)).
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

impl<B> hyper::service::Service<Request<B>> for EndpointService {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = std::future::Ready<Result<HttpResponse, Infallible>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(req)))
    }
}

/// The endpoints as a [`tower::Service`](tower_service::Service), for any request body: always
/// ready, never failing (a refusal is a response). This is what mounts them in axum
/// (`Router::route_service`, `fallback_service`) and under tower layers.
///
/// ```no_run
/// # async fn demo(ws: endpoint_runtime::Server) -> std::io::Result<()> {
/// use std::task::{Context, Poll};
/// use tower_service::Service;
///
/// let mut endpoints = ws.into_service()?;
/// let waker = futures::task::noop_waker();
/// let ready = Service::<http::Request<()>>::poll_ready(&mut endpoints, &mut Context::from_waker(&waker));
/// assert!(ready.is_ready());
/// let req = http::Request::get("/nowhere").body(()).unwrap();
/// let res = Service::call(&mut endpoints, req).await.unwrap();
/// assert_eq!(res.status(), 404);
/// # Ok(()) }
/// ```
impl<B> tower_service::Service<Request<B>> for EndpointService {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = std::future::Ready<Result<HttpResponse, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(req)))
    }
}
