//! The client: endpoints that connect to a server (Jakarta's `@ClientEndpoint` and
//! `WebSocketContainer.connectToServer`), with the server's hooks, sessions and send API.
//!
//! ```no_run
//! use endpoint_runtime::client::{Client, ClientEndpoint};
//! use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Session};
//!
//! #[derive(Default)]
//! struct Printer;
//!
//! impl Endpoint for Printer {
//!     fn config() -> EndpointConfig {
//!         EndpointConfig::client()
//!     }
//!     async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
//!         println!("{message:?}");
//!         Ok(None)
//!     }
//! }
//! impl ClientEndpoint for Printer {}
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let connection = Client::new().connect("ws://127.0.0.1:8080/echo.do", Printer).await?;
//! connection.send("hello").await?;
//! let reason = connection.closed().await?;
//! println!("closed: {reason}");
//! # Ok(()) }
//! ```
//!
//! `#[client_endpoint]` writes the two `impl`s from an inherent impl with `#[on_open]`,
//! `#[on_message]`, `#[on_error]` and `#[on_close]` handlers, as `#[server_endpoint]` does.
//!
//! # What a client connection is
//!
//! The same connection as a server's (`connection/`: the driver runs the hooks one at a time,
//! `on_close` exactly once and last, keep-alive and limits from [`Limits`]), with the client's
//! side of the protocol: every frame it sends is masked with a fresh mask from a CSPRNG (RFC
//! 6455 5.3), and frames from the server must not be masked (1002 otherwise). The handshake
//! is checked strictly (`connect.rs`), and a failed attempt is a [`ConnectError`] naming its
//! cause.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Client`] (settings), [`Connection`] (the handle), the task that connects again |
//! | `endpoint` | [`ClientEndpoint`], [`ClientConfigurator`] |
//! | `connect` | one attempt: URL, DNS, TCP, TLS, the handshake and its checks |
//! | `reconnect` | [`Reconnect`], [`ReconnectHandler`] |
//! | `error` | [`ConnectError`] |
//! | `tls` | [`ClientTls`] (feature `tls`) |

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use tracing::debug;

use crate::config::Limits;
use crate::connection::{self, timer::Timers, ConnectionContext};
use crate::endpoint::{Endpoint, HookResult, MessageLimits, MessageMode};
use crate::error::{EndpointError, SendError};
use crate::message::{CloseReason, Encode, Message, PayloadKind};
use crate::protocol::deflate::{DeflateConfig, DeflateParams, Sharing};
use crate::session::registry::Sending;
use crate::session::{EndpointRegistry, Handshake, Properties, RequestInfo, Session};
use crate::stats::Counters;
use hyper::upgrade::Upgraded;

mod connect;
mod endpoint;
mod error;
mod reconnect;
#[cfg(feature = "tls")]
mod tls;

use connect::{Attempt, Opened, Target};
pub use endpoint::{ClientConfigurator, ClientEndpoint};
pub use error::ConnectError;
pub use reconnect::{Reconnect, ReconnectHandler};
#[cfg(feature = "tls")]
pub use tls::ClientTls;
#[cfg(feature = "tls")]
pub use tokio_rustls::rustls::RootCertStore;

/// A fresh, unpredictable mask for one frame (RFC 6455 5.3): from the thread's CSPRNG
/// (`rand`'s ChaCha, seeded by the OS), a few nanoseconds per frame.
pub(crate) fn mask() -> [u8; 4] {
    rand::random()
}

