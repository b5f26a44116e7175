//! [`Server`]: registers endpoints and shared state, binds, accepts, upgrades and shuts down.
//!
//! | file | what it holds |
//! |---|---|
//! | `builder` | [`Server`], the builder, and what building it makes |
//! | `run` | [`BoundServer`]'s accept loop, [`EndpointService`] (a hyper and a tower service), [`ServerHandle`], graceful shutdown |
//! | `http` | TLS, HTTP/1.1 and HTTP/2 serving (ALPN, or the h2 preface in cleartext): an upgrade, or the fallback |
//! | `upgrade` | one upgrade: `negotiate` (every check, or a refusal) then `accept` (`101`; `200` for an HTTP/2 extended CONNECT) |
//! | `mount` | an endpoint type behind a type-erased mount, and the task of each connection |
//! | `state` | `ServerState`: a built server's routes, tasks, shutdown signals |
//!
//! In that order each file uses only those below it.
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
//! # HTTP/2
//!
//! The listener speaks HTTP/2 beside HTTP/1.1 (see [`Server::http2`], on by default): a
//! WebSocket then opens with an extended CONNECT (RFC 8441) and is answered `200`, and many of
//! them share one TCP connection, each a session of its own.
//!
//! # Shutdown
//!
//! [`BoundServer::run_until`] stops accepting when its future completes, sends `1001 Going Away`
//! to every open session, waits for their `on_close` (at most
//! [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout)), then returns. HTTP/2
//! connections send GOAWAY and stay up until the closing handshakes of their streams are done.

mod builder;
mod http;
mod mount;
mod run;
mod state;
mod upgrade;

pub use builder::Server;
pub use run::{shutdown_signal, BoundServer, EndpointService, ServerHandle};
pub use state::{HttpRequest, HttpResponse};
