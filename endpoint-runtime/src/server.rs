//! [`Server`]: registers endpoints and shared state, binds, accepts, upgrades and shuts down.
//!
//! ```no_run
//! use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Server, Session};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Endpoint for Echo {
//!     fn config() -> EndpointConfig {
//!         EndpointConfig::new("/echo.do")
//!     }
//!     async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
//!         Ok(Some(message))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = Server::new().endpoint::<Echo>().bind("127.0.0.1:8089").await?;
//!     // Ctrl-C or SIGTERM: every session gets 1001 and its on_close, then run_until returns.
//!     server.run_until(endpoint_runtime::shutdown_signal()).await
//! }
//! ```
//!
//! # Shutdown
//!
//! [`BoundServer::run_until`] stops accepting when its future completes, sends `1001 Going Away`
//! to every open session, waits for their `on_close` (at most
//! [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout)), then returns.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::broker::{Broker, BrokerLink, Inbox};
use crate::config::Limits;
use crate::configurator::{Configurator, HandshakeRequest};
use crate::connection;
use crate::endpoint::{Endpoint, EndpointConfig, MessageLimits};
use crate::handshake::{self, Handshake, Rejection};
use crate::message::{CloseCode, CloseReason};
use crate::router::Router;
use crate::session::{EndpointShared, Properties, RequestInfo, Session};
use crate::state::{State, StateMap};
use crate::stats::{Counters, Stats};

/// Server-wide state every session can reach.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) state: Arc<StateMap>,
    pub(crate) shutting_down: AtomicBool,
    /// Open WebSocket sessions (upgraded, not yet finished).
    pub(crate) open: AtomicUsize,
    pub(crate) counters: Counters,
    /// Keep-alive and idle deadlines of all sessions.
    pub(crate) timers: crate::timer::Timers,
}

/// A registered endpoint with its type erased.
trait Mount: Send + Sync + 'static {
    fn config(&self) -> &EndpointConfig;
    fn configurator(&self) -> Option<&dyn Configurator>;
    fn shared(&self) -> &Arc<EndpointShared>;
    /// Spawns the whole life of one connection after the `101`: waits for hyper to hand over
    /// the socket, then drives the endpoint. Spawned here, where its type is known, so a
    /// connection costs one task with its state inline (one allocation).
    fn start(
        &self,
        tracker: &TaskTracker,
        on_upgrade: hyper::upgrade::OnUpgrade,
        session: Session,
        slot: ConnectionSlot,
    ) -> tokio::task::AbortHandle;
}

struct Mounted<E, F> {
    config: EndpointConfig,
    configurator: Option<Box<dyn Configurator>>,
    shared: Arc<EndpointShared>,
    factory: Arc<F>,
    _endpoint: std::marker::PhantomData<fn() -> E>,
}

impl<E, F> Mount for Mounted<E, F>
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    fn config(&self) -> &EndpointConfig {
        &self.config
    }

    fn configurator(&self) -> Option<&dyn Configurator> {
        self.configurator.as_deref()
    }

    fn shared(&self) -> &Arc<EndpointShared> {
        &self.shared
    }

    fn start(
        &self,
        tracker: &TaskTracker,
        on_upgrade: hyper::upgrade::OnUpgrade,
        session: Session,
        slot: ConnectionSlot,
    ) -> tokio::task::AbortHandle {
        // The arguments travel boxed: an async block keeps its captures for its whole life, and
        // this one lives as long as the connection; unboxed, they are ordinary locals, gone once
        // used.
        let start = Box::new(Start {
            factory: self.factory.clone(),
            limits: self.config.resolve(&session.inner.shared.limits),
            on_upgrade,
            session,
            slot,
        });
        tracker.spawn(connection_task::<E, F>(start)).abort_handle()
    }
}

/// The task of one connection: waits for hyper to hand over the socket, then drives the
/// endpoint. Everything between the two awaits happens in [`connect`], so that what it borrows
/// is not kept in this future, which lives as long as the connection.
pub(crate) async fn connection_task<E, F>(start: Box<Start<F>>)
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    let Start {
        factory,
        limits,
        on_upgrade,
        session,
        slot,
    } = Start::unbox(start);
    let upgraded = on_upgrade.await;
    // A `let`, not an `if let`: the scrutinee of an `if let` lives to the end of its block, and
    // would be kept beside the future it is awaited as.
    let Some(connection) = connect(factory, limits, upgraded, session) else {
        return;
    };
    connection.await;
    drop(slot);
}

