#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_error]
    fn error(&mut self, session: &Session) {}
}

fn main() {}
