//! [`Handshake`]: what `on_open` and an endpoint factory read of the opening handshake.

use std::net::SocketAddr;

use http::{HeaderMap, Uri};

use super::{Properties, Session};

/// What `on_open` (and an endpoint factory) can read of the opening handshake: the request URI,
/// headers, query, path variables, the chosen subprotocol, and the per-connection properties.
///
/// ```
/// # fn demo(handshake: &endpoint_runtime::Handshake) {
/// let token = handshake.query_param("token");
/// let agent = handshake.headers().get("user-agent");
/// # let _ = (token, agent);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Handshake {
    session: Session,
}

impl Handshake {
    pub(crate) fn new(session: Session) -> Self {
        Handshake { session }
    }

    /// The request URI (path and query).
    pub fn uri(&self) -> &Uri {
        self.session.request_uri()
    }

    /// The request headers, without those the opening handshake consumed (`Connection`,
    /// `Upgrade`, `Sec-WebSocket-Key`, `-Version` and `-Extensions`: see
    /// [`Session::headers`]).
    pub fn headers(&self) -> &HeaderMap {
        self.session.headers()
    }

    /// The raw query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.session.query()
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.session.query_param(name)
    }

    /// A path variable of the endpoint's URI template, percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.session.path_param(name)
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.session.remote_addr()
    }

    /// The negotiated subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.session.subprotocol()
    }

    /// The per-connection properties (shared with the session).
    pub fn properties(&self) -> &Properties {
        self.session.properties()
    }
}
