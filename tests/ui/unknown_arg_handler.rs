#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_open(x)]
    fn open(&mut self) {}

    #[on_message(max_size = 10)]
    fn message(&mut self, text: String) {}
}

fn main() {}
