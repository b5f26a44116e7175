//! # endpoint
//!
//! Jakarta-style (`@ServerEndpoint`) annotated WebSocket endpoints for Rust, on tokio and
//! hyper 1, with the runtime's own RFC 6455 layer.
//!
//! ```no_run
//! use endpoint::prelude::*;
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! #[server_endpoint("/echo.do")]
//! impl Echo {
//!     #[on_message]
//!     fn message(&mut self, text: String) -> String {
//!         text // the returned value is sent back
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     Server::new().endpoint::<Echo>().bind("127.0.0.1:8089").await?.run().await
//! }
//! ```
//!
//! This crate re-exports [`endpoint_runtime`] (server, sessions, rooms) and [`endpoint_macros`]
//! (`#[server_endpoint]`, `#[client_endpoint]` and the handler attributes). See the README for
//! the Java -> Rust table.

pub use endpoint_macros::{on_close, on_error, on_message, on_open, server_endpoint};
pub use endpoint_runtime::*;

/// A client endpoint (Jakarta's `@ClientEndpoint`): the same handlers and parameters as
/// [`macro@server_endpoint`], on a connection this program opens. It has no path (the URL is
/// given when connecting, Java's `container.connectToServer(endpoint, URI)`), no
/// `#[path_param]` and no `State<T>` (what the handlers need lives in the endpoint's fields);
/// it implements [`Endpoint`] (with [`EndpointConfig::client`]) and
/// [`ClientEndpoint`](client::ClientEndpoint).
///
/// ```
/// use endpoint::prelude::*;
/// use endpoint::client::{ClientConfigurator, ClientEndpoint};
///
/// #[derive(Default)]
/// struct Bearer;
///
/// impl ClientConfigurator for Bearer {
///     fn before_request(&self, headers: &mut http::HeaderMap) {
///         headers.insert("authorization", "Bearer s3cret".parse().unwrap());
///     }
/// }
///
/// struct Ticker {
///     symbol: String,
///     ticks: usize,
/// }
///
/// #[client_endpoint(subprotocols = ["ticks.v1"], configurator = Bearer)]
/// impl Ticker {
///     #[on_open]
///     async fn open(&mut self, session: &Session, handshake: &Handshake) {
///         let _ = handshake; // the server's `101`
///         let _ = session.send(format!("subscribe {}", self.symbol)).await;
///     }
///
///     #[on_message]
///     fn tick(&mut self, price: f64) -> Option<String> {
///         self.ticks += 1;
///         (price > 100.0).then(|| format!("sell {}", self.symbol)) // sent to the server
///     }
///
///     #[on_close]
///     fn close(&mut self, reason: CloseReason) {
///         println!("{}: {} ticks, closed with {}", self.symbol, self.ticks, reason.code().as_u16());
///     }
/// }
///
/// assert!(<Ticker as endpoint::Endpoint>::config().is_client());
/// assert!(<Ticker as ClientEndpoint>::client_configurator().is_some());
/// ```
pub use endpoint_macros::client_endpoint;

/// Everything an endpoint definition usually needs: `use endpoint::prelude::*;`.
pub mod prelude {
    pub use endpoint_macros::{
        client_endpoint, on_close, on_error, on_message, on_open, server_endpoint,
    };
    pub use endpoint_runtime::prelude::*;
}

#[doc(hidden)]
pub mod __private {
    pub use endpoint_runtime::__private::*;
}
