#![allow(unused_variables)]

use endpoint::prelude::*;
use serde::Deserialize;

#[derive(Default)]
struct Points;

#[derive(Deserialize)]
struct Point {
    x: i32,
}

#[server_endpoint("/points")]
impl Points {
    #[on_message]
    fn text(&mut self, text: String) {}

    // `Json<T>` is decoded from text too: two text handlers.
    #[on_message]
    fn point(&mut self, point: Json<Point>) {}
}

fn main() {}
