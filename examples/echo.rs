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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let server = Server::new().endpoint::<Echo>();
    let (server, scheme) = match (&args.tls_cert, &args.tls_key) {
        (None, None) => (server, "ws"),
        (Some(cert), Some(key)) => (with_tls(server, cert, key)?, "wss"),
        _ => usage_error("--tls-cert and --tls-key go together"),
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
    // Ctrl-C / SIGTERM: 1001 to every session, then exit; a second signal exits at once.
    server.run_until_signal().await
}

#[cfg(feature = "tls")]
fn with_tls(server: Server, cert: &str, key: &str) -> std::io::Result<Server> {
    Ok(server.tls(endpoint::tls::TlsConfig::from_pem_files(cert, key)?))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Server, _: &str, _: &str) -> std::io::Result<Server> {
    usage_error(
        "--tls-cert/--tls-key need the `tls` feature: cargo run --example echo --features tls",
    )
}

const USAGE: &str = "usage: echo [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM]
  --addr HOST:PORT   where to listen (default 127.0.0.1:8089)
  --tls-cert PEM     certificate chain for wss:// (with --tls-key; needs --features tls)
  --tls-key PEM      private key for wss://";

struct Args {
    addr: String,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

impl Args {
    /// `--addr HOST:PORT` (default `127.0.0.1:8089`), `--tls-cert`, `--tls-key`.
    fn parse() -> Args {
        let mut out = Args {
            addr: "127.0.0.1:8089".to_owned(),
            tls_cert: None,
            tls_key: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline.clone().or_else(|| args.next()).unwrap_or_else(|| {
                    usage_error(&format!("{flag} needs a value"));
                })
            };
            match flag.as_str() {
                "--addr" => out.addr = value(),
                "--tls-cert" => out.tls_cert = Some(value()),
                "--tls-key" => out.tls_key = Some(value()),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => usage_error(&format!("unknown argument `{other}`")),
            }
        }
        out
    }
}

/// What to do when the port is taken (the chat example listens on the same default port).
fn in_use_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        "\n(another server, perhaps the chat example, is listening there: stop it, or pass --addr HOST:PORT)"
    } else {
        ""
    }
}

fn usage_error(why: &str) -> ! {
    eprintln!("echo: {why}\n{USAGE}");
    std::process::exit(2);
}
