use endpoint::prelude::*;

#[derive(Clone)]
struct User(String);

#[derive(Default)]
struct Auth;

impl Configurator for Auth {
    fn modify_handshake(&self, request: &mut HandshakeRequest) -> Result<(), Rejection> {
        let name = request.query_param("user").ok_or_else(|| {
            Rejection::Status(http::StatusCode::UNAUTHORIZED, "who are you?\n".into())
        })?;
        request.properties().insert(User(name));
        Ok(())
    }
}

#[derive(Default)]
struct Secure;

#[server_endpoint("/secure", configurator = Auth)]
impl Secure {
    #[on_message]
    fn text(&mut self, session: &Session, text: &str) -> String {
        let user = session.properties().get::<User>().map(|u| u.0).unwrap_or_default();
        format!("{user}: {text}")
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) -> Result<(), std::io::Error> {
        let _ = reason;
        Ok(())
    }
}

fn main() {
    let _ = Server::new().endpoint::<Secure>();
}
