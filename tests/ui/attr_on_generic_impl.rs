#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo<T>(T);

#[server_endpoint("/echo")]
impl<T: Send + 'static> Echo<T> {
    #[on_message]
    fn message(&mut self, text: String) -> String {
        text
    }
}

fn main() {}
