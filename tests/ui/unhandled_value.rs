#![allow(unused_variables)]

// `unhandled` takes a bare word: a porter writes the Java-ish string, a flag, or another word.
use endpoint::prelude::*;

#[derive(Default)]
struct Quoted;

#[server_endpoint("/quoted", unhandled = "ignore")]
impl Quoted {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Flag;

#[server_endpoint("/flag", unhandled)]
impl Flag {
    #[on_message]
    fn message(&mut self, text: String) {}
}

#[derive(Default)]
struct Other;

#[server_endpoint("/other", unhandled = skip)]
impl Other {
    #[on_message]
    fn message(&mut self, text: String) {}
}

fn main() {}