/// The settings connections are made with: Jakarta's `WebSocketContainer` and
/// `ClientEndpointConfig` in one builder. Cheap to clone; one `Client` can make any number of
/// connections, to any number of servers.
///
/// | setting | default |
/// |---|---|
/// | [`limits`](Client::limits) | [`Limits::default`]: 1 MiB messages, keep-alive pings every 30 s, ... (`max_connections` and the handshake limits do not apply) |
/// | [`connect_timeout`](Client::connect_timeout) | 10 s for DNS, TCP, TLS and the handshake together |
/// | [`header`](Client::header), [`cookie`](Client::cookie) | none |
/// | [`subprotocols`](Client::subprotocols) | the endpoint's (`#[client_endpoint(subprotocols = [..])]`) |
/// | compression | [`Limits::compression`], or the endpoint's `compression = true` |
/// | [`reconnect`](Client::reconnect) | off |
/// | [`tls`](Client::tls) | Mozilla's roots ([`ClientTls::webpki_roots`], feature `tls`) |
#[derive(Clone)]
pub struct Client {
    limits: Limits,
    connect_timeout: Duration,
    /// Shared by the connections (each keeps what it needs for its reconnections: a
    /// reference, not a copy).
    headers: Arc<HeaderMap>,
    subprotocols: Option<Arc<[String]>>,
    reconnect: Option<Arc<Reconnect>>,
    configurator: Option<Arc<dyn ClientConfigurator>>,
    #[cfg(feature = "tls")]
    tls: Option<ClientTls>,
    core: Arc<OnceLock<Arc<Core>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("limits", &self.limits)
            .field("connect_timeout", &self.connect_timeout)
            .field("headers", &self.headers)
            .field("subprotocols", &self.subprotocols)
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// What the connections of one `Client` share: their timers (keep-alive, idle), counters and
/// the registry their sessions live in.
struct Core {
    ctx: Arc<ConnectionContext>,
    registry: Arc<EndpointRegistry>,
}

impl Client {
    /// A client with the defaults above.
    pub fn new() -> Self {
        Client {
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            headers: Arc::new(HeaderMap::new()),
            subprotocols: None,
            reconnect: None,
            configurator: None,
            #[cfg(feature = "tls")]
            tls: None,
            core: Arc::new(OnceLock::new()),
        }
    }

    /// The limits of the client's connections: message and frame sizes, the outbound queue,
    /// keep-alive, idle, send and close timeouts, compression.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.core = Arc::new(OnceLock::new());
        self
    }

