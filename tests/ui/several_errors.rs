#![allow(unused_variables)]

// One build reports every mistake, each on its own token.
use endpoint::prelude::*;

#[derive(Default)]
struct Chat;

#[server_endpoint("/chat/{room}", subprotocol = ["v1"])]
impl Chat {
    #[on_open]
    fn open(&mut self, #[path_param] user: String) {}

    #[on_open]
    fn open_again(&mut self) {}

    #[on_message]
    fn text(&mut self, text: String) {}

    #[on_message]
    fn more_text(&mut self, text: &str, extra: std::time::Duration) {}

    #[on_error]
    fn error(&mut self) {}

    #[on_close]
    fn close(&mut self, reason: CloseReason, error: &EndpointError) {}
}

fn main() {}
