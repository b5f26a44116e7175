#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Chat;

#[server_endpoint("/chat/")]
impl Chat {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
