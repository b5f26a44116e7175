#![allow(unused_variables)]

use endpoint::prelude::*;

#[derive(Default)]
struct Chat;

#[server_endpoint("/chat/{room}/{user}")]
impl Chat {
    #[on_open]
    fn open(&mut self, #[path_param] rooom: String, #[path_param("id")] user: u64) {}
}

fn main() {}
