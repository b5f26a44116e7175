#![allow(unused_variables)]

use endpoint::prelude::*;

#[client_endpoint]
struct Ticker;

struct Feed;

trait Greeter {
    fn hello(&self);
}

#[client_endpoint]
impl Greeter for Feed {
    #[on_open]
    fn hello(&self) {}
}

fn main() {}
