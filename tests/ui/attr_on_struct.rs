#![allow(unused_variables)]

use endpoint::prelude::*;

#[server_endpoint("/echo")]
#[derive(Default)]
struct Echo;

fn main() {}
