//! Shared bits of the benchmark servers.
//!
//! Every server listens on `127.0.0.1:PORT` (the port is the first argument) and serves:
//!
//! - `/echo`: every text and binary message is sent back as is.
//! - `/room`: the first text message is `sub` or `pub`, answered with the text `ok`. A `sub`
//!   connection has joined the one room; every binary message a `pub` connection sends is
//!   broadcast as is to every subscriber (the payload carries a sequence number and the
//!   client's send timestamp, which the load generator uses for latency).
//! - `/echo-deflate`, `/room-deflate` (endpoint and uWebSockets.js only): the same with
//!   permessage-deflate accepted, without context takeover either way (no zlib state held per
//!   connection; a broadcast can be compressed once for every recipient). `/room-deflate` is its
//!   own room, and its publisher sends text (JSON) messages: after the hello, every message of a
//!   `pub` connection is broadcast, text or binary.
//! - `/room-history`, `/recover` (endpoint only): `/room` through the room's stream
//!   (`Room::publish`, history in memory, or in Redis Streams when `BENCH_REDIS_URL` is set),
//!   and the recovery of missed messages (see `bin/endpoint.rs`).

/// The port from the first command-line argument.
pub fn port_arg() -> u16 {
    let arg = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!(
            "usage: {} PORT",
            std::env::args().next().unwrap_or_default()
        );
        std::process::exit(2)
    });
    arg.parse().unwrap_or_else(|_| {
        eprintln!("bad port `{arg}`");
        std::process::exit(2)
    })
}

/// The room's name.
pub const ROOM: &str = "bench";

/// The room of `/room-deflate`.
pub const ROOM_DEFLATE: &str = "bench-deflate";

/// The room of `/room-history`.
pub const ROOM_HISTORY: &str = "bench-history";

/// The room of `/recover`.
pub const ROOM_RECOVER: &str = "bench-recover";
