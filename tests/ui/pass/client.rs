//! `#[client_endpoint]`: every kind of parameter a client hook may take (`&Handshake` in
//! `#[on_open]` included: the server's `101`), parts and streams, per-handler limits, every
//! kind of return value, the options, a configurator, a renamed facade, and a client beside a
//! server endpoint in one module.

use endpoint::client::{ClientConfigurator, ClientEndpoint};
use endpoint::prelude::*;
use endpoint::{Endpoint, EndpointConfig, PayloadKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Tick {
    price: f64,
}

#[derive(Default)]
struct Bearer;

impl ClientConfigurator for Bearer {
    fn before_request(&self, headers: &mut http::HeaderMap) {
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    }
}

/// No `Default`: a client endpoint is a value given to `connect`.
struct Ticker {
    symbol: String,
    ticks: usize,
}

#[client_endpoint(
    subprotocols = ["ticks.v2", "ticks.v1"],
    max_message_size = 64 * 1024,
    compression = true,
    unhandled = ignore,
    configurator = Bearer,
)]
impl Ticker {
    /// Docs and other attributes stay on the re-emitted method.
    #[on_open]
    #[allow(clippy::unused_async)]
    async fn open(&mut self, session: &Session, handshake: &Handshake) -> String {
        let _ = (session, handshake);
        format!("subscribe {}", self.symbol) // sent to the server
    }

    #[on_message]
    fn tick(&mut self, Json(tick): Json<Tick>, session: Session) -> Option<String> {
        self.ticks += 1;
        let _ = session;
        (tick.price > 100.0).then(|| "sell".to_owned())
    }

    #[on_message(max_message_size = 1024)]
    async fn binary(&self, data: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        Ok(data.to_vec())
    }

    #[on_message]
    fn pong(&mut self, pong: Pong) {
        let _ = pong;
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError, session: &Session) {
        let _ = (error, session);
    }

    #[on_close]
    async fn close(&mut self, reason: CloseReason) -> Result<(), String> {
        let _ = reason;
        Ok(())
    }

    fn helper(&self) -> usize {
        self.ticks
    }
}

#[derive(Default)]
struct Parts;

#[client_endpoint]
impl Parts {
    #[on_message(max_message_size = 1 << 30)]
    fn text(&mut self, part: &str, last: bool) -> Option<String> {
        last.then(|| part.to_owned())
    }

    #[on_message]
    async fn binary(&mut self, data: BinaryStream) {
        drop(data);
    }
}

/// Handlers named like the trait's hooks, as a port of `onOpen`/`onMessage` would be.
struct JavaNames;

#[client_endpoint()]
impl JavaNames {
    #[on_open]
    fn on_open(&mut self) {}

    #[on_message]
    fn on_message(&mut self, text: String) -> String {
        text
    }

    #[on_close]
    fn on_close(&mut self, _reason: CloseReason) {}
}

mod framework {
    pub mod ws {
        #[doc(hidden)]
        pub use ::endpoint::__private;
    }
}

struct Renamed;

#[endpoint::client_endpoint(crate = crate::framework::ws)]
impl Renamed {}

/// A server endpoint beside the clients.
#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

fn client<E: ClientEndpoint>() -> EndpointConfig {
    E::config()
}

fn main() {
    assert!(client::<Ticker>().is_client());
    assert!(client::<Parts>().is_client());
    assert!(client::<JavaNames>().is_client());
    assert!(client::<Renamed>().is_client());
    assert!(<Ticker as ClientEndpoint>::client_configurator().is_some());
    assert!(<Parts as ClientEndpoint>::client_configurator().is_none());
    assert!(!<Renamed as Endpoint>::accepts(PayloadKind::Text));
    let _ = Ticker {
        symbol: "ACME".into(),
        ticks: 0,
    }
    .helper();
    let _ = Server::new().endpoint::<Echo>();
}
