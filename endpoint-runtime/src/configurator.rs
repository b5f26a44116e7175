//! [`Configurator`]: per-endpoint hooks into the opening handshake, the counterpart of Jakarta's
//! `ServerEndpointConfig.Configurator`.
//!
//! | Jakarta | here |
//! |---|---|
//! | `checkOrigin(String)` | [`Configurator::check_origin`] (refusal: `403`) |
//! | `modifyHandshake(config, request, response)` | [`Configurator::modify_handshake`]: read headers, cookies, query; set typed [`Properties`]; add response headers; **refuse with any status and body** (`401`, `403`, `429`...) |
//! | `getNegotiatedSubprotocol(supported, requested)` | [`Configurator::select_subprotocol`] |
//! | `getEndpointInstance(Class)` | [`Server::endpoint_with`](crate::Server::endpoint_with) (a factory) |
//!
//! Attach one with `#[server_endpoint("/path", configurator = MyConfigurator)]` (the type must
//! implement `Default`; one instance serves every handshake of the endpoint), or by implementing
//! [`Endpoint::configurator`](crate::Endpoint::configurator) by hand.
//!
//! # Cross-site WebSocket hijacking
//!
//! Browsers send cookies with WebSocket handshakes to any site, and the same-origin policy does
//! not apply to WebSockets. An endpoint that authenticates by cookie must therefore check the
//! `Origin` header, or a page on another site can open a socket with the user's cookies. Use
//! [`Server::allowed_origins`](crate::Server::allowed_origins) (checked first, server-wide) or
//! [`Configurator::check_origin`]; both refuse with `403`. Requests without `Origin` come from
//! non-browser clients and are not subject to this check; authenticate those with a token.
//!
//! # Examples
//!
//! ```
//! use endpoint_runtime::configurator::{Configurator, HandshakeRequest};
//! use endpoint_runtime::Rejection;
//! use http::StatusCode;
//!
//! #[derive(Clone, Debug)]
//! struct User(String);
//!
//! #[derive(Default)]
//! struct TokenAuth;
//!
//! impl Configurator for TokenAuth {
//!     fn check_origin(&self, origin: Option<&str>) -> bool {
//!         origin.is_none_or(|o| o == "https://chat.example")
//!     }
//!
//!     fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
//!         let token = request.query_param("token").or_else(|| request.cookie("token"));
//!         match token.as_deref() {
//!             Some("s3cret") => {
//!                 request.properties().insert(User("ada".into()));
//!                 Ok(())
//!             }
//!             _ => Err(Rejection::Status(StatusCode::UNAUTHORIZED, "a valid token is required\n".into())),
//!         }
//!     }
//! }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use crate::handshake::Rejection;
use crate::session::Properties;
use crate::state::{State, StateMap};
use crate::util;

/// Hooks into an endpoint's opening handshake. See the [module docs](self).
///
/// Every method has a default: accept every origin, change nothing, and choose the first
/// subprotocol of the client's list that the endpoint supports.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a configurator",
    label = "`configurator = ...` needs a type implementing `Configurator`",
    note = "implement `endpoint::Configurator` for `{Self}` (every method has a default) and derive `Default`"
)]
pub trait Configurator: Send + Sync + 'static {
    /// Whether to accept a handshake from this `Origin` (`None`: no `Origin` header, i.e. not a
    /// browser). Returning `false` refuses with `403 Forbidden`.
    fn check_origin(&self, origin: Option<&str>) -> bool {
        let _ = origin;
        true
    }

    /// Inspects (and may refuse) the handshake after the origin check: read headers, cookies and
    /// query, store typed per-connection [`Properties`] (the session carries them; every handler
    /// sees them), add response headers.
    ///
    /// # Errors
    /// A [`Rejection`], sent as the HTTP response instead of `101` (e.g.
    /// `Rejection::Status(StatusCode::UNAUTHORIZED, body)`).
    fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
        let _ = request;
        Ok(())
    }

    /// Chooses the subprotocol from the client's list (`requested`, in the client's order) and
    /// the endpoint's `subprotocols` (`supported`). `None`: no `Sec-WebSocket-Protocol` in the
    /// answer.
    fn select_subprotocol(&self, requested: &[String], supported: &[&str]) -> Option<String> {
        crate::handshake::choose_subprotocol(requested, supported)
    }
}

/// The handshake as a [`Configurator`] sees it: the request, and what it may change.
#[derive(Debug)]
pub struct HandshakeRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) path_params: Vec<(String, String)>,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) requested_protocols: Vec<String>,
    pub(crate) properties: Properties,
    pub(crate) response_headers: HeaderMap,
    pub(crate) state: Arc<StateMap>,
}

impl HandshakeRequest {
    /// The request method (always `GET` by the time a configurator runs).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Origin` header.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        util::query_param(self.uri.query()?, name)
    }

    /// Every value of a repeated query parameter, percent-decoded, in order (Jakarta's
    /// `getRequestParameterMap().get(name)`).
    pub fn query_params(&self, name: &str) -> Vec<String> {
        self.uri
            .query()
            .map(|q| util::query_params(q, name))
            .unwrap_or_default()
    }

    /// Shared state registered with [`Server::state`](crate::Server::state), e.g. a token store
    /// the configurator checks against.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        self.state.get::<T>()
    }

    /// A cookie's value from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"').to_owned())
    }

    /// A path variable of the endpoint's URI template, percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The subprotocols the client asked for, in its order.
    pub fn requested_subprotocols(&self) -> &[String] {
        &self.requested_protocols
    }

    /// Typed per-connection properties; what is stored here is what
    /// [`Session::properties`](crate::Session::properties) returns.
    pub fn properties(&self) -> &Properties {
        &self.properties
    }

    /// Extra headers for the `101 Switching Protocols` answer (e.g. `Set-Cookie`).
    pub fn response_headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.response_headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=1; token=\"xyz\"; b=2".parse().unwrap());
        let req = HandshakeRequest {
            method: Method::GET,
            uri: "/x?q=1".parse().unwrap(),
            headers,
            path_params: vec![],
            remote_addr: None,
            requested_protocols: vec![],
            properties: Properties::default(),
            response_headers: HeaderMap::new(),
            state: Arc::default(),
        };
        assert_eq!(req.cookie("token").as_deref(), Some("xyz"));
        assert_eq!(req.cookie("b").as_deref(), Some("2"));
        assert_eq!(req.cookie("c"), None);
        assert_eq!(req.query_param("q").as_deref(), Some("1"));
    }
}
