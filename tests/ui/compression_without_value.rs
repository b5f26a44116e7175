#![allow(unused_variables)]

// Jakarta's `@ServerEndpoint` has no compression switch (Tomcat offers permessage-deflate to
// every endpoint of the container), so a porter guesses: a bare flag, or a call.
use endpoint::prelude::*;

#[derive(Default)]
struct Flag;

#[server_endpoint("/flag", compression)]
impl Flag {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Call;

#[server_endpoint("/call", compression(true), subprotocols = ["v1"])]
impl Call {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
