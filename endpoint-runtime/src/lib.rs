//! # endpoint-runtime
//!
//! The runtime of the `endpoint` WebSocket framework: a hyper 1 server that upgrades requests
//! on the paths of registered [`Endpoint`]s, and drives each connection through the endpoint's
//! lifecycle hooks. The WebSocket protocol layer (RFC 6455 framing and handshake) is the
//! runtime's own, built to hold no buffer for an idle connection.
//!
//! Most users depend on the `endpoint` facade and write `#[server_endpoint]` impls; this crate
//! is usable on its own by implementing [`Endpoint`] by hand.
//!
//! # Where things live
//!
//! The runtime is five wings, each a folder; arrows point down the list (a wing uses the ones
//! below it, never one above), and the files at the top level are the vocabulary all of them
//! share. `ARCHITECTURE.md` at the repository root follows a message and a broadcast through
//! them.
//!
//! | wing | concept |
//! |---|---|
//! | [`server`] (`server/`) | [`Server`] builder, accept loop, mounts, HTTP serving, upgrade (negotiate, accept), graceful shutdown |
//! | `connection/` | the per-connection driver (hooks one at a time, coalesced writes; the one place a session meets its bytes), frame I/O, transport, deadlines |
//! | [`rooms`] (`rooms/`) | rooms, membership, fan-out (with feature `io-uring`, its writes batched through io_uring: `rooms/fanout/ring.rs`), this-node vs cluster-wide reach ([`Room`], [`LocalRoom`], [`Rooms`], [`Delivery`]), [`broker`], `redis` |
//! | [`session`] (`session/`) | [`Session`], its outbound queue (sending and receiving sides), request data, [`Properties`], [`Handshake`], the per-endpoint registry |
//! | `protocol/` | the wire, no sessions: opcodes, the frame codec, [`handshake`] validation and refusals |
//!
//! | shared vocabulary | concept |
//! |---|---|
//! | [`endpoint`] | the [`Endpoint`] trait the macro implements, [`EndpointConfig`] |
//! | [`configurator`] | [`Configurator`]: origin checks, handshake inspection/refusal, subprotocol choice |
//! | [`message`] | [`Message`], [`Utf8Bytes`], [`CloseCode`], [`CloseReason`], [`Decode`], [`Encode`] |
//! | [`error`] | [`EndpointError`] and which errors close with which code |
//! | [`router`] | URI-template routing |
//! | [`config`] | [`Limits`] and their defaults |
//! | [`state`] | [`State<T>`] shared state |
//! | [`stats`] | [`Stats`] counters |

pub mod client;
pub mod config;
pub mod configurator;
mod connection;
pub mod endpoint;
pub mod error;
#[cfg(feature = "json")]
mod json;
pub mod message;
mod protocol;
pub mod rooms;
pub mod router;
pub mod server;
pub mod session;
pub mod state;
pub mod stats;
pub mod test;
#[cfg(feature = "tls")]
pub mod tls;
mod utf8;
mod util;

#[doc(hidden)]
pub mod __fuzz;
#[doc(hidden)]
pub mod __private;

pub use protocol::handshake;
#[doc(hidden)]
pub use rooms as room;
pub use rooms::broker;
pub use rooms::history;
#[cfg(feature = "redis")]
pub use rooms::redis;

pub use bytes::Bytes;
pub use config::{Compression, Limits, SlowConsumer};
pub use configurator::{Configurator, HandshakeRequest};
pub use endpoint::{Endpoint, EndpointConfig, HookResult, MessageMode, Unhandled};
pub use error::{BoxError, DecodeError, EndpointError, SendError};
pub use handshake::Rejection;
#[cfg(feature = "json")]
pub use json::Json;
pub use message::{
    CloseCode, CloseReason, Decode, Encode, IntoReply, Message, PayloadKind, Pong, Utf8Bytes,
};
pub use rooms::{Delivery, Hub, LocalRoom, Room, Rooms};
pub use server::{shutdown_signal, BoundServer, EndpointService, Server, ServerHandle};
pub use session::{BinaryStream, BinaryWriter, MessageStream, TextStream, TextWriter};
pub use session::{Handshake, Properties, Session, SessionId};
pub use state::State;
pub use stats::Stats;

/// The names an endpoint definition usually needs.
pub mod prelude {
    pub use crate::client::{Client, ClientConfigurator, ConnectError, Connection, Reconnect};
    #[cfg(feature = "json")]
    pub use crate::Json;
    pub use crate::{BinaryStream, TextStream};
    pub use crate::{
        Bytes, CloseCode, CloseReason, Compression, Configurator, Decode, DecodeError, Encode,
        EndpointError, Handshake, HandshakeRequest, Limits, Message, PayloadKind, Pong, Rejection,
        Room, Server, Session, State,
    };
}
