#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn pong(&mut self, pong: Pong, last: bool) {}
}

fn main() {}