/// Creates the endpoint and the connection's driver (or the 1011 refusal when the endpoint's
/// factory panics); `None` when the upgrade failed.
fn connect<E, F>(
    factory: Arc<F>,
    limits: MessageLimits,
    upgraded: hyper::Result<hyper::upgrade::Upgraded>,
    session: Session,
) -> Option<impl Future<Output = ()> + Send>
where
    E: Endpoint,
    F: Fn(&Handshake) -> E + Send + Sync + 'static,
{
    let upgraded = match upgraded {
        Ok(upgraded) => upgraded,
        Err(e) => {
            debug!(session = %session.id(), error = %e, "upgrade failed");
            return None;
        }
    };
    let handshake = Handshake::new(session.clone());
    Some(match connection::catch(|| factory(&handshake)) {
        Ok(endpoint) => futures::future::Either::Left(connection::run(
            endpoint, upgraded, session, handshake, limits,
        )),
        Err(panic) => {
            warn!(session = %session.id(), %panic, "endpoint factory panicked");
            futures::future::Either::Right(connection::refuse(upgraded, session))
        }
    })
}

/// What a connection task starts from.
pub(crate) struct Start<F> {
    factory: Arc<F>,
    limits: MessageLimits,
    on_upgrade: hyper::upgrade::OnUpgrade,
    session: Session,
    slot: ConnectionSlot,
}

impl<F> Start<F> {
    /// Moves the arguments out, freeing the box at once (the point of the box is the size of
    /// the async block that captures it).
    #[allow(clippy::boxed_local)]
    fn unbox(start: Box<Self>) -> Self {
        *start
    }
}

/// Builder of a WebSocket server: endpoints, shared state and limits. See the
/// [module docs](self).
#[must_use = "a Server does nothing until it is bound and run"]
pub struct Server {
    mounts: Vec<Arc<dyn Mount>>,
    state: StateMap,
    limits: Limits,
    fallback: Option<Fallback>,
    context_path: String,
    allowed_origins: Option<Vec<String>>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
    broker: Option<Arc<dyn Broker>>,
    node_id: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field(
                "endpoints",
                &self
                    .mounts
                    .iter()
                    .map(|m| m.config().path())
                    .collect::<Vec<_>>(),
            )
            .field("limits", &self.limits)
            .finish()
    }
}

impl Server {
    /// A server with no endpoints and default [`Limits`].
    pub fn new() -> Self {
        Server {
            mounts: Vec::new(),
            state: StateMap::default(),
            limits: Limits::default(),
            fallback: None,
            context_path: String::new(),
            allowed_origins: None,
            #[cfg(feature = "tls")]
            tls: None,
            broker: None,
            node_id: None,
        }
    }

    /// Registers an endpoint type; each connection gets a fresh `E::default()`.
    pub fn endpoint<E: Endpoint + Default>(self) -> Self {
        self.endpoint_with(|_: &Handshake| E::default())
    }

    /// Registers an endpoint type with a factory, called once per connection after the
    /// handshake (before `on_open`). Use it to hand each endpoint what it needs:
    ///
    /// ```
    /// # use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Server, Session};
    /// # use std::sync::Arc;
    /// struct Chat { db: Arc<String> }
    /// # impl Endpoint for Chat {
    /// #     fn config() -> EndpointConfig { EndpointConfig::new("/chat") }
    /// #     async fn on_message(&mut self, _: &Session, m: Message) -> HookResult { Ok(None) }
    /// # }
    /// let db = Arc::new("sqlite://chat.db".to_string());
    /// let server = Server::new().endpoint_with(move |_handshake| Chat { db: db.clone() });
    /// # drop(server);
    /// ```
    pub fn endpoint_with<E, F>(mut self, factory: F) -> Self
    where
        E: Endpoint,
        F: Fn(&Handshake) -> E + Send + Sync + 'static,
    {
        let config = E::config();
        self.mounts.push(Arc::new(Mounted {
            configurator: E::configurator(),
            shared: Arc::new(EndpointShared::new(config.path)),
            config,
            factory: Arc::new(factory),
            _endpoint: std::marker::PhantomData,
        }));
        self
    }

