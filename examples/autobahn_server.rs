//! The echo the Autobahn TestSuite judges the runtime by: every text and binary message sent
//! back as is, at `/`, on the public API, with permessage-deflate on and the size limits raised
//! for the suite (its cases send messages of up to 16 MiB).
//!
//! ```text
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9001
//! kosoku ws://127.0.0.1:9001/ -o target/autobahn          # or: scripts/autobahn
//! ```
//!
//! `scripts/autobahn` builds and runs this, runs all 517 cases with `kosoku` (PyPI), prints the
//! summary and fails unless every case is OK (see docs/CONFORMANCE.md).

use clap::Parser;
use endpoint::prelude::*;
use endpoint::Utf8Bytes;

#[derive(Default)]
struct Echo;

#[server_endpoint("/")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: Utf8Bytes) -> Utf8Bytes {
        text
    }

    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }
}

/// An echo at `/` for the Autobahn TestSuite, with the size limits raised for its cases.
#[derive(Parser)]
#[command(name = "autobahn_server")]
struct Args {
    /// Where to listen
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9001")]
    addr: String,
    /// Keep each side's compression window across messages (permessage-deflate context
    /// takeover), instead of the runtime's default of none
    #[arg(long)]
    context_takeover: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut limits = Limits::default();
    // The suite's largest messages are 16 MiB (cases 9.x); peers' suite servers raise theirs too.
    limits.max_message_size = 32 << 20;
    limits.max_frame_size = 32 << 20;
    limits.outbound_queue_bytes = 64 << 20;
    let takeover = args.context_takeover;
    // Compress every message the suite sends back (its echoes are small).
    limits.compression = Compression::enabled()
        .context_takeover(takeover, takeover)
        .min_size(0);
    let server = match Server::new()
        .endpoint::<Echo>()
        .limits(limits)
        .bind(&args.addr)
        .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("autobahn_server: cannot listen on {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    eprintln!("autobahn_server: ws://{}/", args.addr);
    if let Err(e) = server.run_until_signal().await {
        eprintln!("autobahn_server: {e}");
        std::process::exit(1);
    }
}
