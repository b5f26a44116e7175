#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo/{room}")]
impl Echo {
    #[on_open]
    fn open(&mut self, room: String) {}
}

fn main() {}
