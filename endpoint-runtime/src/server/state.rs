//! [`ServerState`]: everything a built server holds, shared by its accept loop, its HTTP
//! connections, its handles and its shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use super::mount::Route;
use crate::connection::ConnectionContext;
use crate::rooms::broker::BrokerLink;
use crate::router::Router;
use crate::state::StateMap;

/// The plain-HTTP request a [`Server::fallback`](crate::Server::fallback) service receives.
pub type HttpRequest = Request<Incoming>;
/// The response a [`Server::fallback`](crate::Server::fallback) service returns.
pub type HttpResponse = Response<Full<Bytes>>;

pub(crate) type Fallback =
    Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, HttpResponse> + Send + Sync>;

/// A built server: routes, what its connections share, its tasks and its shutdown signals.
pub(crate) struct ServerState {
    pub(crate) router: Router<Route>,
    /// Limits, counters, timers and the shutdown flag, handed to every connection's driver.
    pub(crate) connections: Arc<ConnectionContext>,
    pub(crate) state: Arc<StateMap>,
    pub(crate) tracker: TaskTracker,
    /// Cancelled when the drain ends: every task still running is dropped.
    pub(crate) cancel: CancellationToken,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    /// Signalled by [`ServerHandle::shutdown`](super::ServerHandle::shutdown).
    pub(crate) stop: tokio::sync::Notify,
    pub(crate) fallback: Option<Fallback>,
    pub(crate) context_path: String,
    pub(crate) allowed_origins: Option<Vec<String>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
    pub(crate) broker: Option<Arc<BrokerLink>>,
    /// HTTP/2 beside HTTP/1.1 on the listener ([`Server::http2`](crate::Server::http2)).
    pub(crate) http2: bool,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` of an HTTP/2 connection.
    pub(crate) h2_max_streams: u32,
}

impl ServerState {
    pub(crate) fn limits(&self) -> &crate::Limits {
        &self.connections.limits
    }

    pub(crate) fn counters(&self) -> &crate::stats::Counters {
        &self.connections.counters
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.connections.shutting_down.load(Ordering::SeqCst)
    }
}