    /// How long one attempt may take, DNS to the `101` ([`ConnectError::Timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A header sent with every upgrade request (the handshake's own headers are set by the
    /// client and cannot be overridden).
    ///
    /// # Panics
    /// When `name` or `value` is not a valid header name or value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        Arc::make_mut(&mut self.headers).append(name, value);
        self
    }

    /// A cookie sent with every upgrade request (joined into one `Cookie` header).
    ///
    /// ```
    /// # use endpoint_runtime::client::Client;
    /// let client = Client::new().cookie("session", "abc123").cookie("lang", "en");
    /// # drop(client);
    /// ```
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        let pair = format!("{name}={value}");
        let joined = match self.headers.get(http::header::COOKIE) {
            Some(v) => format!("{}; {pair}", v.to_str().unwrap_or("")),
            None => pair,
        };
        Arc::make_mut(&mut self.headers).insert(
            http::header::COOKIE,
            HeaderValue::from_str(&joined).expect("a valid cookie"),
        );
        self
    }

    /// The subprotocols offered, by preference, instead of the endpoint's.
    pub fn subprotocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.subprotocols = Some(protocols.into_iter().map(Into::into).collect());
        self
    }

    /// Connects again after a connection ended ([`Reconnect`]); off by default.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(Arc::new(policy));
        self
    }

    /// Handshake hooks for every connection of this client, run before the endpoint's own
    /// (`#[client_endpoint(configurator = T)]`).
    pub fn configurator(mut self, configurator: impl ClientConfigurator) -> Self {
        self.configurator = Some(Arc::new(configurator));
        self
    }

    /// Whom `wss://` connections trust (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    fn core(&self) -> Arc<Core> {
        self.core
            .get_or_init(|| {
                let counters = Arc::new(Counters::default());
                let registry = Arc::new(EndpointRegistry::new(
                    crate::endpoint::EndpointConfig::client().path(),
                    Arc::default(),
                    counters.clone(),
                    None,
                    self.limits.compression.0.clone(),
                    Sending {
                        send_timeout: self.limits.send_timeout,
                        slow_consumer: crate::config::SlowConsumer::Close,
                    },
                ));
                let ctx = Arc::new(ConnectionContext {
                    limits: self.limits.clone(),
                    counters,
                    timers: Timers::new(vec![registry.clone()]),
                    shutting_down: Default::default(),
                    open: Default::default(),
                    client: true,
                    reactor: Default::default(),
                });
                Arc::new(Core { ctx, registry })
            })
            .clone()
    }

    /// Connects `endpoint` to `url` (`ws://` or `wss://`): resolves once the handshake is done
    /// and `on_open` has run (Jakarta's `connectToServer`). The connection then lives on its
    /// own task until it closes (and, with a [`Reconnect`] policy, connects again); the
    /// returned [`Connection`] sends, closes and waits for the end.
    ///
    /// # Errors
    /// The first attempt's [`ConnectError`]; reconnecting applies once a connection was made.
    pub async fn connect<E: ClientEndpoint>(
        &self,
        url: &str,
        endpoint: E,
    ) -> Result<Connection, ConnectError> {
        let plan = self.plan::<E>(url)?;
        let core = self.core();
        let opened = plan.open().await?;
        let shared = Arc::new(Shared {
            plan,
            current: Mutex::new(None),
            phase: Mutex::new(Phase::Opening),
            changed: tokio::sync::Notify::new(),
            stopped: Default::default(),
            connects: Default::default(),
        });
        let tracked = Tracked {
            inner: endpoint,
            shared: shared.clone(),
        };
        tokio::spawn(client_task(
            Box::new((tracked, opened)),
            core,
            shared.clone(),
        ));
        // Until `on_open` returned (or the connection ended first).
        shared
            .wait_phase(|phase| (!matches!(phase, Phase::Opening)).then_some(()))
            .await;
        Ok(Connection { shared })
    }

    fn plan<E: ClientEndpoint>(&self, url: &str) -> Result<Plan, ConnectError> {
        let target = Target::parse(url)?;
        let config = E::config();
        let subprotocols = self.subprotocols.clone().unwrap_or_else(|| {
            config
                .subprotocols
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        });
        let deflate = config.resolve_compression(&self.limits.compression);
        let parts = [
            E::message_mode(PayloadKind::Text) != MessageMode::Whole,
            E::message_mode(PayloadKind::Binary) != MessageMode::Whole,
        ];
        let limits = Arc::new(config.resolve(&self.limits, parts));
        let mut configurators: Vec<Arc<dyn ClientConfigurator>> = Vec::new();
        configurators.extend(self.configurator.clone());
        configurators.extend(E::client_configurator().map(Arc::from));
        Ok(Plan {
            url: url.into(),
            secure: target.secure,
            headers: self.headers.clone(),
            subprotocols,
            deflate,
            limits,
            configurators: configurators.into(),
            timeout: self.connect_timeout,
            reconnect: self.reconnect.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls.clone().unwrap_or_default(),
        })
    }
}

/// Everything one connection's attempts need, fixed at `connect`; kept for its whole life
/// (for reconnecting), so it holds references to what the `Client` shares, and the URL as text
/// (taken apart again for each attempt: a `Uri` is larger).
struct Plan {
    url: Box<str>,
    secure: bool,
    headers: Arc<HeaderMap>,
    subprotocols: Arc<[String]>,
    deflate: DeflateConfig,
    limits: Arc<MessageLimits>,
    configurators: Box<[Arc<dyn ClientConfigurator>]>,
    timeout: Duration,
    reconnect: Option<Arc<Reconnect>>,
    #[cfg(feature = "tls")]
    tls: ClientTls,
}

impl Plan {
    async fn open(&self) -> Result<Opened, ConnectError> {
        let mut url = None;
        for configurator in self.configurators.iter() {
            if let Some(changed) = configurator.request_url(url.as_deref().unwrap_or(&self.url)) {
                url = Some(changed);
            }
        }
        let target = Target::parse(url.as_deref().unwrap_or(&self.url))?;
        let configurators: Vec<&dyn ClientConfigurator> =
            self.configurators.iter().map(|c| c.as_ref()).collect();
        let attempt = Attempt {
            target: &target,
            headers: &self.headers,
            subprotocols: &self.subprotocols,
            deflate: &self.deflate,
            configurators: &configurators,
            #[cfg(feature = "tls")]
            tls: &self.tls,
        };
        connect::open(attempt, self.timeout).await
    }

