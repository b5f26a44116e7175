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
//! (`#[server_endpoint]` and the handler attributes). See the README for the Java -> Rust table.

pub use endpoint_macros::{on_close, on_error, on_message, on_open, server_endpoint};
pub use endpoint_runtime::*;

/// Everything an endpoint definition usually needs: `use endpoint::prelude::*;`.
pub mod prelude {
    pub use endpoint_macros::{on_close, on_error, on_message, on_open, server_endpoint};
    pub use endpoint_runtime::prelude::*;
}

#[doc(hidden)]
pub mod __private {
    pub use endpoint_runtime::__private::*;
}
