#![allow(unused_variables)]

use endpoint::prelude::*;

// A server's `Configurator` (`modify_handshake`, `check_origin`) is not a client's.
#[derive(Default)]
struct ServerAuth;

impl Configurator for ServerAuth {}

struct Ticker;

#[client_endpoint(configurator = ServerAuth)]
impl Ticker {
    #[on_message]
    fn text(&mut self, text: String) {}
}

fn main() {}