    /// The session of a completed handshake, and what the driver takes. The `101`'s headers
    /// are copied into the session's request block and dropped here: they point into hyper's
    /// 8 KiB read buffer, which an idle connection would otherwise keep.
    fn session(&self, core: &Core, opened: Opened) -> (Session, Upgraded, Option<DeflateParams>) {
        let limits = &core.ctx.limits;
        let request = RequestInfo::new(
            &opened.uri,
            &opened.response_headers,
            &[],
            Some(opened.peer),
            opened.subprotocol.as_deref(),
            opened.deflate.map(|(_, packed)| packed),
            self.secure,
        );
        let session = Session::new(
            request,
            Properties::default(),
            core.registry.clone(),
            limits.outbound_queue_bytes,
            limits.idle_timeout,
            // Broadcasts share server frames: a client's never are.
            Sharing::Plain,
        );
        let deflate = opened.deflate.map(|(params, _)| params);
        (session, opened.upgraded, deflate)
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone)]
enum Phase {
    /// The handshake is done, `on_open` runs.
    Opening,
    /// Open (`on_open` returned).
    Open,
    /// Between connections: waiting, or trying again.
    Reconnecting,
    /// Over for good: the last close, or the error the policy gave up on (boxed: rare, and
    /// the phase is kept by every connection).
    Ended(Box<Result<CloseReason, ConnectError>>),
}

/// What the handle and the task share: one allocation per connection.
struct Shared {
    plan: Plan,
    current: Mutex<Option<Session>>,
    phase: Mutex<Phase>,
    /// Wakes whoever waits for a phase (`wait_phase`).
    changed: tokio::sync::Notify,
    stopped: std::sync::atomic::AtomicBool,
    connects: std::sync::atomic::AtomicU32,
}

impl Shared {
    fn set_current(&self, session: Option<Session>) {
        *crate::util::lock(&self.current) = session;
    }

    fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }

    fn end(&self, result: Result<CloseReason, ConnectError>) {
        self.set_current(None);
        self.set_phase(Phase::Ended(Box::new(result)));
    }

    fn set_phase(&self, phase: Phase) {
        *crate::util::lock(&self.phase) = phase;
        self.changed.notify_waiters();
    }

    /// Waits until `f` finds what it looks for in the phase.
    async fn wait_phase<T>(&self, f: impl Fn(&Phase) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the phase is looked at: no change goes unnoticed.
            notified.as_mut().enable();
            if let Some(found) = f(&crate::util::lock(&self.phase)) {
                return found;
            }
            notified.await;
        }
    }
}

/// A client's connection, across reconnections: sends go to the current session, and fail
/// with [`SendError::NotConnected`] while there is none. Cheap to clone. Dropping it does not
/// close the connection: [`Connection::close`] does.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("phase", &*crate::util::lock(&self.shared.phase))
            .finish()
    }
}

impl Connection {
    /// The open session, or `None` between connections and after the end. A session belongs
    /// to one connection: after a reconnection, this is a new one.
    pub fn session(&self) -> Option<Session> {
        crate::util::lock(&self.shared.current).clone()
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.session().is_some_and(|s| s.is_open())
    }

    /// How many connections were made so far (1 after `connect`, 2 after one reconnection).
    pub fn connects(&self) -> u32 {
        self.shared
            .connects
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`Session::send`] on the current session.
    ///
    /// # Errors
    /// [`SendError::NotConnected`] between connections; otherwise as [`Session::send`].
    pub async fn send(&self, message: impl Encode) -> Result<(), SendError> {
        match self.session() {
            Some(session) => session.send(message).await,
            None => Err(self.not_connected()),
        }
    }

