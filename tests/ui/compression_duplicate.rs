#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo", compression = true, max_message_size = 1024, compression = false)]
impl Echo {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
