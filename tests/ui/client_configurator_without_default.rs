#![allow(unused_variables)]

use endpoint::prelude::*;

// The macro makes the configurator with `Default`.
struct Bearer(String);

impl endpoint::client::ClientConfigurator for Bearer {}

struct Feed;

#[client_endpoint(configurator = Bearer)]
impl Feed {
    #[on_message]
    fn text(&mut self, text: String) {}
}

fn main() {}
