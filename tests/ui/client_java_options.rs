#![allow(unused_variables)]

// What a port of `@ClientEndpoint(...)` / `@ServerEndpoint(value = ...)` is likely to write.
use endpoint::prelude::*;

struct Chat;

#[client_endpoint(value = "/chat", decoders = [TickDecoder], encoders = [TickEncoder], foo = 1)]
impl Chat {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
