//! The wire: RFC 6455 as bytes, knowing nothing of sessions, endpoints or sockets.
//!
//! | file | what it holds |
//! |---|---|
//! | `coding` | the [`OpCode`](coding::OpCode) enum and the frame header's size bound |
//! | `frame` | the server-side decoder (limits, UTF-8, close payloads) and the frame encoder |
//! | `deflate` | permessage-deflate (RFC 7692): offer negotiation, per-message compression, bounded inflation |
//! | [`handshake`] | upgrade-request validation, the `101` answer, refusals and their HTTP statuses |
//!
//! Close-code validity has one rule, [`CloseCode::is_sendable`](crate::CloseCode::is_sendable),
//! used by the decoder for the peer's close frames and by `Session::close` for ours.
//!
//! Everything here works on slices and values: the connection wing (`connection/`) owns the
//! sockets and hands this wing the bytes it read, and the frames it wants written.

pub(crate) mod coding;
pub(crate) mod deflate;
pub(crate) mod frame;
pub mod handshake;
