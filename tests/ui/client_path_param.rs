#![allow(unused_variables)]

// A client endpoint has no path, so no path parameters: in a hook or anywhere else.
use endpoint::prelude::*;

struct Chat {
    room: String,
}

#[client_endpoint]
impl Chat {
    #[on_open]
    fn open(&mut self, session: &Session, #[path_param] room: String) {}

    #[on_message]
    fn message(&mut self, text: String, #[path_param("room")] id: u64) {}

    fn helper(&self, #[path_param] room: String) {}
}

fn main() {}