    /// [`Session::send_flushed`] on the current session: resolves once written to the socket.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub async fn send_flushed(&self, message: impl Encode) -> Result<(), SendError> {
        match self.session() {
            Some(session) => session.send_flushed(message).await,
            None => Err(self.not_connected()),
        }
    }

    /// [`Session::try_send`] on the current session: never waits.
    ///
    /// # Errors
    /// As [`Connection::send`], and [`SendError::Full`].
    pub fn try_send(&self, message: impl Encode) -> Result<(), SendError> {
        match self.session() {
            Some(session) => session.try_send(message),
            None => Err(self.not_connected()),
        }
    }

    fn not_connected(&self) -> SendError {
        match &*crate::util::lock(&self.shared.phase) {
            Phase::Ended(_) => SendError::Closed,
            _ => SendError::NotConnected,
        }
    }

    /// Closes the connection with `reason` (the close handshake runs as on a server) and stops
    /// reconnecting; `closed()` then resolves with the reason the connection ended with.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent.
    pub fn close(&self, reason: CloseReason) -> Result<(), SendError> {
        let shared = &self.shared;
        if let Some(session) = self.session() {
            session.close(reason.clone())?;
        }
        shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        // Wakes a task waiting to reconnect.
        shared.changed.notify_waiters();
        Ok(())
    }

    /// Waits until the connection is over for good: closed without reconnecting, or the
    /// policy gave up.
    ///
    /// # Errors
    /// The last attempt's [`ConnectError`] when reconnecting gave up after failures.
    pub async fn closed(&self) -> Result<CloseReason, ConnectError> {
        self.shared
            .wait_phase(|phase| match phase {
                Phase::Ended(result) => Some((**result).clone()),
                _ => None,
            })
            .await
    }

    /// Waits until a connection is open (again): at once when one is. `false` once the
    /// connection is over for good.
    pub async fn connected(&self) -> bool {
        self.shared
            .wait_phase(|phase| match phase {
                Phase::Open => Some(true),
                Phase::Ended(_) => Some(false),
                _ => None,
            })
            .await
    }
}

/// The user's endpoint, telling the handle when `on_open` returned.
struct Tracked<E> {
    inner: E,
    shared: Arc<Shared>,
}

impl<E: ClientEndpoint> Endpoint for Tracked<E> {
    fn config() -> crate::EndpointConfig {
        E::config()
    }

    async fn on_open(&mut self, session: &Session, handshake: &Handshake) -> HookResult {
        let result = self.inner.on_open(session, handshake).await;
        self.shared.set_phase(Phase::Open);
        result
    }

    fn on_message<'a>(
        &'a mut self,
        session: &'a Session,
        message: Message,
    ) -> impl std::future::Future<Output = HookResult> + Send + 'a {
        self.inner.on_message(session, message)
    }

    fn on_part<'a>(
        &'a mut self,
        session: &'a Session,
        part: Message,
        last: bool,
    ) -> impl std::future::Future<Output = HookResult> + Send + 'a {
        self.inner.on_part(session, part, last)
    }

    fn on_stream<'a>(
        &'a mut self,
        session: &'a Session,
        stream: crate::MessageStream,
    ) -> impl std::future::Future<Output = HookResult> + Send + 'a {
        self.inner.on_stream(session, stream)
    }

    fn on_error<'a>(
        &'a mut self,
        session: &'a Session,
        error: EndpointError,
    ) -> impl std::future::Future<Output = HookResult> + Send + 'a {
        self.inner.on_error(session, error)
    }

    fn on_close<'a>(
        &'a mut self,
        session: &'a Session,
        reason: CloseReason,
    ) -> impl std::future::Future<Output = ()> + Send + 'a {
        self.inner.on_close(session, reason)
    }

    fn accepts(kind: PayloadKind) -> bool {
        E::accepts(kind)
    }

    fn message_mode(kind: PayloadKind) -> MessageMode {
        E::message_mode(kind)
    }
}

/// What a connection starts from: the endpoint and a completed handshake (boxed, so that the
/// task keeps a pointer to it, not its size, for its whole life).
type Start<E> = Box<(Tracked<E>, Opened)>;

