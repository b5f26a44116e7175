//! Port of a Jakarta-tutorial `@ClientEndpoint`: an echo client that greets the server on open,
//! prints and collects what comes back, and closes; run against the echo example.
//!
//! ```text
//! cargo run --example echo                       # ws://127.0.0.1:8089/echo.do
//! cargo run --example port_client                # in another terminal
//! cargo run --example port_client -- --url ws://127.0.0.1:9000/echo.do
//! ```
//!
//! prints
//!
//! ```text
//! Connected to endpoint: /echo.do
//! Received: Hello, server!
//! Received: How are you?
//! Closed: 1000 (Bye)
//! Received 2 messages: [Hello, server!, How are you?]
//! ```
//!
//! The Java original (a `main` run with a Jakarta WebSocket client implementation, Tyrus for
//! instance, on the class path):
//!
//! ```java
//! @ClientEndpoint(configurator = EchoClient.HeaderConfigurator.class)
//! public class EchoClient {
//!     private final List<String> received = new CopyOnWriteArrayList<>();
//!     private final CountDownLatch replies = new CountDownLatch(2);
//!     private final CountDownLatch closed = new CountDownLatch(1);
//!
//!     @OnOpen
//!     public void onOpen(Session session) throws IOException {
//!         System.out.println("Connected to endpoint: " + session.getRequestURI());
//!         session.getBasicRemote().sendText("Hello, server!");
//!     }
//!
//!     @OnMessage
//!     public void onMessage(String message) {
//!         System.out.println("Received: " + message);
//!         received.add(message);
//!         replies.countDown();
//!     }
//!
//!     @OnClose
//!     public void onClose(Session session, CloseReason reason) {
//!         System.out.println("Closed: " + reason.getCloseCode().getCode()
//!                 + " (" + reason.getReasonPhrase() + ")");
//!         closed.countDown();
//!     }
//!
//!     @OnError
//!     public void onError(Session session, Throwable t) {
//!         System.err.println("Error: " + t.getMessage());
//!     }
//!
//!     public static class HeaderConfigurator extends ClientEndpointConfig.Configurator {
//!         @Override
//!         public void beforeRequest(Map<String, List<String>> headers) {
//!             headers.put("X-Client", Collections.singletonList("echo-client/1.0"));
//!         }
//!     }
//!
//!     public static void main(String[] args) throws Exception {
//!         WebSocketContainer container = ContainerProvider.getWebSocketContainer();
//!         EchoClient client = new EchoClient();
//!         Session session;
//!         try {
//!             session = container.connectToServer(client, URI.create("ws://localhost:8089/echo.do"));
//!         } catch (DeploymentException | IOException e) {
//!             System.err.println("Could not connect: " + e.getMessage());
//!             System.exit(1);
//!             return;
//!         }
//!         session.getBasicRemote().sendText("How are you?");
//!         if (!client.replies.await(5, TimeUnit.SECONDS)) {
//!             System.err.println("No echo within 5 s");
//!         }
//!         session.close(new CloseReason(CloseReason.CloseCodes.NORMAL_CLOSURE, "Bye"));
//!         client.closed.await(5, TimeUnit.SECONDS);
//!         System.out.println("Received " + client.received.size() + " messages: " + client.received);
//!     }
//! }
//! ```
//!
//! Each piece of the Java is quoted again next to its Rust counterpart below. What changed in
//! the port:
//! - `ContainerProvider.getWebSocketContainer()` is [`Client::new`]: the settings (limits,
//!   headers, timeouts, reconnect) in one value, no service loader.
//! - `connectToServer(client, URI)` is [`Client::connect`]: it resolves once the handshake is
//!   done and `on_open` ran, as Java's returns once `@OnOpen` ran; `DeploymentException` and
//!   `IOException` are one [`ConnectError`] naming the step that failed (`Connect` for a
//!   refused TCP connection, `Status` for a 404, ...). What it returns is a [`Connection`],
//!   which sends to the current session (and survives reconnections, when a policy is set).
//! - The latches are channels: `replies.countDown()` is a send on one, `await(5, SECONDS)` a
//!   bounded receive; `closed` is [`Connection::closed`], which resolves after `on_close`.
//! - The list shared by the endpoint and `main` is an `Arc<Mutex<Vec<String>>>`: the endpoint
//!   value moves into the connection's task, so `main` keeps the other handle.
//! - `session.getRequestURI()` on the client is the path and query ([`Session::request_uri`],
//!   the same accessor as on a server): `/echo.do`, where Tyrus prints the whole URI.
//! - `--url` replaces the hard-coded URI (its default is the same).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use endpoint::client::ClientConfigurator;
use endpoint::prelude::*;
use tokio::sync::mpsc;

