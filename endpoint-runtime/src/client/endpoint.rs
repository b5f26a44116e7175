//! What a client endpoint is: an [`Endpoint`] (the same hooks, one at a time, `on_close` once and
//! last per connection) that is connected to a URL rather than served at a path, plus its
//! handshake hooks ([`ClientConfigurator`]).

use http::HeaderMap;

use crate::endpoint::Endpoint;

/// An endpoint that connects to a server: what `#[client_endpoint]` implements besides
/// [`Endpoint`] (Jakarta's `@ClientEndpoint`).
///
/// Its [`Endpoint::config`] is an [`EndpointConfig::client`](crate::EndpointConfig::client): no
/// path (the URL is given to [`Client::connect`](super::Client::connect)), the subprotocols to
/// offer, the message limits and whether to offer permessage-deflate.
///
/// # Examples
///
/// By hand (this is what the macro generates for the configurator):
///
/// ```
/// use endpoint_runtime::client::{ClientConfigurator, ClientEndpoint};
/// use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, Session};
///
/// #[derive(Default)]
/// struct Bearer;
/// impl ClientConfigurator for Bearer {
///     fn before_request(&self, headers: &mut http::HeaderMap) {
///         headers.insert("authorization", "Bearer s3cret".parse().unwrap());
///     }
/// }
///
/// struct Ticker;
/// impl Endpoint for Ticker {
///     fn config() -> EndpointConfig {
///         EndpointConfig::client().subprotocols(&["ticks.v1"])
///     }
///     async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
///         println!("{m:?}");
///         Ok(None)
///     }
/// }
/// impl ClientEndpoint for Ticker {
///     fn client_configurator() -> Option<Box<dyn ClientConfigurator>> {
///         Some(Box::new(Bearer))
///     }
/// }
/// ```
pub trait ClientEndpoint: Endpoint {
    /// The endpoint's handshake hooks (`configurator = T` in `#[client_endpoint]`); `None` by
    /// default. Called once per [`Client::connect`](super::Client::connect).
    fn client_configurator() -> Option<Box<dyn ClientConfigurator>>
    where
        Self: Sized,
    {
        None
    }
}

/// The client side of the handshake: Jakarta's `ClientEndpointConfig.Configurator`.
///
/// | Jakarta | here |
/// |---|---|
/// | `beforeRequest(Map<String, List<String>> headers)` | [`before_request`](ClientConfigurator::before_request): add or change request headers (cookies, tokens) |
/// | `afterResponse(HandshakeResponse hr)` | [`after_response`](ClientConfigurator::after_response): read the `101`'s headers (`Set-Cookie`, ...); an `Err` refuses the connection |
///
/// | (Tyrus: a new `connectToServer` per URL) | [`request_url`](ClientConfigurator::request_url): the URL of each attempt, e.g. with the position to resume from after a reconnection |
///
/// All run on every attempt, reconnections included.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a client configurator",
    label = "`configurator = ...` of a `#[client_endpoint]` needs a type implementing `ClientConfigurator`",
    note = "implement `endpoint::client::ClientConfigurator` for `{Self}` (every method has a default) and derive `Default`; a server's `Configurator` does not configure a client's handshake"
)]
pub trait ClientConfigurator: Send + Sync + 'static {
    /// The URL of this attempt instead of `url` (the one given to `connect`, or what an earlier
    /// configurator returned); `None` keeps it. A client that resumes where it left off after
    /// a reconnection (a room's `?epoch=E&since=OFFSET`) shares its position with its
    /// configurator and answers it here.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use endpoint_runtime::client::ClientConfigurator;
    ///
    /// /// The last offset the endpoint saw (it holds the other clone).
    /// struct Resume(Arc<Mutex<Option<u64>>>);
    /// impl ClientConfigurator for Resume {
    ///     fn request_url(&self, url: &str) -> Option<String> {
    ///         let since = (*self.0.lock().unwrap())?;
    ///         Some(format!("{url}&since={since}"))
    ///     }
    /// }
    /// let last = Arc::new(Mutex::new(Some(41)));
    /// let resume = Resume(last.clone());
    /// assert_eq!(resume.request_url("ws://h/chat/a?name=ada").unwrap(), "ws://h/chat/a?name=ada&since=41");
    /// ```
    fn request_url(&self, url: &str) -> Option<String> {
        let _ = url;
        None
    }

    /// Called with the upgrade request's headers before it is sent; the handshake's own
    /// headers (`Sec-WebSocket-*`, `Upgrade`, `Connection`, `Host`) are set after it and win.
    fn before_request(&self, headers: &mut HeaderMap) {
        let _ = headers;
    }

    /// Called with the headers of the server's `101`, once the handshake checked out. An
    /// `Err` fails the attempt with [`ConnectError::Refused`](super::ConnectError::Refused)
    /// naming the reason.
    fn after_response(&self, headers: &HeaderMap) -> Result<(), String> {
        let _ = headers;
        Ok(())
    }
}
