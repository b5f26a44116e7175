//! A message read as it arrives: [`MessageStream`] (what [`Endpoint::on_stream`] gets), and
//! its typed forms [`TextStream`] and [`BinaryStream`] (what a `#[on_message]` handler takes,
//! Jakarta's `Reader` and `InputStream`).
//!
//! The connection task feeds the stream while the hook runs (`connection/driver.rs`,
//! `Driver::hook_stream`): it reads the next frame only once the hook took the part before, so
//! the stream holds at most one frame's part and a slow reader slows the peer (TCP
//! backpressure), never memory.
//!
//! [`Endpoint::on_stream`]: crate::Endpoint::on_stream

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures::Stream;
use tokio::io::{AsyncRead, ReadBuf};

use crate::message::{Message, PayloadKind, Utf8Bytes};
use crate::util::lock;

/// The parts of one text or binary message, in order, as they arrive from the peer.
///
/// Each item is one frame's part: a [`Message::Text`] of whole characters or a
/// [`Message::Binary`]. The stream ends (`None`) after the message's last part; if the
/// connection ends or fails inside the message, the last item is an error
/// ([`io::ErrorKind::UnexpectedEof`]) and the stream ends after it. It is also an
/// [`AsyncRead`] of the message's bytes (a text's UTF-8), Jakarta's `InputStream`.
#[derive(Debug)]
pub struct MessageStream {
    feed: Arc<Feed>,
    kind: PayloadKind,
    /// What `AsyncRead` has not handed out yet of the current part.
    reading: Bytes,
}

/// The hand-off between the connection task and the stream.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    state: Mutex<FeedState>,
}

#[derive(Debug, Default)]
struct FeedState {
    /// The part the connection task read and the stream has not taken yet.
    part: Option<Message>,
    /// The last part was fed.
    last: bool,
    /// The connection ended or failed inside the message.
    failed: bool,
    /// The error was handed out.
    reported: bool,
    /// The stream's task, to wake when a part arrives.
    waker: Option<Waker>,
}

impl Feed {
    /// A stream of `kind` whose first part is `part`.
    pub(crate) fn start(part: Message, last: bool) -> (Arc<Feed>, MessageStream) {
        let kind = part.kind();
        let feed = Arc::new(Feed::default());
        feed.push(part, last);
        let stream = MessageStream {
            feed: feed.clone(),
            kind,
            reading: Bytes::new(),
        };
        (feed, stream)
    }

    /// Whether the stream took the part before and the message goes on: another one may be
    /// read for it.
    pub(crate) fn wants(&self) -> bool {
        let st = lock(&self.state);
        st.part.is_none() && !st.last && !st.failed
    }

    /// Whether the message's last part was fed (whether or not it was taken).
    pub(crate) fn complete(&self) -> bool {
        lock(&self.state).last
    }

    /// Hands the stream its next part.
    pub(crate) fn push(&self, part: Message, last: bool) {
        let waker = {
            let mut st = lock(&self.state);
            st.part = Some(part);
            st.last = last;
            st.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The connection ended or failed inside the message.
    pub(crate) fn fail(&self) {
        let waker = {
            let mut st = lock(&self.state);
            st.failed = true;
            st.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl MessageStream {
    /// Text or binary.
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    fn poll_part(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Message>>> {
        let mut st = lock(&self.feed.state);
        if let Some(part) = st.part.take() {
            return Poll::Ready(Some(Ok(part)));
        }
        if st.last {
            return Poll::Ready(None);
        }
        if st.failed {
            if st.reported {
                return Poll::Ready(None);
            }
            st.reported = true;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection ended inside the message",
            ))));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for MessageStream {
    type Item = io::Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_part(cx)
    }
}

impl AsyncRead for MessageStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.reading.is_empty() {
            match futures::ready!(this.poll_part(cx)) {
                Some(Ok(part)) => {
                    this.reading = match part {
                        Message::Text(t) => t.into(),
                        other => crate::protocol::frame::opcode_and_payload(other).1,
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.reading.len().min(buf.remaining());
        buf.put_slice(&this.reading[..n]);
        this.reading.advance(n);
        Poll::Ready(Ok(()))
    }
}

macro_rules! typed_stream {
    ($(#[$doc:meta])* $name:ident, $item:ty, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(MessageStream);

        impl From<MessageStream> for $name {
            fn from(stream: MessageStream) -> Self {
                $name(stream)
            }
        }

        impl $name {
            /// The untyped stream.
            pub fn into_inner(self) -> MessageStream {
                self.0
            }
        }

        impl Stream for $name {
            type Item = io::Result<$item>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                let this = self.get_mut();
                this.0.poll_part(cx).map(|part| {
                    part.map(|part| match part? {
                        Message::$variant(p) => Ok(p),
                        other => Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("a {:?} part in a {} stream", other.kind(), stringify!($name)),
                        )),
                    })
                })
            }
        }

        impl AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
            }
        }
    };
}

typed_stream!(
    /// A text message read as it arrives: its parts as [`Utf8Bytes`] (whole characters each),
    /// or its UTF-8 through [`AsyncRead`]; Jakarta's `@OnMessage (Reader reader)`. With the
    /// macro, an `#[on_message]` handler that takes `TextStream` gets one per text message.
    ///
    /// ```
    /// use endpoint_runtime::{Endpoint, EndpointConfig, HookResult, Message, MessageMode};
    /// use endpoint_runtime::{MessageStream, PayloadKind, Session, TextStream};
    /// use futures::StreamExt;
    ///
    /// #[derive(Default)]
    /// struct Count;
    ///
    /// impl Endpoint for Count {
    ///     fn config() -> EndpointConfig {
    ///         EndpointConfig::new("/count")
    ///     }
    ///     async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
    ///         Ok(Some(m))
    ///     }
    ///     async fn on_stream(&mut self, _: &Session, stream: MessageStream) -> HookResult {
    ///         let mut text = TextStream::from(stream);
    ///         let mut chars = 0;
    ///         while let Some(part) = text.next().await {
    ///             chars += part.map_err(endpoint_runtime::EndpointError::Io)?.chars().count();
    ///         }
    ///         Ok(Some(Message::text(chars.to_string())))
    ///     }
    ///     fn message_mode(kind: PayloadKind) -> MessageMode {
    ///         match kind {
    ///             PayloadKind::Text => MessageMode::Stream,
    ///             _ => MessageMode::Whole,
    ///         }
    ///     }
    /// }
    /// ```
    TextStream,
    Utf8Bytes,
    Text
);

typed_stream!(
    /// A binary message read as it arrives: its parts as [`Bytes`], or through [`AsyncRead`];
    /// Jakarta's `@OnMessage (InputStream in)`. With the macro, an `#[on_message]` handler
    /// that takes `BinaryStream` gets one per binary message:
    ///
    /// ```text
    /// #[on_message]
    /// async fn upload(&mut self, mut data: BinaryStream) -> Result<String, std::io::Error> {
    ///     let mut file = tokio::fs::File::create("upload.bin").await?;
    ///     let n = tokio::io::copy(&mut data, &mut file).await?;
    ///     Ok(format!("{n} bytes"))
    /// }
    /// ```
    BinaryStream,
    Bytes,
    Binary
);
