//! Handlers named like the trait's hooks (as a port of `onMessage`/`onOpen` would be) do not
//! clash with the generated `Endpoint` implementation: inherent methods are called.

use endpoint::prelude::*;

#[derive(Default)]
struct Echo {
    opened: bool,
}

#[server_endpoint("/echo.do")]
impl Echo {
    #[on_open]
    fn on_open(&mut self) {
        self.opened = true;
    }

    #[on_message]
    async fn on_message(
        &mut self,
        text: String,
        session: &Session,
    ) -> Result<String, EndpointError> {
        let _ = session;
        Ok(text)
    }

    #[on_error]
    fn on_error(&mut self, error: EndpointError) -> Option<String> {
        Some(error.to_string())
    }

    #[on_close]
    fn on_close(&mut self, _reason: CloseReason) {}
}

fn main() {
    let _ = Server::new().endpoint::<Echo>();
}
