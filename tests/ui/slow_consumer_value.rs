#![allow(unused_variables)]

// `slow_consumer` takes `close`, `wait` or `drop`: Spring's `OverflowStrategy` spelling, a call.
use endpoint::prelude::*;

#[derive(Default)]
struct Spring;

#[server_endpoint("/spring", slow_consumer = DROP)]
impl Spring {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Call;

#[server_endpoint("/call", slow_consumer(drop))]
impl Call {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
