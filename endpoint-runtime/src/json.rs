//! [`Json<T>`]: JSON payloads and replies with serde.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{DecodeError, EndpointError};
use crate::message::{Decode, Encode, Message, PayloadKind};

/// A JSON text message, decoded into / encoded from `T` with serde.
///
/// As an `#[on_message]` payload, a text frame that is not valid JSON for `T` reaches `on_error`
/// as [`EndpointError::Decode`] and the session stays open. As a return value or with
/// [`Session::send`](crate::Session::send), `T` is serialised to a text frame.
///
/// ```
/// use endpoint_runtime::{Decode, Encode, Json, Message};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Hello { name: String }
///
/// let Json(hello) = Json::<Hello>::decode(Message::text(r#"{"name":"ada"}"#)).unwrap();
/// assert_eq!(hello.name, "ada");
/// assert_eq!(Json(hello).encode().unwrap(), Message::text(r#"{"name":"ada"}"#));
/// assert!(Json::<Hello>::decode(Message::text("nope")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> Decode for Json<T> {
    const KIND: PayloadKind = PayloadKind::Text;
    fn decode(message: Message) -> Result<Self, DecodeError> {
        match &message {
            Message::Text(t) => serde_json::from_str(t.as_str())
                .map(Json)
                .map_err(|e| DecodeError::new(format!("invalid JSON: {e}"))),
            other => Err(DecodeError::new(format!(
                "expected a JSON text message, got a {} message",
                other.kind().name()
            ))),
        }
    }
}

impl<T: Serialize> Encode for Json<T> {
    fn encode(self) -> Result<Message, EndpointError> {
        serde_json::to_string(&self.0)
            .map(Message::from)
            .map_err(|e| EndpointError::Encode(Box::new(e)))
    }
}
