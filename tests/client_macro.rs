//! What `#[client_endpoint]` expands to: an `Endpoint` whose `config()` is an
//! `EndpointConfig::client()` carrying the attribute's options (read through `EndpointConfig`'s
//! `Debug`, which has no public getter for them, and compared with the builder's), a
//! `ClientEndpoint` whose `client_configurator()` is the `configurator = C` (or `None`), and
//! hooks that work when called through the `Endpoint` trait.
//!
//! A `Session` cannot be made outside the runtime, and the client that would connect a client
//! endpoint is not here yet, so the hooks are called by hand from a server endpoint that
//! relays every hook to a client endpoint value: the generated `on_open`, `on_message`,
//! `on_part`, `on_error` and `on_close` then run on a real connection.

mod common;

use std::future::Future;

use common::*;
use endpoint::client::{ClientConfigurator, ClientEndpoint};
use endpoint::prelude::*;
use endpoint::{
    Endpoint, EndpointConfig, HookResult, Message, MessageMode, MessageStream, PayloadKind,
};
use futures::SinkExt;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Configuration

struct Options;

#[client_endpoint(subprotocols = ["a", "b"], max_message_size = 1000, compression = true)]
impl Options {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

struct Policies;

#[client_endpoint(unhandled = ignore)]
impl Policies {
    #[on_message(max_message_size = 64)]
    fn binary(&mut self, data: Vec<u8>) {
        let _ = data;
    }
}

struct Bare;

#[client_endpoint]
impl Bare {}

fn debug(config: EndpointConfig) -> String {
    format!("{config:?}")
}

#[test]
fn the_options_are_in_a_client_config() {
    let config = <Options as Endpoint>::config();
    assert!(config.is_client());
    assert_eq!(config.path(), EndpointConfig::client().path());
    let generated = debug(config);
    for field in [
        r#"subprotocols: ["a", "b"]"#,
        "max_message_size: Some(1000)",
        "compression: Some(true)",
    ] {
        assert!(generated.contains(field), "{field} in {generated}");
    }
    let by_hand = EndpointConfig::client()
        .subprotocols(&["a", "b"])
        .max_message_size(1000)
        .compression(true);
    assert_eq!(generated, debug(by_hand));
}

#[test]
fn unhandled_and_handler_limits_are_in_a_client_config() {
    let config = <Policies as Endpoint>::config();
    assert!(config.is_client());
    assert_eq!(
        config.unhandled_policy(),
        endpoint::endpoint::Unhandled::Ignore
    );
    let by_hand = EndpointConfig::client()
        .unhandled(endpoint::endpoint::Unhandled::Ignore)
        .message_limit(PayloadKind::Binary, 64);
    assert_eq!(debug(config), debug(by_hand));
}

#[test]
fn no_arguments_is_the_plain_client_config() {
    assert_eq!(
        debug(<Bare as Endpoint>::config()),
        debug(EndpointConfig::client())
    );
    // No handler: no kind accepted, nothing required of a server.
    assert!(!<Bare as Endpoint>::accepts(PayloadKind::Text));
    assert!(<Bare as Endpoint>::required_state().is_empty());
}

#[test]
fn a_client_endpoint_has_no_server_configurator() {
    assert!(<Options as Endpoint>::configurator().is_none());
    assert!(<Configured as Endpoint>::configurator().is_none());
}

// ---------------------------------------------------------------------------------------------
// ClientEndpoint::client_configurator

#[derive(Default)]
struct Bearer;

impl ClientConfigurator for Bearer {
    fn before_request(&self, headers: &mut http::HeaderMap) {
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
    }

    fn after_response(&self, headers: &http::HeaderMap) -> Result<(), String> {
        match headers.get("x-welcome") {
            Some(_) => Ok(()),
            None => Err("no x-welcome".into()),
        }
    }
}

struct Configured;

#[client_endpoint(configurator = Bearer, subprotocols = ["v1"])]
impl Configured {
    #[on_message]
    fn text(&mut self, text: &str) {
        let _ = text;
    }
}

#[test]
fn client_configurator_is_the_configurator_argument() {
    let configurator =
        <Configured as ClientEndpoint>::client_configurator().expect("configurator = Bearer");
    let mut headers = http::HeaderMap::new();
    configurator.before_request(&mut headers);
    assert_eq!(headers["authorization"], "Bearer s3cret");
    assert_eq!(
        configurator.after_response(&http::HeaderMap::new()),
        Err("no x-welcome".to_owned())
    );
    // The other arguments are still in the config.
    assert_eq!(
        debug(<Configured as Endpoint>::config()),
        debug(EndpointConfig::client().subprotocols(&["v1"]))
    );
}

#[test]
fn without_configurator_there_is_none() {
    assert!(<Options as ClientEndpoint>::client_configurator().is_none());
    assert!(<Bare as ClientEndpoint>::client_configurator().is_none());
}

// ---------------------------------------------------------------------------------------------
// The hooks, called through the `Endpoint` trait

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize)]
struct Sum {
    sum: i64,
}

/// A client endpoint using each kind of hook and parameter a client hook may take.
struct Probe {
    log: Recorder,
    parts: Vec<u8>,
}

