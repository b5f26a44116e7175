//! The classic `/echo.do` endpoint: every text or binary message is sent back as is.
//!
//! ```text
//! cargo run --example echo                        # ws://127.0.0.1:8089/echo.do
//! cargo run --example echo -- --addr 0.0.0.0:9000
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
    let addr = addr_arg();
    let server = Server::new().endpoint::<Echo>().bind(&addr).await?;
    println!("echo: ws://{}/echo.do", server.local_addr()?);
    server.run_until_signal().await
}

/// `--addr HOST:PORT`, default `127.0.0.1:8089`.
fn addr_arg() -> String {
    let mut addr = "127.0.0.1:8089".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().expect("--addr needs HOST:PORT"),
            s if s.starts_with("--addr=") => addr = s["--addr=".len()..].to_owned(),
            "-h" | "--help" => {
                println!("usage: echo [--addr HOST:PORT]   (default 127.0.0.1:8089)");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument `{other}`; usage: echo [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    addr
}
