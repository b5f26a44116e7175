//! Port of the classic Java chat endpoint with a `static Set<Session>` of clients.
//!
//! ```text
//! cargo run --example port_chat                  # ws://127.0.0.1:8089/myChat/chat
//! cargo run --example port_chat -- --addr 0.0.0.0:9000
//! ```
//!
//! The Java original (deployed in the `/myChat` web application):
//!
//! ```java
//! @ServerEndpoint("/chat")
//! public class ChatServer {
//!     private static Set<Session> clients = Collections.synchronizedSet(new HashSet<Session>());
//!
//!     @OnOpen
//!     public void onOpen(Session session) {
//!         System.out.println(session);
//!         clients.add(session);
//!     }
//!
//!     @OnMessage
//!     public void onMessage(String message, Session session) throws IOException {
//!         System.out.println(message);
//!         synchronized (clients) {
//!             // Iterate over the connected sessions and broadcast the received message
//!             for (Session client : clients) {
//!                 if (!client.equals(session)) {
//!                     client.getBasicRemote().sendText(message);
//!                 }
//!             }
//!         }
//!     }
//!
//!     @OnClose
//!     public void onClose(Session session) {
//!         clients.remove(session);
//!     }
//! }
//! ```
//!
//! What changed in the port, and why:
//! - **No `static` set.** The runtime already keeps the open sessions of each endpoint:
//!   [`Session::open_sessions`] is `session.getOpenSessions()`, and [`Session::broadcast_others`]
//!   is the loop above. Nothing to add in `on_open` or remove in `on_close` (and nothing leaks
//!   when `onClose` is skipped, as the static set does when an `onOpen` throws).
//! - **No `synchronized`.** The Java loop holds the set's lock while it blocks on each client's
//!   `sendText`, so one slow client stalls every sender; and concurrent `sendText` calls on the
//!   same client from two `onMessage` threads fail with `TEXT_FULL_WRITING`. Here a broadcast
//!   queues the message (encoded once) on every recipient's bounded queue and returns at once;
//!   a client too slow to drain its queue is closed with `1008` instead of slowing the others.
//! - `throws IOException` has nothing to map to: queueing cannot fail for a closed recipient in
//!   a way the sender must handle (the [`Delivery`](endpoint::Delivery) counts say what happened).
//!
//! The literal translation of the loop also works, and shows `open_sessions()`:
//!
//! ```ignore
//! for client in session.open_sessions() {
//!     if client != *session {
//!         let _ = client.send(message.clone()).await; // waits if *that* client is slow
//!     }
//! }
//! ```

use clap::Parser;
use endpoint::prelude::*;

/// The endpoint; one instance per connection. No fields, no statics.
#[derive(Default)]
pub(crate) struct ChatServer;

#[server_endpoint("/chat")]
impl ChatServer {
    #[on_open]
    fn on_open(&mut self, session: &Session) {
        println!("{session:?}");
        // clients.add(session): the runtime registered it before on_open.
    }

    #[on_message]
    fn on_message(&mut self, message: String, session: &Session) -> Result<(), EndpointError> {
        println!("{message}");
        let delivery = session.broadcast_others(message)?;
        tracing::debug!(delivered = delivery.delivered, "broadcast");
        Ok(())
    }

    #[on_close]
    fn on_close(&mut self, session: &Session) {
        // clients.remove(session): the runtime unregisters it; nothing to do.
        tracing::debug!(session = %session.id(), "closed");
    }
}

/// The server of the port: the endpoint under the `/myChat` web-app context.
pub(crate) fn server() -> Server {
    Server::new()
        .context_path("/myChat")
        .endpoint::<ChatServer>()
}

/// Port of the classic Java chat endpoint with a static Set<Session> of clients.
#[allow(dead_code)] // unused when tests/ports.rs includes this file as a module
#[derive(Parser)]
#[command(name = "port_chat")]
struct Args {
    /// Where to listen (the endpoint is under /myChat)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    addr: String,
}

#[allow(dead_code)] // unused when tests/ports.rs includes this file as a module
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let server = server().bind(&args.addr).await?;
    println!("chat: ws://{}/myChat/chat", server.local_addr()?);
    server.run_until(endpoint::shutdown_signal()).await
}
