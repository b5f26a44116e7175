//! [`Server`]: the builder (endpoints, state, limits, fallback, TLS, broker) and what building
//! it makes.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::mount::{Mount, Mounted, Route};
use super::run::BoundServer;
use super::run::EndpointService;
use super::state::ServerState;
use super::state::{Fallback, HttpRequest, HttpResponse};
use crate::config::Limits;
use crate::connection::timer::Timers;
use crate::connection::ConnectionContext;
use crate::endpoint::Endpoint;
use crate::rooms::broker::{Broker, BrokerLink};
use crate::rooms::hub::HubSlot;
use crate::rooms::Hub;
use crate::router::Router;
use crate::session::registry::Sending;
use crate::session::{EndpointRegistry, Handshake};
use crate::state::{State, StateMap};
use crate::stats::Counters;

/// Builder of a WebSocket server: endpoints, shared state and limits. See the
/// [module docs](crate::server).
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
    /// The hubs handed out ([`Server::hub`]), by endpoint path, filled at build.
    hubs: std::sync::Mutex<Vec<(&'static str, HubSlot)>>,
    http2: bool,
    h2_max_streams: u32,
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
            hubs: std::sync::Mutex::default(),
            http2: true,
            h2_max_streams: 256,
        }
    }

    /// A [`Hub`] for pushing to `E`'s rooms and sessions from outside its handlers (timers,
    /// HTTP handlers, background tasks), on this node or every node. Take it before `bind` and
    /// move it where it is needed; it starts reaching sessions once the server is built. `E`
    /// must be registered on this server (`bind` fails otherwise).
    ///
    /// ```
    /// # use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Server, Session};
    /// # #[derive(Default)] struct Chat;
    /// # impl Endpoint for Chat {
    /// #     fn config() -> EndpointConfig { EndpointConfig::new("/chat") }
    /// #     async fn on_message(&mut self, _: &Session, _: Message) -> HookResult { Ok(None) }
    /// # }
    /// let server = Server::new().endpoint::<Chat>();
    /// let hub = server.hub::<Chat>();
    /// assert!(!hub.is_serving()); // until bind
    /// // Handlers of other endpoints (or HTTP fallbacks) can take it as state:
    /// let server = server.state(hub.clone());
    /// # drop(server);
    /// ```
    pub fn hub<E: Endpoint>(&self) -> Hub<E> {
        let path = E::config().path();
        let mut hubs = crate::util::lock(&self.hubs);
        let slot = match hubs.iter().find(|(p, _)| *p == path) {
            Some((_, slot)) => slot.clone(),
            None => {
                let slot = HubSlot::default();
                hubs.push((path, slot.clone()));
                slot
            }
        };
        Hub::new(slot)
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
        self.mounts.push(Arc::new(Mounted {
            configurator: E::configurator(),
            config: E::config(),
            factory: Arc::new(factory),
            limits: Default::default(),
            _endpoint: std::marker::PhantomData,
        }));
        self
    }

    /// Registers shared state, injected into handlers taking `State<T>` (and reachable with
    /// [`Session::state`](crate::Session::state)). Registering a second value of the same type replaces the first.
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

    /// Gives the rooms of every endpoint positions, history and recovery:
    /// [`Room::publish`](crate::Room::publish), [`Session::join_from`](crate::Session::join_from).
    /// See [`history`](crate::history).
    pub fn history(self, history: crate::history::RoomHistory) -> Self {
        self.state(crate::rooms::history::HistoryLink::new(history))
    }

    /// This node's name in cluster-wide presence; by default `hostname-pid-random`.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// Serves HTTP/2 beside HTTP/1.1 on the same port, with WebSockets over it (RFC 8441
    /// extended CONNECT, answered `200`); on by default. Over TLS the client picks by ALPN
    /// (`h2`, `http/1.1`); in cleartext a client speaks HTTP/2 "with prior knowledge" (h2c: it
    /// opens with the HTTP/2 preface), anything else is HTTP/1.1.
    ///
    /// A WebSocket over HTTP/2 is a session like any other: the same hooks, `Session`, rooms,
    /// limits, configurator, subprotocols and permessage-deflate, its own outbound bound; many
    /// share one TCP connection, and a fault closes its own stream only. At shutdown the
    /// connection sends GOAWAY and every session gets its `1001`.
    ///
    /// `http2(false)` serves HTTP/1.1 only (and drops `h2` from the TLS ALPN list); an HTTP/2
    /// preface is then answered as a malformed HTTP/1 request.
    ///
    /// ```
    /// # use endpoint_runtime::Server;
    /// let http1_only = Server::new().http2(false);
    /// # drop(http1_only);
    /// ```
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// How many streams (WebSockets and requests) one HTTP/2 connection may have open at once
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`); 256 by default. Every WebSocket also counts against
    /// [`Limits::max_connections`].
    ///
    /// ```
    /// # use endpoint_runtime::Server;
    /// let server = Server::new().http2_max_streams(1000);
    /// # drop(server);
    /// ```
    pub fn http2_max_streams(mut self, streams: u32) -> Self {
        self.h2_max_streams = streams.max(1);
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
    /// The bind error, or `InvalidInput` when an endpoint path is malformed, two endpoints
    /// serve the same paths, or an endpoint takes a `State<T>` that was never registered
    /// ([`Server::state`]; the error names the type, the endpoint and the handler).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<BoundServer> {
        let listener = TcpListener::bind(addr).await?;
        self.listen(listener)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    /// `InvalidInput` when an endpoint path is malformed, two endpoints serve the same paths, or
    /// an endpoint takes a `State<T>` that was never registered ([`Server::state`]).
    pub fn listen(self, listener: TcpListener) -> io::Result<BoundServer> {
        Ok(BoundServer::new(listener, Arc::new(self.build()?)))
    }

    /// The server as a hyper [`Service`](hyper::service::Service), to mount the endpoints
    /// beside other routes of your own hyper (or axum, tower) server. See [`EndpointService`].
    ///
    /// # Errors
    /// `InvalidInput` when an endpoint path is malformed, two endpoints serve the same paths, or
    /// an endpoint takes a `State<T>` that was never registered ([`Server::state`]).
    pub fn into_service(self) -> io::Result<EndpointService> {
        let server = Arc::new(self.build()?);
        server.start_broker();
        Ok(EndpointService::new(server))
    }

    /// Routes, registries, what the connections share: everything but the listener.
    fn build(self) -> io::Result<ServerState> {
        let counters = Arc::new(Counters::default());
        let state = Arc::new(self.state);
        let broker = self.broker.map(|broker| {
            let node = self.node_id.unwrap_or_else(default_node_id);
            Arc::new(BrokerLink {
                broker,
                node: node.into(),
            })
        });
        let mut router = Router::new();
        let mut registries = Vec::new();
        for mount in self.mounts {
            let path = mount.config().path();
            check_state(&state, path, &*mount)?;
            let compression = mount.config().resolve_compression(&self.limits.compression);
            let registry = Arc::new(EndpointRegistry::new(
                path,
                state.clone(),
                counters.clone(),
                broker.clone(),
                compression,
                Sending {
                    send_timeout: self.limits.send_timeout,
                    slow_consumer: mount.config().slow_consumer_policy(),
                },
            ));
            registries.push(registry.clone());
            if let Some((_, slot)) = crate::util::lock(&self.hubs)
                .iter()
                .find(|(p, _)| *p == path)
            {
                let _ = slot.set(registry.clone());
            }
            router
                .insert(path, Route { mount, registry })
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        if let Some((path, _)) = crate::util::lock(&self.hubs)
            .iter()
            .find(|(_, slot)| slot.get().is_none())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a Hub was taken for endpoint \"{path}\", which this server does not serve: \
                     register it with Server::endpoint"
                ),
            ));
        }
        let connections = Arc::new(ConnectionContext {
            limits: self.limits,
            counters,
            timers: Timers::new(registries),
            shutting_down: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            client: false,
            reactor: Default::default(),
        });
        let (shutdown_tx, _) = watch::channel(false);
        Ok(ServerState {
            router,
            connections,
            state,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            shutdown_tx,
            stop: tokio::sync::Notify::new(),
            fallback: self.fallback,
            context_path: self.context_path,
            allowed_origins: self.allowed_origins,
            #[cfg(feature = "tls")]
            tls: self.tls.map(|tls| tls.with_h2(self.http2)),
            broker,
            http2: self.http2,
            h2_max_streams: self.h2_max_streams,
        })
    }
}

/// Refuses an endpoint whose hooks take a `State<T>` that was never registered: at `bind`,
/// naming the type, the endpoint and the hook, rather than failing every message at run time.
fn check_state(state: &StateMap, path: &str, mount: &dyn Mount) -> io::Result<()> {
    let (endpoint, needs) = mount.required_state();
    match needs.iter().find(|need| !state.has(need)) {
        None => Ok(()),
        Some(need) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "endpoint `{endpoint}` (\"{path}\") takes `State<{ty}>` in {hook}, but no `{ty}` \
                 was registered: call `Server::state(value)` with one before `bind`",
                ty = need.type_name(),
                hook = need.taken_by(),
            ),
        )),
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
