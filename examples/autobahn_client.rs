//! The client the Autobahn TestSuite judges the runtime's client side by: it follows the
//! suite's client protocol (`getCaseCount`, then `runCase?case=N&agent=A` for every case, each
//! an echo of every text and binary message, then `updateReports`), with permessage-deflate
//! offered and the size limits raised for the suite (its cases send messages of up to 16 MiB).
//!
//! ```text
//! kosoku -m fuzzingserver 127.0.0.1:9001 -o target/autobahn-client &
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001
//! ```
//!
//! `scripts/autobahn-client` does both, prints the summary and fails unless every case is OK
//! (see docs/CONFORMANCE.md).

use std::time::Duration;

use clap::Parser;
use endpoint::client::{Client, ClientEndpoint};
use endpoint::{Compression, Endpoint, EndpointConfig, HookResult, Limits, Message, Session};

/// Echoes every text and binary message.
struct Echo;

impl Endpoint for Echo {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        Ok(Some(message))
    }
}
impl ClientEndpoint for Echo {}

/// Keeps the first text message (the case count).
struct Count(tokio::sync::mpsc::UnboundedSender<String>);

impl Endpoint for Count {
    fn config() -> EndpointConfig {
        EndpointConfig::client()
    }
    async fn on_message(&mut self, _: &Session, message: Message) -> HookResult {
        if let Message::Text(text) = message {
            let _ = self.0.send(text.as_str().to_owned());
        }
        Ok(None)
    }
}
impl ClientEndpoint for Count {}

/// Runs the Autobahn TestSuite's client cases against a `kosoku -m fuzzingserver`.
#[derive(Parser)]
#[command(name = "autobahn_client")]
struct Args {
    /// The fuzzing server
    #[arg(long, default_value = "ws://127.0.0.1:9001")]
    url: String,
    /// The agent name the report lists
    #[arg(long, default_value = "endpoint")]
    agent: String,
    /// Keep our compression window across messages (permessage-deflate context takeover)
    #[arg(long)]
    context_takeover: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut limits = Limits::default();
    limits.max_message_size = 32 << 20;
    limits.max_frame_size = 32 << 20;
    limits.outbound_queue_bytes = 64 << 20;
    // No keep-alive pings of ours in the middle of the cases' exchanges.
    limits.ping_interval = None;
    limits.close_timeout = Duration::from_secs(3);
    let takeover = args.context_takeover;
    limits.compression = Compression::enabled()
        .context_takeover(takeover, takeover)
        .min_size(0);
    let client = Client::new().limits(limits);
    let base = args.url.trim_end_matches('/');

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let count = match client
        .connect(&format!("{base}/getCaseCount"), Count(tx))
        .await
    {
        Ok(connection) => {
            let _ = connection.closed().await;
            rx.recv().await.and_then(|n| n.trim().parse::<u32>().ok())
        }
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            std::process::exit(1);
        }
    };
    let Some(count) = count else {
        eprintln!("autobahn_client: the server sent no case count");
        std::process::exit(1);
    };
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={}", args.agent);
        match client.connect(&url, Echo).await {
            Ok(connection) => {
                let _ = connection.closed().await;
            }
            Err(e) => eprintln!("autobahn_client: case {case}: {e}"),
        }
    }
    let url = format!("{base}/updateReports?agent={}", args.agent);
    match client.connect(&url, Echo).await {
        Ok(connection) => {
            let _ = connection.closed().await;
        }
        Err(e) => {
            eprintln!("autobahn_client: updateReports: {e}");
            std::process::exit(1);
        }
    }
}
