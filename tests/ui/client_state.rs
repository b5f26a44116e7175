#![allow(unused_variables)]

// `State<T>` is registered with a `Server`; a client endpoint keeps what it needs in its fields.
use endpoint::prelude::*;

struct Db;

struct Chat {
    db: std::sync::Arc<Db>,
}

#[client_endpoint]
impl Chat {
    #[on_message]
    fn message(&mut self, text: String, db: State<Db>) {}

    #[on_close]
    fn close(&mut self, reason: CloseReason, db: endpoint::State<Db>) {}
}

fn main() {}