    /// Registers shared state, injected into handlers taking `State<T>` (and reachable with
    /// [`Session::state`]). Registering a second value of the same type replaces the first.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(Arc::new(value));
        self
    }

    /// The registered state of type `T`.
    pub fn get_state<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        self.state.get::<T>()
    }

    /// Answers plain HTTP requests that are not WebSocket upgrades to an endpoint: requests to
    /// other paths, and requests without `Upgrade` to endpoint paths. Without a fallback they
    /// get `404` (other paths) or `426` (endpoint paths).
    ///
    /// ```
    /// use endpoint_runtime::server::{HttpRequest, HttpResponse};
    /// use endpoint_runtime::{Bytes, Server};
    ///
    /// let server = Server::new().fallback(|req: HttpRequest| async move {
    ///     if req.uri().path() == "/" {
    ///         HttpResponse::new(Bytes::from_static(b"<h1>hello</h1>").into())
    ///     } else {
    ///         let mut res = HttpResponse::new(Bytes::from_static(b"not found").into());
    ///         *res.status_mut() = http::StatusCode::NOT_FOUND;
    ///         res
    ///     }
    /// });
    /// # drop(server);
    /// ```
    pub fn fallback<F, Fut>(mut self, service: F) -> Self
    where
        F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HttpResponse> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |req| Box::pin(service(req))));
        self
    }

    /// Serves every endpoint under a prefix, like a servlet container's web-application context:
    /// with `context_path("/myChat")`, `#[server_endpoint("/echo.do")]` answers at
    /// `ws://host/myChat/echo.do` (and no longer at `/echo.do`). Requests outside the prefix go
    /// to the fallback (or get `404`).
    ///
    /// ```
    /// # use endpoint_runtime::Server;
    /// let server = Server::new().context_path("/myChat");
    /// # drop(server);
    /// ```
    pub fn context_path(mut self, prefix: &str) -> Self {
        self.context_path = prefix.trim_end_matches('/').to_owned();
        if !self.context_path.is_empty() && !self.context_path.starts_with('/') {
            self.context_path.insert(0, '/');
        }
        self
    }

    /// Accepts browser handshakes only from these origins (`scheme://host[:port]`, compared
    /// ASCII case-insensitively); others get `403 Forbidden`. Requests without an `Origin`
    /// header (non-browser clients) are not affected. This is the defence against cross-site
    /// WebSocket hijacking; see [`configurator`](crate::configurator).
    ///
    /// ```
    /// # use endpoint_runtime::Server;
    /// let server = Server::new().allowed_origins(["https://chat.example", "http://localhost:8089"]);
    /// # drop(server);
    /// ```
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(
            origins
                .into_iter()
                .map(|o| o.into().trim_end_matches('/').to_owned())
                .collect(),
        );
        self
    }

    /// Serves `wss://` (TLS) instead of `ws://` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Carries room broadcasts and presence to the other server processes (see
    /// [`broker`](crate::broker)); without one, rooms span this process only.
    pub fn broker(mut self, broker: impl Broker) -> Self {
        self.broker = Some(Arc::new(broker));
        self
    }

    /// This node's name in cluster-wide presence; by default `hostname-pid-random`.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// Replaces the server's [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The server's current [`Limits`].
    pub fn current_limits(&self) -> &Limits {
        &self.limits
    }

    /// Binds a TCP listener.
    ///
    /// # Errors
    /// The bind error, or `InvalidInput` when an endpoint path is malformed or two endpoints
    /// serve the same paths.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<BoundServer> {
        let listener = TcpListener::bind(addr).await?;
        self.listen(listener)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    /// `InvalidInput` when an endpoint path is malformed or two endpoints serve the same paths.
    pub fn listen(self, listener: TcpListener) -> io::Result<BoundServer> {
        Ok(BoundServer {
            listener,
            app: Arc::new(self.build()?),
        })
    }

    /// The server as a hyper [`Service`](hyper::service::Service), to mount the endpoints
    /// beside other routes of your own hyper (or axum, tower) server. See [`EndpointService`].
    ///
    /// # Errors
    /// `InvalidInput` when an endpoint path is malformed or two endpoints serve the same paths.
    pub fn into_service(self) -> io::Result<EndpointService> {
        let app = Arc::new(self.build()?);
        app.start_broker();
        Ok(EndpointService { app })
    }

    fn build(self) -> io::Result<App> {
        let mut router = Router::new();
        for m in &self.mounts {
            router
                .insert(m.config().path(), m.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let shared = Arc::new(Shared {
            limits: self.limits,
            state: Arc::new(self.state),
            shutting_down: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            counters: Counters::default(),
            timers: crate::timer::Timers::new(
                self.mounts.iter().map(|m| m.shared().clone()).collect(),
            ),
        });
        let broker = self.broker.map(|broker| {
            let node = self.node_id.unwrap_or_else(default_node_id);
            let link = Arc::new(BrokerLink {
                broker,
                node: node.into(),
            });
            for m in &self.mounts {
                let _ = m.shared().broker.set(link.clone());
            }
            link
        });
        let (shutdown_tx, _) = watch::channel(false);
        Ok(App {
            router,
            shared,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            shutdown_tx,
            stop: tokio::sync::Notify::new(),
            fallback: self.fallback,
            context_path: self.context_path,
            allowed_origins: self.allowed_origins,
            #[cfg(feature = "tls")]
            tls: self.tls,
            broker,
        })
    }
}

/// The endpoints as a hyper service, for mounting beside other routes: from
/// [`Server::into_service`].
///
/// It answers WebSocket upgrades to its endpoints (`101`, or the refusals of the
/// [`handshake`] table) and `404` to anything else, so a router in front can
/// send it the paths it owns. Sessions run on the current tokio runtime; the
/// [`fallback`](Server::fallback) and TLS (`Server::tls`) are for the built-in listener and are not
/// used here. The peer address is taken from a `SocketAddr` in the request's extensions, if the
/// outer server puts one there.
///
/// [`answer`](EndpointService::answer) takes a request with any body type, so the endpoints also
/// mount in frameworks built on hyper, e.g. as an axum handler
/// (`any(move |req: axum::extract::Request| async move { endpoints.answer(req) })`): the
/// upgrade only needs the request's headers and hyper's upgrade extension.
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
    app: Arc<App>,
}

