//! `#[server_endpoint(compression = true | false)]` ends up in the generated `Endpoint::config()`
//! as `EndpointConfig::compression(bool)`, and an endpoint without it leaves compression to the
//! server's `Limits::compression`.
//!
//! `EndpointConfig` has no public getter for the setting, so this reads it through the derived
//! `Debug` output, and compares the whole config with the one the builder makes by hand.

use endpoint::prelude::*;
use endpoint::{Endpoint, EndpointConfig};

#[derive(Default)]
struct On;

#[server_endpoint("/on", compression = true)]
impl On {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[derive(Default)]
struct Off;

#[server_endpoint("/off/{room}", subprotocols = ["v1"], compression = false, max_message_size = 4096)]
impl Off {
    #[on_message(max_message_size = 8192)]
    fn text(&mut self, text: String) -> String {
        text
    }
}

#[derive(Default)]
struct Unset;

#[server_endpoint("/unset")]
impl Unset {}

fn debug(config: EndpointConfig) -> String {
    format!("{config:?}")
}

#[test]
fn compression_true_is_in_the_generated_config() {
    let generated = debug(<On as Endpoint>::config());
    assert!(generated.contains("compression: Some(true)"), "{generated}");
    assert_eq!(
        generated,
        debug(EndpointConfig::new("/on").compression(true))
    );
}

#[test]
fn compression_false_is_in_the_generated_config_beside_the_other_arguments() {
    let generated = debug(<Off as Endpoint>::config());
    assert!(
        generated.contains("compression: Some(false)"),
        "{generated}"
    );
    let by_hand = EndpointConfig::new("/off/{room}")
        .subprotocols(&["v1"])
        .max_message_size(4096)
        .compression(false)
        .message_limit(PayloadKind::Text, 8192);
    assert_eq!(generated, debug(by_hand));
}

#[test]
fn without_the_argument_the_server_decides() {
    let generated = debug(<Unset as Endpoint>::config());
    assert!(generated.contains("compression: None"), "{generated}");
    assert_eq!(generated, debug(EndpointConfig::new("/unset")));
}
