//! [`Utf8Bytes`]: reference-counted text, the payload of [`Message::Text`](crate::Message::Text).
//!
//! The crate's own type (it was tungstenite's until the runtime stopped depending on
//! tungstenite): a [`Bytes`] known to hold UTF-8, so a received text is checked once, by the
//! decoder, and a broadcast's clones share one allocation. It wraps the `bytestring` crate's
//! `ByteString`, which reads as `str` without checking again (that takes `unsafe`, which this
//! crate forbids itself).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

/// Text in a reference-counted buffer: cloning shares the bytes. Dereferences to `str`.
///
/// ```
/// use endpoint_runtime::{Bytes, Utf8Bytes};
///
/// let hello = Utf8Bytes::from_static("hello");
/// assert_eq!(hello.as_str(), "hello");
/// assert_eq!(hello.len(), 5); // through `Deref<Target = str>`
/// assert_eq!(hello, "hello");
/// assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
/// assert_eq!(Utf8Bytes::from(String::from("owned")).to_string(), "owned");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(ByteString);

impl Utf8Bytes {
    /// Text from a static string, without copying it.
    pub const fn from_static(text: &'static str) -> Self {
        Utf8Bytes(ByteString::from_static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text's bytes, shared.
    pub fn as_bytes_shared(&self) -> &Bytes {
        self.0.as_bytes()
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes(ByteString::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Utf8Bytes(ByteString::from(text))
    }
}

impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        text.as_str().into()
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0.into_bytes()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        ByteString::try_from(bytes).map(Utf8Bytes)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::str::Utf8Error;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Bytes::from(bytes).try_into()
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_gets_in_and_clones_share_the_bytes() {
        let text = Utf8Bytes::try_from(Bytes::from("héllo")).unwrap();
        let clone = text.clone();
        assert_eq!(
            clone.as_bytes_shared().as_ptr(),
            text.as_bytes_shared().as_ptr()
        );
        assert_eq!(&*text, "héllo");
        assert!(Utf8Bytes::try_from(vec![b'a', 0xc3]).is_err());
        assert_eq!(format!("{text:?}"), "\"héllo\"");
        assert_eq!(Bytes::from(text), Bytes::from("héllo"));
    }
}
