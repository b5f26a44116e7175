//! Port of a Java endpoint authenticated by a `ServerEndpointConfig.Configurator`.
//!
//! ```text
//! cargo run --example port_auth                  # ws://127.0.0.1:8089/myChat/secure.do?token=...
//! cargo run --example port_auth -- --addr 0.0.0.0:9000
//! ```
//!
//! Tokens of the demo: `s3cret-ada` (user `ada`) and `s3cret-bob` (user `bob`), in the query
//! (`?token=s3cret-ada`) or in a cookie (`Cookie: token=s3cret-ada`).
//!
//! The Java original (deployed in the `/myChat` web application):
//!
//! ```java
//! public class AuthConfigurator extends ServerEndpointConfig.Configurator {
//!     private static final Map<String, String> TOKENS =
//!         Map.of("s3cret-ada", "ada", "s3cret-bob", "bob");
//!
//!     @Override
//!     public boolean checkOrigin(String origin) {
//!         // the only refusal a configurator has: false -> 403
//!         return origin == null || origin.equals("http://localhost:8089");
//!     }
//!
//!     @Override
//!     public void modifyHandshake(ServerEndpointConfig config, HandshakeRequest request,
//!                                 HandshakeResponse response) {
//!         String token = null;
//!         List<String> fromQuery = request.getParameterMap().get("token");
//!         if (fromQuery != null && !fromQuery.isEmpty()) {
//!             token = fromQuery.get(0);
//!         } else {
//!             for (String cookie : request.getHeaders().getOrDefault("cookie", List.of())) {
//!                 for (String pair : cookie.split(";")) {
//!                     String[] kv = pair.trim().split("=", 2);
//!                     if (kv.length == 2 && kv[0].equals("token")) token = kv[1];
//!                 }
//!             }
//!         }
//!         String user = token == null ? null : TOKENS.get(token);
//!         // No way to answer 401 from here: the handshake goes on. The user (or null) is passed
//!         // to the endpoint through the *shared* config's user properties -- racy under load.
//!         config.getUserProperties().put("user", user);
//!     }
//! }
//!
//! @ServerEndpoint(value = "/secure.do", configurator = AuthConfigurator.class)
//! public class SecureEndpoint {
//!     @OnOpen
//!     public void onOpen(Session session, EndpointConfig config) throws IOException {
//!         String user = (String) config.getUserProperties().get("user");
//!         if (user == null) {
//!             // too late for a 401: the socket is open, all we can do is close it
//!             session.close(new CloseReason(CloseCodes.VIOLATED_POLICY, "unauthorized"));
//!             return;
//!         }
//!         session.getUserProperties().put("user", user);
//!         session.getBasicRemote().sendText("welcome " + user);
//!     }
//!
//!     @OnMessage
//!     public String onMessage(String message, Session session) {
//!         return session.getUserProperties().get("user") + ": " + message;
//!     }
//!
//!     @OnError
//!     public void onError(Session session, Throwable t) {
//!         System.out.println(session.getUserProperties().get("user") + " error: " + t);
//!     }
//!
//!     @OnClose
//!     public void onClose(Session session, CloseReason reason) {
//!         System.out.println("bye " + session.getUserProperties().get("user"));
//!     }
//! }
//! ```
//!
//! What changed in the port, and why:
//! - **A missing or invalid token is refused with `401 Unauthorized` and a body**, before the
//!   upgrade: `modify_handshake` returns `Err(Rejection::Status(401, ..))`. The Java configurator
//!   cannot refuse at all (`modifyHandshake` returns `void`; only `checkOrigin` can refuse, and
//!   only with `403`), so the original accepts the socket and closes it at once with `1008`.
//! - **The user is stored per connection**, as a typed value in the handshake's properties,
//!   which become [`Session::properties`]: every handler (`on_open`, `on_message`, `on_error`,
//!   `on_close`) sees it. In Java, `modifyHandshake` only has the `ServerEndpointConfig`, which
//!   is shared by all connections of the endpoint, so two simultaneous handshakes can swap users.
//! - `checkOrigin` is `check_origin`, with the same `403`.

use clap::Parser;
use endpoint::prelude::*;
use http::StatusCode;

/// The authenticated user (the Java `getUserPrincipal()`/`"user"` property), stored in the
/// session's properties by the configurator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User(pub(crate) String);

/// The demo's token table.
pub(crate) fn user_for(token: &str) -> Option<&'static str> {
    match token {
        "s3cret-ada" => Some("ada"),
        "s3cret-bob" => Some("bob"),
        _ => None,
    }
}

/// The origins a browser may connect from (the defence against cross-site WebSocket hijacking:
/// the token may come from a cookie, which the browser sends to any site's page).
pub(crate) const ALLOWED_ORIGINS: &[&str] = &["http://localhost:8089", "http://127.0.0.1:8089"];

/// `ServerEndpointConfig.Configurator`: the origin check and the authentication.
#[derive(Default)]
pub(crate) struct AuthConfigurator;

impl Configurator for AuthConfigurator {
    fn check_origin(&self, origin: Option<&str>) -> bool {
        origin.is_none_or(|o| ALLOWED_ORIGINS.contains(&o))
    }

    fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
        let token = request
            .query_param("token")
            .or_else(|| request.cookie("token"));
        let Some(token) = token else {
            return Err(Rejection::Status(
                StatusCode::UNAUTHORIZED,
                "missing token: connect with ?token=... or a `token` cookie\n".into(),
            ));
        };
        let Some(user) = user_for(&token) else {
            return Err(Rejection::Status(
                StatusCode::UNAUTHORIZED,
                "invalid token\n".into(),
            ));
        };
        request.properties().insert(User(user.to_owned()));
        request.response_headers_mut().insert(
            "x-authenticated-user",
            user.parse().expect("ascii user name"),
        );
        Ok(())
    }
}

/// The endpoint; it only runs for authenticated connections.
#[derive(Default)]
pub(crate) struct SecureEndpoint;

/// The user of a session, as every handler reads it.
fn user(session: &Session) -> String {
    session
        .properties()
        .with(|u: &User| u.0.clone())
        .unwrap_or_else(|| "null".to_owned()) // never: the configurator refused those
}

#[server_endpoint("/secure.do", configurator = AuthConfigurator)]
impl SecureEndpoint {
    #[on_open]
    fn on_open(&mut self, session: &Session) -> String {
        format!("welcome {}", user(session))
    }

    #[on_message]
    fn on_message(&mut self, message: String, session: &Session) -> String {
        format!("{}: {message}", user(session))
    }

    #[on_error]
    fn on_error(&mut self, session: &Session, t: &EndpointError) {
        println!("{} error: {t}", user(session));
    }

    #[on_close]
    fn on_close(&mut self, session: &Session, reason: CloseReason) {
        println!("bye {} ({reason})", user(session));
    }
}

/// The server of the port: the endpoint under the `/myChat` web-app context.
pub(crate) fn server() -> Server {
    Server::new()
        .context_path("/myChat")
        .endpoint::<SecureEndpoint>()
}

/// Port of a Java endpoint authenticated by a ServerEndpointConfig.Configurator.
#[allow(dead_code)] // unused when tests/ports.rs includes this file as a module
#[derive(Parser)]
#[command(name = "port_auth")]
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
    println!(
        "secure.do: ws://{}/myChat/secure.do?token=s3cret-ada",
        server.local_addr()?
    );
    server.run_until(endpoint::shutdown_signal()).await
}