impl std::fmt::Debug for EndpointService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointService").finish_non_exhaustive()
    }
}

impl EndpointService {
    /// Answers one request: a WebSocket upgrade to an endpoint, a refusal, or `404`.
    pub fn answer<B>(&self, req: Request<B>) -> HttpResponse {
        let remote = req.extensions().get::<SocketAddr>().copied();
        match handle_request(&self.app, req, remote, false) {
            Handled::Response(r) => r,
            Handled::Fallback(req) => reject(&self.app, Rejection::NotFound, &req, remote),
        }
    }

    /// A handle for counters, rooms and shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            app: self.app.clone(),
        }
    }

    /// Graceful shutdown of the sessions this service opened: `1001` to each, then waits for
    /// their `on_close` (bounded by [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout)).
    pub async fn shutdown(&self) {
        self.app.shutdown().await;
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

struct App {
    router: Router<Arc<dyn Mount>>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    /// Cancelled when the drain ends: every task still running is dropped.
    cancel: CancellationToken,
    shutdown_tx: watch::Sender<bool>,
    /// Signalled by [`ServerHandle::shutdown`].
    stop: tokio::sync::Notify,
    fallback: Option<Fallback>,
    context_path: String,
    allowed_origins: Option<Vec<String>>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
    broker: Option<Arc<BrokerLink>>,
}

/// The plain-HTTP request a [`Server::fallback`] service receives.
pub type HttpRequest = Request<Incoming>;
/// The response a [`Server::fallback`] service returns.
pub type HttpResponse = Response<Full<Bytes>>;

type Fallback = Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, HttpResponse> + Send + Sync>;

/// A handle to a bound or running server: counters, rooms, shutdown. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    app: Arc<App>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        let open: usize = self.app.router.iter().map(|(_, m)| m.shared().len()).sum();
        let mut stats = self.app.shared.counters.snapshot(open as u64);
        stats.broker = self.app.broker.as_ref().map(|l| l.broker.stats());
        stats
    }

    /// The rooms of the endpoint registered at `path` (its URI template as written), for
    /// broadcasting from outside a session, e.g. a background task.
    pub fn rooms(&self, path: &str) -> Option<crate::room::Rooms> {
        self.app
            .router
            .iter()
            .find(|(t, _)| t.as_str() == path)
            .map(|(_, m)| crate::room::Rooms {
                endpoint: m.shared().clone(),
            })
    }

    /// Starts a graceful shutdown, as if the future given to
    /// [`run_until`](BoundServer::run_until) had completed; called again during the drain, it
    /// forces the end.
    pub fn shutdown(&self) {
        self.app.stop.notify_one();
    }
}

