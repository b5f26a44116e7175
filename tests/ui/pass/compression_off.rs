//! `compression = false`: the endpoint declines permessage-deflate even when the server enables
//! it for every endpoint; a trailing comma is fine.

use endpoint::prelude::*;

#[derive(Default)]
struct Secrets;

#[server_endpoint("/secrets", compression = false,)]
impl Secrets {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

fn main() {
    let _ = Server::new().endpoint::<Secrets>();
}
