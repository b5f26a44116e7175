#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Cafe;

#[server_endpoint("/caf%E9")]
impl Cafe {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