/// A server bound to a socket, ready to [`run`](BoundServer::run).
#[must_use = "a bound server does nothing until run"]
pub struct BoundServer {
    listener: TcpListener,
    app: Arc<App>,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl BoundServer {
    /// The address the server listens on (useful after binding port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for counters, rooms and shutdown, usable while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            app: self.app.clone(),
        }
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
        let BoundServer { listener, app } = self;
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, endpoints = ?app.router.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), "listening");
        }
        app.start_broker();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = app.stop.notified() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let app2 = app.clone();
                        app.spawn(serve_tcp(app2, stream, remote));
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
        app.shutdown().await;
        Ok(())
    }
}

impl App {
    fn start_broker(&self) {
        if let Some(link) = &self.broker {
            let endpoints = self
                .router
                .iter()
                .map(|(_, m)| Arc::downgrade(m.shared()))
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

    async fn shutdown(&self) {
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.shutdown_tx.send(true);
        let mut n = 0;
        for (_, mount) in self.router.iter() {
            for session in mount.shared().snapshot() {
                session.close(CloseReason::new(
                    CloseCode::GOING_AWAY,
                    "server shutting down",
                ));
                n += 1;
            }
        }
        info!(sessions = n, "shutting down");
        self.tracker.close();
        let deadline = shared.limits.shutdown_timeout;
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
        for (_, mount) in self.router.iter() {
            for session in mount.shared().snapshot() {
                if let Some(task) = session.inner.task.get() {
                    task.abort();
                }
            }
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

async fn serve_tcp(app: Arc<App>, stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &app.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let timeout = app.shared.limits.handshake_timeout;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_http(app, stream, remote, true).await,
            Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => debug!(%remote, "TLS handshake timed out"),
        }
        return;
    }
    serve_http(app, stream, remote, false).await;
}

async fn serve_http<S>(app: Arc<App>, stream: S, remote: SocketAddr, secure: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &app.shared.limits;
    let mut shutdown_rx = app.shutdown_tx.subscribe();
    let svc_app = app.clone();
    let service = hyper::service::service_fn(move |req| {
        let app = svc_app.clone();
        async move {
            let response = match handle_request(&app, req, Some(remote), secure) {
                Handled::Response(r) => r,
                Handled::Fallback(req) => match &app.fallback {
                    Some(f) => f(req).await,
                    None => reject(&app, Rejection::NotFound, &req, Some(remote)),
                },
            };
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(limits.max_request_head.max(8192));
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = shutdown_rx.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        debug!(%remote, error = %e, "http connection ended with an error");
    }
}

/// What the upgrade logic made of a request.
enum Handled<B> {
    Response(Response<Full<Bytes>>),
    /// Not for an endpoint: the fallback service (or 404) answers.
    Fallback(Request<B>),
}

fn handle_request<B>(
    app: &Arc<App>,
    req: Request<B>,
    remote: Option<SocketAddr>,
    secure: bool,
) -> Handled<B> {
    let path = req.uri().path();
    let path = if app.context_path.is_empty() {
        path
    } else {
        match path.strip_prefix(app.context_path.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => return Handled::Fallback(req),
        }
    };
    let Some(found) = app.router.find(path) else {
        return Handled::Fallback(req);
    };
    // A plain (non-upgrade) request to an endpoint path also goes to the fallback when there
    // is one: a page and its WebSocket may share a path.
    if app.fallback.is_some() && !req.headers().contains_key(http::header::UPGRADE) {
        return Handled::Fallback(req);
    }
    Handled::Response(upgrade(app, req, found, remote, secure))
}

fn upgrade<B>(
    app: &Arc<App>,
    mut req: Request<B>,
    found: crate::router::Match<'_, Arc<dyn Mount>>,
    remote: Option<SocketAddr>,
    secure: bool,
) -> Response<Full<Bytes>> {
    let upgrade = match handshake::validate(&req) {
        Ok(u) => u,
        Err(r) => return reject(app, r, &req, remote),
    };
    let shared = &app.shared;
    if shared.shutting_down.load(Ordering::SeqCst) {
        return reject(app, Rejection::Overloaded, &req, remote);
    }
    let mount = found.value.clone();
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if let (Some(allowed), Some(origin)) = (&app.allowed_origins, origin) {
        let origin = origin.trim_end_matches('/');
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            let why = format!("origin `{origin}` is not allowed\n");
            return reject(
                app,
                Rejection::Status(http::StatusCode::FORBIDDEN, why),
                &req,
                remote,
            );
        }
    }
    let configurator = mount.configurator();
    if let Some(c) = configurator {
        if !c.check_origin(origin) {
            let why = "origin refused by the endpoint's configurator\n".to_owned();
            return reject(
                app,
                Rejection::Status(http::StatusCode::FORBIDDEN, why),
                &req,
                remote,
            );
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    let mut request = HandshakeRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        path_params: found.params,
        remote_addr: remote,
        requested_protocols: upgrade.client_protocols,
        properties: Properties::default(),
        response_headers: http::HeaderMap::new(),
        state: shared.state.clone(),
    };
    let supported = mount.config().subprotocols;
    let protocol = match configurator {
        Some(c) => {
            if let Err(rejection) = c.modify_handshake(&mut request) {
                app.shared.counters.reject(rejection.reason());
                debug!(
                    ?remote,
                    path = request.uri.path(),
                    status = rejection.status().as_u16(),
                    "handshake refused by configurator"
                );
                return rejection.into_response();
            }
            c.select_subprotocol(&request.requested_protocols, supported)
        }
        None => handshake::choose_subprotocol(&request.requested_protocols, supported),
    };
    let Some(slot) = ConnectionSlot::acquire(shared) else {
        app.shared.counters.reject(Rejection::Overloaded.reason());
        debug!(?remote, "handshake refused: at max_connections");
        return Rejection::Overloaded.into_response();
    };
    // Copied into one compact block: hyper's parsed URI and header values point into its 8 KiB
    // read buffer, which would stay allocated for as long as the session kept them.
    let info = RequestInfo::new(
        &request.uri,
        &request.headers,
        &request.path_params,
        remote,
        protocol.as_deref(),
        secure,
    );
    let extra_headers = request.response_headers;
    let session = Session::new(
        info,
        request.properties,
        mount.shared().clone(),
        shared.clone(),
    );
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    // A WebSocket task is tracked for the drain but not wrapped in a cancellation check: that
    // would cost a lock on a shared `Notify` at every poll of every session. It is aborted
    // through its handle when the drain ends instead.
    let task = session.clone();
    let handle = mount.start(&app.tracker, on_upgrade, session, slot);
    let _ = task.inner.task.set(handle);
    let mut response = handshake::switching_protocols(&upgrade.accept, protocol.as_deref());
    response.headers_mut().extend(extra_headers);
    response
}

fn reject<B>(
    app: &App,
    rejection: Rejection,
    req: &Request<B>,
    remote: Option<SocketAddr>,
) -> Response<Full<Bytes>> {
    app.shared.counters.reject(rejection.reason());
    debug!(
        ?remote,
        path = req.uri().path(),
        status = rejection.status().as_u16(),
        reason = rejection.reason(),
        "handshake refused"
    );
    rejection.into_response()
}

/// Counts an open session against [`Limits::max_connections`] until dropped.
struct ConnectionSlot(Arc<Shared>);

impl ConnectionSlot {
    fn acquire(shared: &Arc<Shared>) -> Option<Self> {
        let max = shared.limits.max_connections;
        shared
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(shared.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `hostname-pid-xxxx`: distinct for every process, readable in presence listings.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
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
