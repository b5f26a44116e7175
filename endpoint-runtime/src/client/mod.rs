//! The client: endpoints that connect to a server (Jakarta's `@ClientEndpoint` and
//! `WebSocketContainer.connectToServer`).

mod endpoint;

pub use endpoint::{ClientConfigurator, ClientEndpoint};