/// The life of one client connection and its reconnections.
///
/// It lives as long as the connection: only the connection's future is inline, what starts
/// it is boxed and gone once started (`begin`), the waits and attempts between connections are
/// boxed (`reconnect`).
async fn client_task<E: ClientEndpoint>(start: Start<E>, core: Arc<Core>, shared: Arc<Shared>) {
    let mut next = Some(start);
    while let Some(start) = next.take() {
        shared
            .connects
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let (back, reason) = begin(&shared, &core, start).await;
        shared.set_current(None);
        next = Box::pin(reconnect(&shared, reason))
            .await
            .map(|opened| Box::new((back, opened)));
        if next.is_some() {
            shared.set_phase(Phase::Opening);
        }
    }
}

/// The session and the driver of one connection: set up here, not in `client_task`, so that
/// nothing they are made from is kept beside the driver's future. `start` comes boxed on
/// purpose: the task holds a pointer to it, not its size.
#[allow(clippy::boxed_local)]
fn begin<E: ClientEndpoint>(
    shared: &Shared,
    core: &Core,
    start: Start<E>,
) -> impl std::future::Future<Output = (Tracked<E>, CloseReason)> + Send {
    let (endpoint, opened) = *start;
    let (session, upgraded, deflate) = shared.plan.session(core, opened);
    shared.set_current(Some(session.clone()));
    let handshake = Handshake::new(session.clone());
    connection::run(
        endpoint,
        upgraded,
        session,
        handshake,
        shared.plan.limits.clone(),
        core.ctx.clone(),
        deflate,
    )
}

/// After a connection ended with `reason`: the next one, or `None` (and the end recorded)
/// when the policy, the handler or `Connection::close` says there is none.
async fn reconnect(shared: &Shared, reason: CloseReason) -> Option<Opened> {
    let policy = match &shared.plan.reconnect {
        Some(policy) if !shared.stopped() => policy,
        _ => {
            shared.end(Ok(reason));
            return None;
        }
    };
    let handler = policy.handler_or_default();
    if !handler.on_disconnect(&reason) {
        shared.end(Ok(reason));
        return None;
    }
    shared.set_phase(Phase::Reconnecting);
    let down = Instant::now();
    let mut attempt = 0u32;
    let mut last: Option<ConnectError> = None;
    loop {
        attempt += 1;
        let wait = policy.delay(attempt);
        if policy.gives_up(attempt, down.elapsed() + wait) {
            debug!(attempts = attempt - 1, "reconnecting gave up");
            shared.end(last.map_or(Ok(reason), Err));
            return None;
        }
        let stopped = async {
            loop {
                let notified = shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if shared.stopped() {
                    return;
                }
                notified.await;
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped => {
                shared.end(Ok(reason));
                return None;
            }
        }
        if shared.stopped() {
            shared.end(Ok(reason));
            return None;
        }
        match shared.plan.open().await {
            Ok(opened) => return Some(opened),
            Err(error) => {
                debug!(attempt, %error, "reconnect attempt failed");
                if !handler.on_connect_failure(&error, attempt) {
                    shared.end(Err(error));
                    return None;
                }
                last = Some(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Endpoint for Echo {
        fn config() -> crate::EndpointConfig {
            crate::EndpointConfig::client()
        }
        async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
            Ok(Some(m))
        }
    }
    impl ClientEndpoint for Echo {}

    /// What an idle client connection keeps besides its session: the task (its future) and
    /// the state shared with the handle. Printed by
    /// `cargo test -p endpoint-runtime client_size -- --nocapture`; the figure per connection
    /// is measured by `bench/run --cases client-idle`.
    #[test]
    fn client_size() {
        fn size_of_output<A, B, C, F: std::future::Future>(_: fn(A, B, C) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let task = size_of_output(client_task::<Echo>);
        let shared = std::mem::size_of::<Shared>();
        eprintln!(
            "client task future: {task} bytes, shared: {shared} bytes (plan {} bytes)",
            std::mem::size_of::<Plan>()
        );
        // The server's connection task is 584 bytes; the client's is the same future.
        assert!(task <= 640, "the client task grew to {task} bytes");
        assert!(shared < 384, "the shared state grew to {shared} bytes");
    }
}
