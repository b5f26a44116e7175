#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    async fn message(&mut self, text: TextStream, last: bool) {}
}

fn main() {}
