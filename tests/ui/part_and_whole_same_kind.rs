#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn whole(&mut self, text: String) {}

    #[on_message]
    fn part(&mut self, part: &str, last: bool) {}
}

fn main() {}
