//! `crate = path` points the generated code at another place exposing `__private`, e.g. a
//! framework that re-exports `endpoint`. Also: an endpoint without any `#[on_message]` handler
//! accepts no message kind.

mod framework {
    pub mod ws {
        #[doc(hidden)]
        pub use ::endpoint::__private;
    }
}

use endpoint::{on_open, server_endpoint, Endpoint, PayloadKind, Session};

#[derive(Default)]
struct Silent;

#[server_endpoint("/", crate = crate::framework::ws)]
impl Silent {
    #[on_open]
    fn open(&self, session: Session) {
        let _ = session;
    }
}

#[derive(Default)]
struct Serde;

#[server_endpoint("/serde-style", crate = "::endpoint")]
impl Serde {}

fn main() {
    assert!(!Silent::accepts(PayloadKind::Text));
    assert!(!Silent::accepts(PayloadKind::Binary));
    assert_eq!(Silent::config().path(), "/");
    assert_eq!(Serde::config().path(), "/serde-style");
}
