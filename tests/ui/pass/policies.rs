// Every value of `unhandled` and `slow_consumer`, beside the other arguments.
use endpoint::prelude::*;

#[derive(Default)]
struct Ignore;

#[server_endpoint("/ignore", unhandled = ignore, slow_consumer = drop, max_message_size = 1024)]
impl Ignore {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Close;

#[server_endpoint("/close", slow_consumer = wait, unhandled = close)]
impl Close {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Default_;

#[server_endpoint("/default", slow_consumer = close)]
impl Default_ {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
