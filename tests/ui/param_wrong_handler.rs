#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_open]
    fn open(&mut self, reason: CloseReason) {}

    #[on_close]
    fn close(&mut self, handshake: &Handshake) {}
}

fn main() {}
