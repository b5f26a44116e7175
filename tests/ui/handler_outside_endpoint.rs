#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

impl Echo {
    #[on_open]
    fn open(&mut self) {}
}

#[on_message]
fn message(text: String) {}

fn main() {}
