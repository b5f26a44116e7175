#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

trait Greeter {
    fn hello(&self);
}

#[server_endpoint("/echo")]
impl Greeter for Echo {
    #[on_open]
    fn hello(&self) {}
}

fn main() {}
