//! Port of the classic Spring/Tomcat `echo.do` endpoint and its browser client.
//!
//! ```text
//! cargo run --example port_echo                  # ws://127.0.0.1:8089/myChat/echo.do
//! cargo run --example port_echo -- --addr 0.0.0.0:9000
//! open http://127.0.0.1:8089/myChat/             # the browser client of the original
//! ```
//!
//! The Java original (a web application deployed under the context path `/myChat`, so the
//! browser connects to `ws://localhost:8089/myChat/echo.do`; `web.xml` declares
//! `<async-supported>true</async-supported>` on the `DispatcherServlet`):
//!
//! ```java
//! @Controller
//! @ServerEndpoint(value = "/echo.do")
//! public class WebSocketEcho {
//!     private static final Logger logger = LoggerFactory.getLogger(WebSocketEcho.class);
//!
//!     @OnOpen
//!     public void onOpen(Session session) {
//!         logger.info("Open session id:" + session.getId());
//!         try {
//!             final Basic basic = session.getBasicRemote();
//!             basic.sendText("Connection Established");
//!         } catch (Exception e) {
//!             System.out.println(e.getMessage());
//!         }
//!     }
//!
//!     @OnMessage
//!     public void onMessage(String message, Session session) {
//!         logger.info("Message From " + session.getId() + ": " + message);
//!         try {
//!             final Basic basic = session.getBasicRemote();
//!             basic.sendText("to : " + message);
//!         } catch (Exception e) {
//!             System.out.println(e.getMessage());
//!         }
//!     }
//!
//!     @OnError
//!     public void onError(Throwable e, Session session) {
//!         logger.info("Error session id:" + session.getId() + " " + e.getMessage());
//!     }
//!
//!     @OnClose
//!     public void onClose(Session session) {
//!         logger.info("Session " + session.getId() + " has ended");
//!     }
//! }
//! ```
//!
//! What changed in the port:
//! - `@Controller` is gone: there is no container to register the bean with; the endpoint is
//!   registered on the [`Server`] (`server()` below).
//! - `getBasicRemote().sendText(..)` and its `try/catch` become `session.send(..).await`, whose
//!   only failure is "the session is closed". Returning the `String` from `on_message` would
//!   send it too (`fn message(&mut self, text: String) -> String`).
//! - `web.xml`'s `<async-supported>` has no counterpart: everything here is asynchronous.
//! - the web-app context `/myChat` is `Server::context_path("/myChat")`; the browser page the
//!   original shipped as a JSP is served by a fallback service at `/myChat/`.
//! - a binary message gets the same answer as from Tomcat: the endpoint has no binary handler,
//!   so the session is closed with `1003` (`CANNOT_ACCEPT`).

use clap::Parser;
use endpoint::prelude::*;
use endpoint::server::{HttpRequest, HttpResponse};

/// The endpoint; one instance per connection, like Tomcat's default.
#[derive(Default)]
pub(crate) struct WebSocketEcho;

#[server_endpoint("/echo.do")]
impl WebSocketEcho {
    #[on_open]
    async fn on_open(&mut self, session: &Session) {
        tracing::info!("Open session id:{}", session.id());
        if let Err(e) = session.send("Connection Established").await {
            println!("{e}");
        }
    }

    #[on_message]
    async fn on_message(&mut self, message: String, session: &Session) {
        tracing::info!("Message From {}: {message}", session.id());
        if let Err(e) = session.send(format!("to : {message}")).await {
            println!("{e}");
        }
    }

    #[on_error]
    fn on_error(&mut self, e: &EndpointError, session: &Session) {
        tracing::info!("Error session id:{} {e}", session.id());
    }

    #[on_close]
    fn on_close(&mut self, session: &Session) {
        tracing::info!("Session {} has ended", session.id());
    }
}

/// The web-app context the original was deployed under.
pub(crate) const CONTEXT_PATH: &str = "/myChat";

/// The server of the port: the endpoint under `/myChat`, and the browser client at `/myChat/`.
pub(crate) fn server() -> Server {
    Server::new()
        .context_path(CONTEXT_PATH)
        .endpoint::<WebSocketEcho>()
        .fallback(|req: HttpRequest| async move { page(&req) })
}

/// The plain-HTTP side: the client page, a redirect from `/`, `426` for a plain GET of the
/// endpoint (what the server answers without a fallback), `404` for the rest.
fn page(req: &HttpRequest) -> HttpResponse {
    let mut res = HttpResponse::new(Bytes::new().into());
    match req.uri().path() {
        "/myChat/" | "/myChat/index.html" => {
            *res.body_mut() = Bytes::from_static(CLIENT_PAGE.as_bytes()).into();
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
        }
        "/" | "/myChat" => {
            *res.status_mut() = http::StatusCode::FOUND;
            res.headers_mut().insert(
                http::header::LOCATION,
                http::HeaderValue::from_static("/myChat/"),
            );
        }
        "/myChat/echo.do" => {
            *res.status_mut() = http::StatusCode::UPGRADE_REQUIRED;
            *res.body_mut() = Bytes::from_static(b"this is a WebSocket endpoint\n").into();
            res.headers_mut().insert(
                http::header::SEC_WEBSOCKET_VERSION,
                http::HeaderValue::from_static("13"),
            );
        }
        _ => {
            *res.status_mut() = http::StatusCode::NOT_FOUND;
            *res.body_mut() = Bytes::from_static(b"not found\n").into();
        }
    }
    res
}

/// The browser client of the seed notes: `new WebSocket(".../myChat/echo.do")`, the four
/// events, and `send`. Output goes through `textContent`, never `innerHTML`, so a message
/// cannot inject markup.
pub(crate) const CLIENT_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>echo.do</title>
<style>
  body { font-family: sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>WebSocket echo</h1>
<form id="form">
  <input id="message" autocomplete="off" autofocus placeholder="message">
  <button>send</button>
  <button type="button" id="disconnect">disconnect</button>
</form>
<div id="log"></div>
<script>
  // The original hard-codes ws://localhost:8089/myChat/echo.do; derive it from the page so
  // that --addr works too.
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + location.host + "/myChat/echo.do");
  var log = document.getElementById("log");

  function write(line) {
    var div = document.createElement("div");
    div.textContent = line; // escaped: text, not markup
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  ws.onopen = function (event) { write("[open]"); };
  ws.onmessage = function (event) { write(event.data); };
  ws.onclose = function (event) { write("[close " + event.code + " " + event.reason + "]"); };
  ws.onerror = function (event) { write("[error]"); };

  document.getElementById("form").onsubmit = function (event) {
    event.preventDefault();
    var input = document.getElementById("message");
    if (ws.readyState === WebSocket.OPEN && input.value !== "") {
      ws.send(input.value);
      input.value = "";
    }
  };
  document.getElementById("disconnect").onclick = function () { ws.close(1000, "bye"); };
</script>
</body>
</html>
"#;

/// Port of the classic Spring/Tomcat echo.do endpoint and its browser client.
#[allow(dead_code)] // unused when tests/ports.rs includes this file as a module
#[derive(Parser)]
#[command(name = "port_echo")]
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
    let local = server.local_addr()?;
    println!("echo.do: ws://{local}/myChat/echo.do   client page: http://{local}/myChat/");
    server.run_until(endpoint::shutdown_signal()).await
}
