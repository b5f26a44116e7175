#![allow(unused_variables)]

//! Every form of a message in parts or as a stream, side by side with whole messages.

use endpoint::prelude::*;

#[derive(Default)]
struct Parts;

#[server_endpoint("/parts")]
impl Parts {
    #[on_message(max_message_size = 1 << 30)]
    fn text(&mut self, part: &str, last: bool) -> Option<String> {
        last.then(|| part.to_owned())
    }

    #[on_message]
    async fn binary(&mut self, session: &Session, last: bool, part: Bytes) {
        let _ = (session, last, part);
    }

    #[on_message]
    fn pong(&mut self, pong: Pong) {}
}

#[derive(Default)]
struct Streams;

#[server_endpoint("/streams")]
impl Streams {
    #[on_message]
    async fn text(&mut self, text: TextStream) {
        drop(text);
    }

    #[on_message]
    async fn binary(&mut self, data: BinaryStream, session: Session) -> Result<(), std::io::Error> {
        let _ = (data, session);
        Ok(())
    }
}

#[derive(Default)]
struct Mixed;

#[server_endpoint("/mixed")]
impl Mixed {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_message]
    fn binary(&mut self, part: Vec<u8>, last: bool) {}
}

fn main() {
    let _ = Server::new()
        .endpoint::<Parts>()
        .endpoint::<Streams>()
        .endpoint::<Mixed>();
}
