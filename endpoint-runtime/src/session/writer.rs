//! Sending a message in parts: [`TextWriter`] and [`BinaryWriter`] (Jakarta's
//! `sendText(part, last)` / `sendBinary(part, last)` and `getSendStream()`), and
//! [`Session::send_text_stream`] / [`Session::send_binary_stream`] for a `Stream` of chunks.
//!
//! Each part goes out as one frame as soon as it is sent (the message's opcode on the first,
//! continuation frames after, FIN on the last), uncompressed. While a writer's message is
//! open, every other data message of the session (another task's [`Session::send`], a
//! broadcast, a handler's reply) waits behind its last part, and a second writer waits to
//! open: the queue's side of it is `outbound/writer.rs`. The messages that wait count against
//! the session's outbound bound like queued ones (a broadcast that does not fit closes the
//! session with 1008, as for any slow consumer): keep a message in parts short-lived, or send
//! broadcasts elsewhere meanwhile.

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::Session;
use crate::error::SendError;
use crate::message::Utf8Bytes;
use crate::protocol::coding::OpCode;
use crate::protocol::frame::Outgoing;

/// The state both writers share.
#[derive(Debug)]
struct PartWriter {
    session: Session,
    opcode: OpCode,
    /// The writer holds the session's queue (its message is open).
    open: bool,
    /// A part of the open message was queued (the next one is a continuation).
    started: bool,
}

impl PartWriter {
    fn new(session: &Session, opcode: OpCode) -> PartWriter {
        PartWriter {
            session: session.clone(),
            opcode,
            open: false,
            started: false,
        }
    }

    async fn send(&mut self, payload: Bytes, last: bool) -> Result<(), SendError> {
        let out = self.session.outbound();
        if !self.open {
            out.open_writer().await?;
            self.open = true;
            self.started = false;
        }
        let opcode = if self.started {
            OpCode::Continuation
        } else {
            self.opcode
        };
        let part = Outgoing::part(opcode, payload, last);
        match out.push_part(part, last).await {
            Ok(()) => {
                self.started = true;
                if last {
                    self.open = false;
                }
                Ok(())
            }
            Err(e) => {
                // Closed: the session dropped the writer's hold with its queue.
                self.open = false;
                Err(e)
            }
        }
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if self.open {
            // The message ends here (an empty last frame), and what waited goes.
            let last = self
                .started
                .then(|| Outgoing::part(OpCode::Continuation, Bytes::new(), true));
            self.session.outbound().abort_writer(last);
        }
    }
}

/// Sends text messages in parts; from [`Session::text_writer`].
///
/// [`send`](TextWriter::send) queues one part (waiting for room, like [`Session::send`]) and
/// `last = true` ends the message; the writer can then start the next one. Dropped in the
/// middle of a message, it ends it with an empty last frame.
///
/// ```no_run
/// # async fn f(session: endpoint_runtime::Session) -> Result<(), endpoint_runtime::SendError> {
/// let mut writer = session.text_writer();
/// writer.send("Hello, ", false).await?;
/// writer.send("world", true).await?; // one message, "Hello, world", in two frames
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TextWriter(PartWriter);

/// Sends binary messages in parts; from [`Session::binary_writer`]. As [`TextWriter`].
///
/// ```no_run
/// # async fn f(session: endpoint_runtime::Session) -> Result<(), endpoint_runtime::SendError> {
/// let mut writer = session.binary_writer();
/// for chunk in [&b"abc"[..], b"def"] {
///     writer.send(chunk, false).await?;
/// }
/// writer.finish().await?; // an empty last frame ends the message
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BinaryWriter(PartWriter);

impl TextWriter {
    /// Sends one part of the message; `last` ends it. The first part of a message waits
    /// while another writer of the session has a message open.
    pub async fn send(&mut self, part: impl Into<Utf8Bytes>, last: bool) -> Result<(), SendError> {
        self.0
            .send(Bytes::from(Into::<Utf8Bytes>::into(part)), last)
            .await
    }

    /// Ends the open message with an empty last part (nothing when none is open).
    pub async fn finish(mut self) -> Result<(), SendError> {
        if self.0.open {
            self.0.send(Bytes::new(), true).await?;
        }
        Ok(())
    }

    /// Whether a message was started and not ended yet.
    pub fn is_open(&self) -> bool {
        self.0.open
    }
}

impl BinaryWriter {
    /// Sends one part of the message; `last` ends it. The first part of a message waits
    /// while another writer of the session has a message open.
    pub async fn send(&mut self, part: impl Into<Bytes>, last: bool) -> Result<(), SendError> {
        self.0.send(part.into(), last).await
    }

    /// Ends the open message with an empty last part (nothing when none is open).
    pub async fn finish(mut self) -> Result<(), SendError> {
        if self.0.open {
            self.0.send(Bytes::new(), true).await?;
        }
        Ok(())
    }

    /// Whether a message was started and not ended yet.
    pub fn is_open(&self) -> bool {
        self.0.open
    }
}

impl Session {
    /// A writer of text messages in parts (Jakarta's `sendText(part, last)`, `getSendWriter()`);
    /// see [`TextWriter`]. Nothing is held until its first part.
    pub fn text_writer(&self) -> TextWriter {
        TextWriter(PartWriter::new(self, OpCode::Text))
    }

    /// A writer of binary messages in parts (Jakarta's `sendBinary(part, last)`,
    /// `getSendStream()`); see [`BinaryWriter`]. Nothing is held until its first part.
    pub fn binary_writer(&self) -> BinaryWriter {
        BinaryWriter(PartWriter::new(self, OpCode::Binary))
    }

    /// Sends one text message made of `parts`, each as a frame as soon as the stream yields it
    /// (so a message of any size goes out in the memory of one part), through a
    /// [`TextWriter`]: nothing else of the session's comes between its frames.
    ///
    /// ```no_run
    /// # async fn f(session: endpoint_runtime::Session) -> Result<(), endpoint_runtime::SendError> {
    /// let parts = futures::stream::iter(["one ", "two ", "three"]);
    /// session.send_text_stream(parts).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_text_stream<T: Into<Utf8Bytes>>(
        &self,
        parts: impl Stream<Item = T>,
    ) -> Result<(), SendError> {
        let mut writer = self.text_writer();
        send_all(parts.map(|p| Bytes::from(p.into())), &mut writer.0).await
    }

    /// [`Session::send_text_stream`] for a binary message.
    pub async fn send_binary_stream<T: Into<Bytes>>(
        &self,
        parts: impl Stream<Item = T>,
    ) -> Result<(), SendError> {
        let mut writer = self.binary_writer();
        send_all(parts.map(Into::into), &mut writer.0).await
    }
}

/// Sends every part, the last one with FIN: one part is held back to know which is last.
async fn send_all(
    parts: impl Stream<Item = Bytes>,
    writer: &mut PartWriter,
) -> Result<(), SendError> {
    let mut parts = std::pin::pin!(parts);
    let mut held: Option<Bytes> = None;
    while let Some(part) = parts.next().await {
        if let Some(previous) = held.replace(part) {
            writer.send(previous, false).await?;
        }
    }
    writer.send(held.unwrap_or_default(), true).await
}
