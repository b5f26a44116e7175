#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn text(&mut self, text: String) {}

    #[on_message]
    fn also_text(&mut self, text: &str) {}
}

fn main() {}
