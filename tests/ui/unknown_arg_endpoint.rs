#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo", foo = 1, max_message_size = 0)]
impl Echo {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
