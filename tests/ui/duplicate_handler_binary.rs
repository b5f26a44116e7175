#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn bytes(&mut self, data: Vec<u8>) {}

    #[on_message]
    fn slice(&mut self, data: &[u8]) {}
}

fn main() {}
