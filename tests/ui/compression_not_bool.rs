#![allow(unused_variables)]

// `compression` takes a bool literal: not a string, not a number.
use endpoint::prelude::*;

#[derive(Default)]
struct Quoted;

#[server_endpoint("/quoted", compression = "yes")]
impl Quoted {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Numbered;

#[server_endpoint("/numbered", compression = 1, max_message_size = 0)]
impl Numbered {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
