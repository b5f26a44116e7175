//! `compression = true`: the endpoint accepts permessage-deflate whatever the server's
//! `Limits::compression` says, beside the other endpoint arguments.

use endpoint::prelude::*;

#[derive(Default)]
struct Feed;

#[server_endpoint("/feed/{topic}", subprotocols = ["v1"], max_message_size = 64 * 1024, compression = true)]
impl Feed {
    #[on_message]
    fn text(&mut self, text: &str, #[path_param] topic: String) -> String {
        format!("{topic}: {text}")
    }
}

fn main() {
    let _ = Server::new().endpoint::<Feed>();
}