#[client_endpoint(max_message_size = 1000)]
impl Probe {
    #[on_open]
    fn open(&mut self, session: &Session, handshake: &Handshake) -> &'static str {
        let _ = (session, handshake);
        self.log.push("open");
        "hello" // sent back
    }

    #[on_message]
    async fn add(&mut self, Json(add): Json<Add>, session: Session) -> Json<Sum> {
        let _ = session;
        self.log.push("add");
        Json(Sum { sum: add.a + add.b })
    }

    #[on_message]
    fn binary(&mut self, part: &[u8], last: bool) -> Option<Vec<u8>> {
        self.parts.extend_from_slice(part);
        last.then(|| {
            self.log.push(format!("binary:{}", self.parts.len()));
            std::mem::take(&mut self.parts).into_iter().rev().collect()
        })
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        let kind = match error {
            EndpointError::Decode(_) => "decode",
            _ => "other",
        };
        self.log.push(format!("error:{kind}"));
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.log.push(format!("close:{}", reason.code().as_u16()));
    }
}

/// A server endpoint at `/relay` that calls every hook of the client endpoint `E` it holds
/// through the `Endpoint` trait (its own config is a server's: a path).
struct Relay<E> {
    inner: E,
}

impl<E: ClientEndpoint> Endpoint for Relay<E> {
    fn config() -> EndpointConfig {
        EndpointConfig::new("/relay")
    }

    fn on_open<'a>(
        &'a mut self,
        session: &'a Session,
        handshake: &'a Handshake,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        Endpoint::on_open(&mut self.inner, session, handshake)
    }

    fn on_message<'a>(
        &'a mut self,
        session: &'a Session,
        message: Message,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        Endpoint::on_message(&mut self.inner, session, message)
    }

    fn on_part<'a>(
        &'a mut self,
        session: &'a Session,
        part: Message,
        last: bool,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        Endpoint::on_part(&mut self.inner, session, part, last)
    }

    fn on_stream<'a>(
        &'a mut self,
        session: &'a Session,
        stream: MessageStream,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        Endpoint::on_stream(&mut self.inner, session, stream)
    }

    fn on_error<'a>(
        &'a mut self,
        session: &'a Session,
        error: EndpointError,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        Endpoint::on_error(&mut self.inner, session, error)
    }

    fn on_close<'a>(
        &'a mut self,
        session: &'a Session,
        reason: CloseReason,
    ) -> impl Future<Output = ()> + Send + 'a {
        Endpoint::on_close(&mut self.inner, session, reason)
    }

    fn accepts(kind: PayloadKind) -> bool {
        E::accepts(kind)
    }

    fn message_mode(kind: PayloadKind) -> MessageMode {
        E::message_mode(kind)
    }
}

#[test]
fn the_generated_kinds_and_modes() {
    assert!(<Probe as Endpoint>::accepts(PayloadKind::Text));
    assert!(<Probe as Endpoint>::accepts(PayloadKind::Binary));
    assert!(!<Probe as Endpoint>::accepts(PayloadKind::Pong));
    assert_eq!(
        <Probe as Endpoint>::message_mode(PayloadKind::Binary),
        MessageMode::Parts
    );
    assert_eq!(
        <Probe as Endpoint>::message_mode(PayloadKind::Text),
        MessageMode::Whole
    );
}

#[tokio::test]
async fn the_generated_hooks_run_when_called_through_the_endpoint_trait() {
    let log = Recorder::new();
    let l = log.clone();
    let server = start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(move |_| Relay {
                inner: Probe {
                    log: l.clone(),
                    parts: Vec::new(),
                },
            }),
    )
    .await;
    let mut ws = server.connect("/relay").await;

    // on_open (with the `&Handshake`): its return value is sent.
    assert_eq!(recv_text(&mut ws).await, "hello");
    // on_message: a `Json<T>` payload decoded, a `Json<T>` reply encoded.
    assert_eq!(
        roundtrip(&mut ws, r#"{"a": 2, "b": 40}"#).await,
        r#"{"sum":42}"#
    );
    // A payload that does not decode goes to on_error; the session stays open.
    send_text(&mut ws, "not json").await;
    log.wait_count("error:decode", 1).await;
    assert_eq!(
        roundtrip(&mut ws, r#"{"a": 1, "b": 1}"#).await,
        r#"{"sum":2}"#
    );
    // on_part: a binary message (one frame, one part with `last`) reversed back.
    bounded("send binary", ws.send(WsMessage::binary(vec![1u8, 2, 3])))
        .await
        .expect("send binary");
    match recv_data(&mut ws).await {
        WsMessage::Binary(data) => assert_eq!(&data[..], [3, 2, 1]),
        other => panic!("expected binary, got {other:?}"),
    }
    // on_close, once and last.
    send_close(&mut ws, 1000, "bye").await;
    drain_until_end(&mut ws).await;
    let events = log.wait_count("close:", 1).await;
    assert_eq!(assert_lifecycle(&events), "close:1000");
    assert_eq!(
        events,
        [
            "open",
            "add",
            "error:decode",
            "add",
            "binary:3",
            "close:1000"
        ]
    );
    server.shutdown().await;
}