/// ```java
/// public static class HeaderConfigurator extends ClientEndpointConfig.Configurator {
///     @Override
///     public void beforeRequest(Map<String, List<String>> headers) {
///         headers.put("X-Client", Collections.singletonList("echo-client/1.0"));
///     }
/// }
/// ```
///
/// `configurator = HeaderConfigurator` in the attribute, as in `@ClientEndpoint`: made with
/// `Default`, called before each attempt's request is sent.
#[derive(Default)]
pub(crate) struct HeaderConfigurator;

impl ClientConfigurator for HeaderConfigurator {
    fn before_request(&self, headers: &mut http::HeaderMap) {
        headers.insert(
            "x-client",
            http::HeaderValue::from_static("echo-client/1.0"),
        );
    }
}

/// ```java
/// @ClientEndpoint(configurator = EchoClient.HeaderConfigurator.class)
/// public class EchoClient {
///     private final List<String> received = new CopyOnWriteArrayList<>();
///     private final CountDownLatch replies = new CountDownLatch(2);
/// ```
pub(crate) struct EchoClient {
    received: Arc<Mutex<Vec<String>>>,
    replies: mpsc::UnboundedSender<()>,
}

#[client_endpoint(configurator = HeaderConfigurator)]
impl EchoClient {
    /// ```java
    /// @OnOpen
    /// public void onOpen(Session session) throws IOException {
    ///     System.out.println("Connected to endpoint: " + session.getRequestURI());
    ///     session.getBasicRemote().sendText("Hello, server!");
    /// }
    /// ```
    ///
    /// (Returning `"Hello, server!"` from the handler would send it too.)
    #[on_open]
    async fn on_open(&mut self, session: &Session) {
        println!("Connected to endpoint: {}", session.request_uri());
        if let Err(e) = session.send("Hello, server!").await {
            eprintln!("Error: {e}");
        }
    }

    /// ```java
    /// @OnMessage
    /// public void onMessage(String message) {
    ///     System.out.println("Received: " + message);
    ///     received.add(message);
    ///     replies.countDown();
    /// }
    /// ```
    #[on_message]
    fn on_message(&mut self, message: String) {
        println!("Received: {message}");
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
        // `main` may have stopped waiting: nobody to count down for, then.
        let _ = self.replies.send(());
    }

    /// ```java
    /// @OnClose
    /// public void onClose(Session session, CloseReason reason) {
    ///     System.out.println("Closed: " + reason.getCloseCode().getCode()
    ///             + " (" + reason.getReasonPhrase() + ")");
    ///     closed.countDown();
    /// }
    /// ```
    ///
    /// The `closed` latch is `Connection::closed()`, which resolves after this returned.
    #[on_close]
    fn on_close(&mut self, reason: CloseReason) {
        println!("Closed: {reason}");
    }

    /// ```java
    /// @OnError
    /// public void onError(Session session, Throwable t) {
    ///     System.err.println("Error: " + t.getMessage());
    /// }
    /// ```
    #[on_error]
    fn on_error(&mut self, error: &EndpointError) {
        eprintln!("Error: {error}");
    }
}

/// A Jakarta-tutorial @ClientEndpoint, ported: greets the echo server, prints the echoes, closes.
#[derive(Parser)]
#[command(name = "port_client")]
struct Args {
    /// The echo endpoint to connect to
    #[arg(
        long,
        value_name = "URL",
        default_value = "ws://127.0.0.1:8089/echo.do"
    )]
    url: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // WebSocketContainer container = ContainerProvider.getWebSocketContainer();
    let container = Client::new();
    // EchoClient client = new EchoClient();
    let received = Arc::new(Mutex::new(Vec::new()));
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let client = EchoClient {
        received: received.clone(),
        replies: replies_tx,
    };
    // session = container.connectToServer(client, URI.create("ws://localhost:8089/echo.do"));
    // catch (DeploymentException | IOException e) { ... System.exit(1); }
    let session = match container.connect(&args.url, client).await {
        Ok(connection) => connection,
        Err(e) => {
            eprintln!("Could not connect: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    // session.getBasicRemote().sendText("How are you?");
    if let Err(e) = session.send("How are you?").await {
        eprintln!("Error: {e}");
    }
    // if (!client.replies.await(5, TimeUnit.SECONDS)) System.err.println("No echo within 5 s");
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        for _ in 0..2 {
            replies.recv().await;
        }
    });
    if both.await.is_err() {
        eprintln!("No echo within 5 s");
    }
    // session.close(new CloseReason(CloseReason.CloseCodes.NORMAL_CLOSURE, "Bye"));
    // 1000 is always a code that may be sent: `close` cannot refuse it.
    let _ = session.close(CloseReason::new(CloseCode::NORMAL, "Bye"));
    // client.closed.await(5, TimeUnit.SECONDS);
    let _ = tokio::time::timeout(Duration::from_secs(5), session.closed()).await;
    // System.out.println("Received " + client.received.size() + " messages: " + client.received);
    let received = received.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "Received {} messages: [{}]",
        received.len(),
        received.join(", ")
    );
    std::process::ExitCode::SUCCESS
}
