#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Echo;

struct Point {
    x: i32,
}

#[server_endpoint("/echo")]
impl Echo {
    #[on_message]
    fn message(&mut self, point: Point, last: bool) {}
}

fn main() {}
