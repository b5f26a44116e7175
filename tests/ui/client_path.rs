#![allow(unused_variables)]

// A client endpoint is connected to a URL given at `connect`: it has no path. The options after
// the path are still read (a bad one is reported too).
use endpoint::prelude::*;

struct Chat;

#[client_endpoint("/chat", subprotocols = ["v1"], max_message_size = 0)]
impl Chat {
    #[on_message]
    fn message(&mut self, text: String) {}
}

struct Room;

#[client_endpoint("/chat/{room}")]
impl Room {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
