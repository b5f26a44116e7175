//! The classic `/echo.do` endpoint: every text or binary message is sent back as is.
//!
//! ```text
//! cargo run --example echo                        # ws://127.0.0.1:8089/echo.do
//! cargo run --example echo -- --addr 0.0.0.0:9000
//! cargo run --example echo --features tls -- --tls-cert cert.pem --tls-key key.pem   # wss://
//! ```
//!
//! The Java original it mirrors:
//!
//! ```java
//! @ServerEndpoint("/echo.do")
//! public class Echo {
//!     @OnOpen    public void open(Session session) { }
//!     @OnMessage public String text(String message) { return message; }
//!     @OnMessage public ByteBuffer binary(ByteBuffer data) { return data; }
//!     @OnError   public void error(Session session, Throwable t) { }
//!     @OnClose   public void close(Session session, CloseReason reason) { }
//! }
//! ```
//!
//! It also serves `/echoStream`, which echoes each frame's part as it arrives: see
//! [`EchoStream`].

use clap::Parser;
use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo.do")]
impl Echo {
    #[on_open]
    fn open(&mut self, session: &Session) {
        tracing::info!(session = %session.id(), peer = ?session.remote_addr(), "open");
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_message]
    fn binary(&mut self, data: Bytes) -> Bytes {
        data
    }

    #[on_error]
    fn error(&mut self, session: &Session, error: &EndpointError) {
        tracing::warn!(session = %session.id(), %error, "error");
    }

    #[on_close]
    fn close(&mut self, session: &Session, reason: CloseReason) {
        tracing::info!(session = %session.id(), %reason, "closed");
    }
}

/// `/echoStream`: each part of a text or binary message is echoed as it arrives, with its
/// `last` flag, so a message of any size goes through in the memory of one frame; pongs are
/// taken and ignored. A port of Tomcat's `websocket.echo.EchoAnnotation`:
///
/// ```java
/// @ServerEndpoint("/websocket/echoAnnotation")
/// public class EchoAnnotation {
///     @OnMessage
///     public void echoTextMessage(Session session, String msg, boolean last) {
///         try {
///             if (session.isOpen()) {
///                 session.getBasicRemote().sendText(msg, last);
///             }
///         } catch (IOException ioe) {
///             try { session.close(); } catch (IOException ignore) { }
///         }
///     }
///
///     @OnMessage
///     public void echoBinaryMessage(Session session, ByteBuffer bb, boolean last) {
///         try {
///             if (session.isOpen()) {
///                 session.getBasicRemote().sendBinary(bb, last);
///             }
///         } catch (IOException ioe) {
///             try { session.close(); } catch (IOException ignore) { }
///         }
///     }
///
///     @OnMessage
///     public void echoPongMessage(PongMessage pm) { /* NO-OP */ }
/// }
/// ```
///
/// `getBasicRemote().sendText(part, last)` is a writer kept by the endpoint
/// (`Session::text_writer`): its parts go out as continuation frames, and it starts the next
/// message after a last part. A send that fails means the session closed (Java's
/// `IOException`): it is closed from here too, as the Java does.
#[derive(Default)]
struct EchoStream {
    text: Option<endpoint::TextWriter>,
    binary: Option<endpoint::BinaryWriter>,
}

#[server_endpoint("/echoStream")]
impl EchoStream {
    #[on_message]
    async fn text(&mut self, session: &Session, part: String, last: bool) {
        if session.is_open() {
            let writer = self.text.get_or_insert_with(|| session.text_writer());
            if writer.send(part, last).await.is_err() {
                // 1000 is always a code that may be sent: `close` cannot refuse it.
                let _ = session.close(CloseReason::normal());
            }
        }
    }

    #[on_message]
    async fn binary(&mut self, session: &Session, part: Bytes, last: bool) {
        if session.is_open() {
            let writer = self.binary.get_or_insert_with(|| session.binary_writer());
            if writer.send(part, last).await.is_err() {
                // 1000 is always a code that may be sent: `close` cannot refuse it.
                let _ = session.close(CloseReason::normal());
            }
        }
    }

    #[on_message]
    fn pong(&mut self, _pong: Pong) {}
}

/// The classic /echo.do endpoint: every text or binary message is sent back as is.
#[derive(Parser)]
#[command(name = "echo")]
struct Args {
    /// Where to listen
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    addr: String,
    /// Certificate chain to serve wss:// with, together with --tls-key (needs the tls feature;
    /// without both, plain ws://)
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<String>,
    /// Private key of the --tls-cert certificate
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // HTTP/2 beside HTTP/1.1 (RFC 8441): h2c by prior knowledge on the plain port, ALPN `h2`
    // with TLS. (On by default; `.http2(false)` serves HTTP/1.1 only.)
    let server = Server::new()
        .http2(true)
        .endpoint::<Echo>()
        .endpoint::<EchoStream>();
    let (server, scheme) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (with_tls(server, cert, key)?, "wss"),
        // One without the other never gets here: clap refuses it (`requires`).
        _ => (server, "ws"),
    };
    let server = match server.bind(&args.addr).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "echo: cannot listen on {}: {e}{}",
                args.addr,
                in_use_hint(&e)
            );
            std::process::exit(1);
        }
    };
    println!("echo: {scheme}://{}/echo.do", server.local_addr()?);
    println!("echo: {scheme}://{}/echoStream", server.local_addr()?);
    // Ctrl-C / SIGTERM: 1001 to every session, then exit; a second signal exits at once.
    server.run_until_signal().await
}

#[cfg(feature = "tls")]
fn with_tls(server: Server, cert: &str, key: &str) -> std::io::Result<Server> {
    Ok(server.tls(endpoint::tls::TlsConfig::from_pem_files(cert, key)?))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Server, _: &str, _: &str) -> std::io::Result<Server> {
    eprintln!(
        "echo: --tls-cert/--tls-key need the `tls` feature: cargo run --example echo --features tls"
    );
    std::process::exit(2);
}

/// What to do when the port is taken (the chat example listens on the same default port).
fn in_use_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        "\n(another server, perhaps the chat example, is listening there: stop it, or pass --addr HOST:PORT)"
    } else {
        ""
    }
}
