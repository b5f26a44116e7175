#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn message(&mut self, part: String, last: bool, done: bool) {}
}

fn main() {}
