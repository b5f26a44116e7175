#![allow(unused_variables)]

// `slow_consumer` is what a server's broadcasts do to a full queue: not a client option,
// whatever its value.
use endpoint::prelude::*;

struct Chat;

#[client_endpoint(slow_consumer = drop, compression = true)]
impl Chat {
    #[on_message]
    fn message(&mut self, text: String) {}
}

struct Wrong;

#[client_endpoint(slow_consumer = DROP)]
impl Wrong {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
