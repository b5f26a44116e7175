#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_open]
    fn open(&mut self) {}

    #[on_open]
    fn open_again(&mut self, session: &Session) {}
}

fn main() {}
