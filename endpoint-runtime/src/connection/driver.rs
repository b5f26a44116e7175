//! The connection driver: one task per WebSocket connection, running the endpoint's hooks one
//! at a time while it keeps writing the session's outbound queue.
//!
//! The task owns the socket. It waits for the next event (an inbound message, queued outbound
//! messages, a close request), and while a hook runs it keeps draining the outbound queue into
//! the socket, so a hook that awaits [`Session::send`] never deadlocks against its own writer.
//! Reading pauses while a hook runs: one hook at a time per session, and TCP backpressure on a
//! client that sends faster than its handler keeps up.
//!
//! Writes are coalesced: replies and queued messages collect in a batch while more input is
//! ready, and the batch is written with one system call (see `io.rs` for the framing).
//!
//! This is the one place where the user's [`Session`] meets its bytes: the driver takes the
//! receiving side of the session's outbound queue, feeds the frames `io.rs` decodes to the
//! endpoint's hooks, and hands what they reply to `io.rs`. Below it, nothing names a session.
//!
//! Every ending path funnels into one place that runs `on_close` exactly once, last.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use futures::FutureExt;
use tracing::{debug, warn, Instrument};

use hyper::upgrade::Upgraded;

use super::io::{FrameIo, Pongs, ReadError};
use super::{timer, ConnectionContext};
use crate::endpoint::{Endpoint, HookResult, MessageLimits, MessageMode};
use crate::error::EndpointError;
use crate::message::{CloseCode, CloseReason, Message, PayloadKind};
use crate::protocol::deflate::DeflateParams;
use crate::protocol::frame::{Inbound, Outgoing};
use crate::session::stream::Feed;
use crate::session::{Handshake, PendingClose, Session};
use crate::stats;

/// Runs `f`, turning a panic into its message.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(panic_message)
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The framing layer over the upgraded connection, sized by the server's limits.
fn frame_io(
    upgraded: Upgraded,
    session: &Session,
    ctx: &ConnectionContext,
    deflate: Option<DeflateParams>,
) -> FrameIo {
    let limits = &ctx.limits;
    FrameIo::new(
        upgraded,
        session.outbound(),
        limits.read_buffer_size,
        limits.write_buffer_size,
        deflate,
        ctx.client,
    )
}

/// Closes a connection whose endpoint could not be created (factory panicked): 1011.
pub(crate) async fn refuse(upgraded: Upgraded, session: Session, ctx: Arc<ConnectionContext>) {
    let mut io = frame_io(upgraded, &session, &ctx, None);
    let reason = CloseReason::new(CloseCode::INTERNAL_ERROR, "endpoint could not be created");
    let out = session.outbound();
    let mut frame = Some(Some(reason));
    let closing = poll_fn(|cx| io.poll_close(cx, out, &mut frame));
    let _ = tokio::time::timeout(ctx.limits.close_timeout, closing).await;
    out.shut();
    out.release_stream();
}

/// Drives one connection from the completed handshake to `on_close`.
///
/// Not an `async fn`: what can be set up at once is, so that the future (which lives as long
/// as the connection) holds the driver and the endpoint, and no second copy of its arguments.
pub(crate) fn run<E: Endpoint>(
    endpoint: E,
    upgraded: Upgraded,
    session: Session,
    handshake: Handshake,
    limits: Arc<MessageLimits>,
    ctx: Arc<ConnectionContext>,
    deflate: Option<DeflateParams>,
) -> impl Future<Output = (E, CloseReason)> + Send {
    let span = tracing::debug_span!(
        "ws",
        session = %session.id(),
        path = %session.request_uri().path(),
        peer = ?session.remote_addr(),
    );
    let now = ctx.timers.now_ms();
    let mut driver = Driver {
        io: frame_io(upgraded, &session, &ctx, deflate),
        session,
        ctx,
        batch: Batch::default(),
        pongs: Pongs::default(),
        broken: false,
        limits,
        armed: timer::NONE,
        last_seen: now,
        last_data: now,
        ping_sent: timer::NONE,
        seen: 0,
        data: 0,
        marks: (0, 0),
        direct_seen: 0,
    };
    let connection = async move { driver.life(endpoint, &handshake).await };
    // Entering a span on every poll costs even when nothing listens: only when it is enabled,
    // and boxed then, so that the span's bytes are not in every connection's future.
    if span.is_disabled() {
        futures::future::Either::Left(connection)
    } else {
        futures::future::Either::Right(Box::pin(connection.instrument(span)))
    }
}

/// What woke the driver up.
enum Event {
    /// A whole message, or (for a kind the endpoint takes in parts or as a stream) one
    /// frame's part of a message: whether it was the last is the decoder's to say
    /// (`FrameIo::in_message`), so that `Event` stays the size of a `Message`, and the
    /// connection future with it.
    Message(Message),
    PeerClose(Option<CloseReason>),
    CloseRequested(PendingClose),
    /// Broadcasts dropped this many messages for the session (`SlowConsumer::Drop`).
    Dropped(u64),
    Failed(EndpointError),
    /// The connection ended without a close frame.
    Gone(Option<std::io::Error>),
}

/// Whether `message` is a part: of a kind `E` takes in parts or as a stream.
fn is_part<E: Endpoint>(message: &Message) -> bool {
    match message {
        Message::Text(_) => parts::<E>()[0],
        Message::Binary(_) => parts::<E>()[1],
        _ => false,
    }
}

/// The kinds an endpoint takes in parts or as a stream (text, binary): known from its type.
fn parts<E: Endpoint>() -> [bool; 2] {
    [
        E::message_mode(PayloadKind::Text) != MessageMode::Whole,
        E::message_mode(PayloadKind::Binary) != MessageMode::Whole,
    ]
}

/// How the session ends.
enum Ending {
    /// The peer sent a close frame (`None`: without a code); it is answered with the same.
    PeerClosed(Option<CloseReason>),
    /// We close with this reason (sending the frame, then waiting for the answer), after
    /// writing what `Flush` says.
    Close(CloseReason, Flush),
    /// The transport is gone: no close handshake, `on_close` gets 1006.
    Abnormal(String),
}

/// What goes out before our close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// Everything queued: the application closed, after what it had sent.
    Queue,
    /// What the connection task already holds (the replies to messages that arrived before a
    /// fault, and the pongs due), not the queue: a valid message before a protocol error is
    /// answered, then the connection is failed.
    Taken,
    /// Nothing: the peer is not reading (a slow consumer).
    Nothing,
}

/// Replies and messages taken from the outbound queue, not written yet: boxed while there are
/// any, and freed once they are written, so that a waiting connection's future holds 8 bytes
/// for them rather than a `VecDeque`'s 32.
#[derive(Default)]
// The box is the point: 8 bytes inline instead of 32, for state a waiting connection has not.
#[allow(clippy::box_collection)]
struct Batch(Option<Box<VecDeque<Outgoing>>>);

impl Batch {
    /// Runs `f` on the batch (an empty one, not allocated, when there is none), keeping what
    /// it leaves, and freeing the batch once it is empty.
    fn with<R>(&mut self, f: impl FnOnce(&mut VecDeque<Outgoing>) -> R) -> R {
        match &mut self.0 {
            Some(batch) => {
                let r = f(batch);
                if batch.is_empty() {
                    self.0 = None;
                }
                r
            }
            None => {
                let mut batch = VecDeque::new();
                let r = f(&mut batch);
                if !batch.is_empty() {
                    self.0 = Some(Box::new(batch));
                }
                r
            }
        }
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clear(&mut self) {
        self.0 = None;
    }
}

struct Driver {
    io: FrameIo,
    session: Session,
    /// What this connection shares with the others of its server.
    ctx: Arc<ConnectionContext>,
    /// Replies and messages taken from the outbound queue, not written yet.
    batch: Batch,
    /// The answers to the peer's pings, in order, written before the batch. At most
    /// [`MAX_PENDING_PONGS`]: a peer that pings faster than it reads is not read any further
    /// until they are written (TCP backpressure, no unbounded memory).
    pongs: Pongs,
    /// Whether writing failed (the transport is gone).
    broken: bool,
    /// Per-kind message limits (shared by the endpoint's connections).
    limits: Arc<MessageLimits>,
    /// The deadline handed to the server's timers (`timer.rs`), which wake the driver then.
    /// Times are milliseconds on the timers' clock.
    armed: u64,
    /// Last frame of any kind from the peer.
    last_seen: u64,
    /// Last data message in either direction (for the idle timeout).
    last_data: u64,
    /// When the unanswered keep-alive ping went out (`NONE`: no ping is out).
    ping_sent: u64,
    /// Activity counters (frames from the peer, data messages either way), turned into
    /// `last_seen`/`last_data` once per batch rather than reading the clock per message.
    seen: u32,
    data: u32,
    marks: (u32, u32),
    /// `direct_sent` of the session's outbound side when last looked at.
    direct_seen: u32,
}

impl Driver {
    /// The session's whole life; gives the endpoint back with the reason it closed (a client
    /// that reconnects keeps its endpoint).
    async fn life<E: Endpoint>(
        &mut self,
        mut endpoint: E,
        handshake: &Handshake,
    ) -> (E, CloseReason) {
        let session = self.session.clone();
        session.registry().insert(&session);
        // Dropped with the task too (e.g. at the end of a shutdown drain): the session then
        // still leaves the registry and its rooms.
        let _registered = Registered(session.clone());
        if self.ctx.shutting_down.load(Ordering::SeqCst) {
            session.close_internal(CloseReason::new(
                CloseCode::GOING_AWAY,
                "server shutting down",
            ));
        }
        debug!("open");

        // Cold paths (on_open, errors, closing, on_close) are boxed where they are awaited: a
        // future's size is that of its largest await point, and this one lives as long as the
        // connection. Only the per-message path stays inline.
        // Boxed: it is kept across every await of the loop, and is `None` until the end.
        let mut ending: Option<Box<Ending>> = Box::pin(async {
            match self.hook(endpoint.on_open(&session, handshake)).await {
                Ok(result) => self.outcome(&mut endpoint, result).await,
                Err(panic) => self.panicked(&mut endpoint, "on_open", panic).await,
            }
        })
        .await
        .map(Box::new);

        while ending.is_none() {
            let event = self.next_event::<E>().await;
            // Boxed, one allocation per event (a message's handling was boxed already): what
            // handles an event (the event itself, a hook's future) is not kept in this
            // future, which every waiting connection holds (see `future_size`).
            ending = Box::pin(self.on_event(&mut endpoint, event))
                .await
                .map(Box::new);
        }

        session.mark_ended();
        let ending = *ending.expect("loop ends with an ending");
        // Boxed: the closing handshake and `on_close` happen once.
        let reason = Box::pin(self.end(&mut endpoint, ending)).await;
        (endpoint, reason)
    }

    /// What an event leads to: `Some` once the session ends.
    async fn on_event<E: Endpoint>(&mut self, endpoint: &mut E, event: Event) -> Option<Ending> {
        let session = self.session.clone();
        match event {
            // Unsolicited pongs (and answers to keep-alive pings) are ignored unless the
            // endpoint has a pong handler (RFC 6455 5.5.3; Jakarta does the same).
            Event::Message(Message::Pong(_)) if !E::accepts(PayloadKind::Pong) => None,
            // Boxed: a future per part for endpoints that take parts, nothing for the others.
            Event::Message(message) if is_part::<E>(&message) => {
                let last = !self.io.in_message();
                Box::pin(self.part(endpoint, message, last)).await
            }
            // `unhandled = ignore`: Tomcat's way, for kinds without a handler.
            Event::Message(m) if self.limits.ignore_unhandled && !E::accepts(m.kind()) => {
                debug!(kind = m.kind().name(), "message without a handler ignored");
                None
            }
            // Inline: this future is the one allocation per message (see `life`).
            Event::Message(message) => self.message(endpoint, message).await,
            // Boxed: a future per part for endpoints that take parts, nothing for the others.
            Event::PeerClose(reason) => Some(Ending::PeerClosed(reason)),
            Event::CloseRequested(PendingClose::Requested(reason)) => {
                Some(Ending::Close(reason, Flush::Queue))
            }
            Event::CloseRequested(PendingClose::SendTimeout(after)) => {
                stats::add(&self.ctx.counters.slow_consumers, 1);
                Box::pin(self.error(endpoint, EndpointError::SendTimeout(after))).await
            }
            Event::CloseRequested(PendingClose::Overflow) => {
                stats::add(&self.ctx.counters.slow_consumers, 1);
                let limit = session.outbound().limit();
                Box::pin(self.error(endpoint, EndpointError::SlowConsumer { limit })).await
            }
            Event::Dropped(messages) => {
                let error = EndpointError::Dropped { messages };
                Box::pin(self.error(endpoint, error)).await
            }
            Event::Failed(error) => Box::pin(self.error(endpoint, error)).await,
            Event::Gone(err) => {
                let why = err
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "connection reset".into());
                Some(Ending::Abnormal(why))
            }
        }
    }

    /// The closing handshake as `ending` says, then `on_close`; the reason it closed with.
    async fn end<E: Endpoint>(&mut self, endpoint: &mut E, ending: Ending) -> CloseReason {
        let session = self.session.clone();
        let registry = session.registry().clone();
        let reason = match ending {
            Ending::PeerClosed(reason) => {
                session.outbound().shut();
                Box::pin(self.answer_close(reason.clone())).await;
                reason.unwrap_or_else(|| CloseReason::new(CloseCode::NO_STATUS, ""))
            }
            Ending::Close(reason, flush) => {
                Box::pin(self.close_with(&reason, flush)).await;
                reason
            }
            Ending::Abnormal(why) => {
                debug!(%why, "connection ended abnormally");
                session.outbound().shut();
                CloseReason::new(CloseCode::ABNORMAL, why)
            }
        };
        registry.remove(session.id());
        session.leave_all_rooms();
        debug!(
            code = reason.code().as_u16(),
            reason = reason.reason(),
            "closed"
        );
        if let Err(panic) = Box::pin(self.hook(endpoint.on_close(&session, reason.clone()))).await {
            warn!(%panic, "on_close panicked");
        }
        reason
    }

    /// One whole message: admitted (its kind's limit, whether the endpoint takes it), then
    /// `on_message`, then what it returned.
    async fn message<E: Endpoint>(&mut self, endpoint: &mut E, message: Message) -> Option<Ending> {
        let session = self.session.clone();
        // Checked in a plain function: a message borrowed here would be kept in this future
        // beside the one `on_message` moves it into.
        let result = match admit::<E>(&self.limits, message) {
            Ok(message) => self.hook(endpoint.on_message(&session, message)).await,
            Err(error) => Ok(Err(error)),
        };
        match result {
            Ok(result) => self.outcome(endpoint, result).await,
            Err(panic) => Box::pin(self.panicked(endpoint, "on_message", panic)).await,
        }
    }

    /// Turns a hook's result into the next step: send the reply, or report the error.
    async fn outcome<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        result: HookResult,
    ) -> Option<Ending> {
        match result {
            Ok(None) => None,
            Ok(Some(reply)) => {
                // Fast path: straight into this task's batch, behind what the handler queued.
                let out = self.session.outbound();
                let reply = match self.batch.with(|batch| out.push_local(reply.into(), batch)) {
                    Ok(()) => return None,
                    Err(reply) => reply,
                };
                // Replies wait for queue room like `Session::send`, while the queue drains,
                // bounded by the send timeout as it is (a peer that reads nothing is closed).
                let session = self.session.clone();
                let pushed = Box::pin(self.hook(session.push_bounded(reply))).await;
                match pushed {
                    Ok(Ok(())) | Ok(Err(_)) => None,
                    Err(panic) => Some(Ending::Abnormal(panic)),
                }
            }
            Err(error) => Box::pin(self.error(endpoint, error)).await,
        }
    }

    /// Hands an error to `on_error`, then closes if the error calls for it.
    async fn error<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        error: EndpointError,
    ) -> Option<Ending> {
        let code = error.close_code();
        let flush = match error {
            EndpointError::SlowConsumer { .. } | EndpointError::SendTimeout(_) => Flush::Nothing,
            _ => Flush::Taken,
        };
        // The close frame says why in a few words; a panic's message stays on the server (it
        // reaches on_error and the log), it may describe internals.
        let close_reason = code.map(|c| match &error {
            EndpointError::Panic(_) => CloseReason::new(c, "internal error"),
            e => CloseReason::new(c, e.to_string()),
        });
        match &error {
            EndpointError::Io(_) => debug!(%error, "transport error"),
            e if code.is_some() => debug!(error = %e, "closing on error"),
            e => debug!(error = %e, "error"),
        }
        let session = self.session.clone();
        match self.hook(endpoint.on_error(&session, error)).await {
            Ok(Ok(Some(reply))) if code.is_none() => {
                let _ = self.session.outbound().try_push(reply.into());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "on_error failed"),
            Err(panic) => {
                warn!(%panic, "on_error panicked");
                return Some(Ending::Close(
                    CloseReason::new(CloseCode::INTERNAL_ERROR, "on_error panicked"),
                    flush,
                ));
            }
        }
        match close_reason {
            None => None,
            Some(r) if r.code() == CloseCode::ABNORMAL => {
                Some(Ending::Abnormal(r.reason().to_owned()))
            }
            Some(r) => Some(Ending::Close(r, flush)),
        }
    }

    async fn panicked<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        hook: &str,
        panic: String,
    ) -> Option<Ending> {
        warn!(hook, %panic, "handler panicked");
        stats::add(&self.ctx.counters.panics, 1);
        self.error(endpoint, EndpointError::Panic(panic)).await
    }

    /// Polls `fut` to completion while writing the outbound queue; a panic becomes `Err`.
    async fn hook<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, String> {
        let mut fut = pin!(AssertUnwindSafe(fut).catch_unwind());
        let result = poll_fn(|cx| {
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(panic_message));
            }
            // The hook waits for something: write (and flush) what it queued meanwhile. The
            // waker is registered on every such poll (a wake-up consumes it), before the queue
            // is looked at, so nothing queued after this point goes unnoticed.
            self.session.outbound().register(cx.waker());
            self.pump_or_break(cx);
            Poll::Pending
        })
        .await;
        // Nothing was read while the hook ran: do not hold that time against the peer.
        self.seen = self.seen.wrapping_add(1);
        self.ping_sent = timer::NONE;
        result
    }

    /// A part of a message delivered in parts (`on_part`), or the first part of a message
    /// delivered as a stream (`on_stream`; its other parts are the stream's).
    async fn part<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        part: Message,
        last: bool,
    ) -> Option<Ending> {
        let kind = part.kind();
        let session = self.session.clone();
        let result = match E::message_mode(kind) {
            _ if !E::accepts(kind) => Ok(Err(EndpointError::Unsupported(kind))),
            MessageMode::Parts => self.hook(endpoint.on_part(&session, part, last)).await,
            MessageMode::Stream => {
                let (result, after, complete) = self.stream(endpoint, part, last).await;
                if !complete && after.is_none() {
                    // The hook returned early: the decoder drops the rest of the message.
                    self.io.discard_message();
                }
                let ending = match result {
                    Ok(result) => self.outcome(endpoint, result).await,
                    Err(panic) => self.panicked(endpoint, "on_message", panic).await,
                };
                return match (ending, after) {
                    (Some(ending), _) => Some(ending),
                    (None, None) => None,
                    // What the stream's hook read past its message, handled as the loop does.
                    (None, Some(Event::PeerClose(reason))) => Some(Ending::PeerClosed(reason)),
                    (None, Some(Event::Failed(error))) => self.error(endpoint, error).await,
                    (None, Some(Event::Gone(err))) => Some(Ending::Abnormal(
                        err.map_or_else(|| "connection reset".into(), |e| e.to_string()),
                    )),
                    (None, Some(_)) => {
                        self.error(
                            endpoint,
                            EndpointError::Protocol("message inside a message".into()),
                        )
                        .await
                    }
                };
            }
            MessageMode::Whole => Ok(Err(EndpointError::Unsupported(kind))),
        };
        match result {
            Ok(result) => self.outcome(endpoint, result).await,
            Err(panic) => self.panicked(endpoint, "on_message", panic).await,
        }
    }

    /// Runs `on_stream` for the message whose first part is `part`, feeding it the message's
    /// next parts as the hook takes them (one part held at a time; see `session::stream`).
    /// Returns the hook's result, what was read that must be handled after it (the peer's
    /// close, an error, the end of the connection: the stream then ended with an error), and
    /// whether the message's last part was read.
    async fn stream<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        part: Message,
        last: bool,
    ) -> (Result<HookResult, String>, Option<Event>, bool) {
        let session = self.session.clone();
        let (feed, stream) = Feed::start(part, last);
        let fut = endpoint.on_stream(&session, stream);
        let mut fut = pin!(AssertUnwindSafe(fut).catch_unwind());
        let mut after: Option<Event> = None;
        let decode = self.limits.decode_parts(parts::<E>());
        let result = poll_fn(|cx| loop {
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(panic_message));
            }
            // As in `hook`: write what the hook queued, registered first.
            self.session.outbound().register(cx.waker());
            self.pump_or_break(cx);
            if after.is_some() || !feed.wants() || self.pongs.len() >= MAX_PENDING_PONGS {
                return Poll::Pending;
            }
            let read = self.io.poll_read(cx, self.session.outbound(), decode);
            let ended = match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(inbound))) => {
                    self.seen = self.seen.wrapping_add(1);
                    match inbound {
                        Inbound::Part { part, last } => {
                            self.count_part(&part, last);
                            feed.push(part, last);
                            continue;
                        }
                        Inbound::Ping(payload) => {
                            self.session.outbound().busy();
                            self.pongs.push_back(payload);
                            continue;
                        }
                        // A pong handler cannot run while the stream's hook does: pongs that
                        // arrive inside a streamed message are not delivered (RFC 6455 5.5.3
                        // lets unsolicited pongs go unanswered).
                        Inbound::Message(Message::Pong(_)) => continue,
                        Inbound::Message(message) => Event::Message(message),
                        Inbound::Close(reason) => Event::PeerClose(reason),
                    }
                }
                Poll::Ready(Ok(None)) => Event::Gone(None),
                Poll::Ready(Err(ReadError::Protocol(e))) => Event::Failed(e),
                Poll::Ready(Err(ReadError::Io(e))) => Event::Gone(Some(e)),
            };
            after = Some(ended);
            feed.fail();
        })
        .await;
        self.seen = self.seen.wrapping_add(1);
        self.ping_sent = timer::NONE;
        let complete = feed.complete();
        (result, after, complete)
    }

    /// Counts a part read from the peer: its bytes, and the message at its last part.
    fn count_part(&mut self, part: &Message, last: bool) {
        let counters = &self.ctx.counters;
        stats::add(&counters.bytes_in, part.len() as u64);
        if last {
            stats::add(&counters.messages_in, 1);
        }
        self.data = self.data.wrapping_add(1);
    }

    fn pump_or_break(&mut self, cx: &mut Context<'_>) {
        if self.broken {
            return;
        }
        if let Poll::Ready(Err(e)) = self.poll_pump(cx, true) {
            debug!(error = %e, "write failed");
            self.broken = true;
            self.session.outbound().shut();
        }
    }

    /// Takes what is queued into the batch and, with `write`, writes the batch (one system call
    /// for all of it, as far as the socket takes it). `Ready(Ok)` when there is nothing left to
    /// take (and, with `write`, to write). The caller registers the writer waker first, on every
    /// poll: a wake-up may have been spent while the socket was full.
    fn poll_pump(&mut self, cx: &mut Context<'_>, write: bool) -> Poll<std::io::Result<()>> {
        let out = self.session.outbound();
        loop {
            // Send completion: read before taking the queue, marked once all of it is written.
            let mark = if write { out.written_mark() } else { None };
            self.batch.with(|batch| out.drain_into(batch));
            if write {
                // A broadcast's partly written frame goes first.
                if let Some(raw) = out.take_raw() {
                    self.io.push_raw(raw);
                }
            }
            if !write || (self.batch.is_empty() && self.pongs.is_empty()) {
                if write {
                    // Anything an earlier write left, and the flush (TLS).
                    let (io, pongs) = (&mut self.io, &mut self.pongs);
                    futures::ready!(self.batch.with(|batch| io.poll_write(
                        cx,
                        out,
                        pongs,
                        batch,
                        |_, _| {}
                    )))?;
                    if let Some(mark) = mark {
                        out.mark_written(mark);
                    }
                    // Everything is written: broadcasts may write to the socket themselves
                    // until something is queued or batched again.
                    if !out.is_closed() {
                        out.set_idle();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            out.busy();
            let counters = &self.ctx.counters;
            let (mut released, mut sent, mut data) = (0, 0, false);
            let (io, pongs) = (&mut self.io, &mut self.pongs);
            let written = self.batch.with(|batch| {
                io.poll_write(cx, out, pongs, batch, |counted, opcode| {
                    released += counted;
                    sent += 1;
                    data |= opcode.is_data();
                })
            });
            // Pongs answering pings never went through the queue: not released, not counted.
            out.release(released);
            stats::add(&counters.messages_out, sent);
            stats::add(&counters.bytes_out, released as u64);
            self.data = self.data.wrapping_add(u32::from(data));
            futures::ready!(written)?;
            if let Some(mark) = mark {
                out.mark_written(mark);
            }
        }
    }

    /// Waits for the next inbound message or close request, writing the queue meanwhile.
    async fn next_event<E: Endpoint>(&mut self) -> Event {
        poll_fn(|cx| {
            self.session.outbound().register(cx.waker());
            if let Some(close) = self.session.outbound().take_close() {
                return Poll::Ready(Event::CloseRequested(close));
            }
            if let Some(dropped) = self.session.outbound().take_dropped() {
                return Poll::Ready(Event::Dropped(dropped));
            }
            // Replies collect in the batch while more input is ready, so pipelined messages are
            // answered with one write; a long batch is written anyway.
            if !self.broken {
                let write = self.batch.len() >= 64;
                if let Poll::Ready(Err(e)) = self.poll_pump(cx, write) {
                    return Poll::Ready(self.write_failed(e));
                }
            }
            loop {
                if self.pongs.len() >= MAX_PENDING_PONGS && !self.broken {
                    // Answer what is due before reading more pings.
                    match self.poll_pump(cx, true) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(self.write_failed(e)),
                        Poll::Pending => return self.poll_timer(),
                    }
                }
                return match self.io.poll_read(
                    cx,
                    self.session.outbound(),
                    self.limits.decode_parts(parts::<E>()),
                ) {
                    Poll::Pending => {
                        if !self.broken {
                            if let Poll::Ready(Err(e)) = self.poll_pump(cx, true) {
                                return Poll::Ready(self.write_failed(e));
                            }
                        }
                        self.poll_timer()
                    }
                    Poll::Ready(Ok(None)) => Poll::Ready(Event::Gone(None)),
                    Poll::Ready(Ok(Some(inbound))) => {
                        self.seen = self.seen.wrapping_add(1);
                        self.ping_sent = timer::NONE;
                        Poll::Ready(match inbound {
                            Inbound::Message(message) => {
                                let counters = &self.ctx.counters;
                                stats::add(&counters.messages_in, 1);
                                stats::add(&counters.bytes_in, message.len() as u64);
                                if !matches!(message, Message::Pong(_)) {
                                    self.data = self.data.wrapping_add(1);
                                }
                                Event::Message(message)
                            }
                            Inbound::Ping(payload) => {
                                self.session.outbound().busy();
                                self.pongs.push_back(payload);
                                continue;
                            }
                            Inbound::Part { part, last } => {
                                self.count_part(&part, last);
                                Event::Message(part)
                            }
                            Inbound::Close(reason) => Event::PeerClose(reason),
                        })
                    }
                    Poll::Ready(Err(ReadError::Protocol(e))) => Poll::Ready(Event::Failed(e)),
                    Poll::Ready(Err(ReadError::Io(e))) => Poll::Ready(Event::Gone(Some(e))),
                };
            }
        })
        .await
    }

    fn write_failed(&mut self, e: std::io::Error) -> Event {
        self.broken = true;
        self.session.outbound().shut();
        Event::Gone(Some(e))
    }

    /// Idle timeout and keep-alive: sends pings when due, reports expiry, and otherwise hands
    /// the next deadline to the server's timers.
    fn poll_timer(&mut self) -> Poll<Event> {
        let (limits, timers) = (&self.ctx.limits, &self.ctx.timers);
        let out = self.session.outbound();
        // Broadcasts written to the socket directly are data sent too.
        let direct = out.direct_sent();
        self.data = self
            .data
            .wrapping_add(direct.wrapping_sub(self.direct_seen));
        self.direct_seen = direct;
        if (self.seen, self.data) != self.marks {
            let now = timers.now_ms();
            if self.seen != self.marks.0 {
                self.last_seen = now;
            }
            if self.data != self.marks.1 {
                self.last_data = now;
            }
            self.marks = (self.seen, self.data);
        }
        loop {
            let now = timers.now_ms();
            let idle_ms = u64::from(self.session.idle_timeout_ms());
            let idle = (idle_ms > 0).then(|| (self.last_data + idle_ms, true));
            let keep_alive = match (self.ping_sent, limits.ping_interval) {
                (timer::NONE, Some(interval)) => Some((self.last_seen + ms(interval), false)),
                (timer::NONE, None) => None,
                (sent, _) => Some((sent + ms(limits.pong_timeout), false)),
            };
            let next = match (idle, keep_alive) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            let Some((at, is_idle)) = next else {
                if self.armed != timer::NONE {
                    timers.set(out, timer::NONE);
                    self.armed = timer::NONE;
                }
                return Poll::Pending;
            };
            if at <= now {
                if is_idle {
                    let t = Duration::from_millis(idle_ms);
                    return Poll::Ready(Event::Failed(EndpointError::Timeout(format!(
                        "idle for {t:?}"
                    ))));
                }
                if self.ping_sent != timer::NONE {
                    return Poll::Ready(Event::Failed(EndpointError::NoPong(limits.pong_timeout)));
                }
                // Keep-alive ping: through the queue, so it is ordered with other frames. A full
                // queue means the peer is not reading; the pong deadline then catches it.
                let _ = out.try_push_control(Message::Ping(Bytes::new()).into());
                self.ping_sent = now;
                continue;
            }
            // Deadlines mostly move later (every frame pushes them back); the timers are told
            // only when it changed, and a wake-up before it is checked here again.
            if at != self.armed {
                timers.set(out, at);
                self.armed = at;
            }
            return Poll::Pending;
        }
    }

    /// Sends our close frame (after what `flush` says), then waits for the peer's, bounded by
    /// `close_timeout`: decoding it when the stream is still in step, else (after a protocol
    /// error) reading and discarding until the peer's end, so that the close frame reaches a peer
    /// that is still writing instead of being lost to a reset (RFC 6455 7.1.1: the server
    /// closes the TCP connection, after the peer has had the close).
    async fn close_with(&mut self, reason: &CloseReason, flush: Flush) {
        let session = self.session.clone();
        let out = session.outbound();
        let timeout = self.ctx.limits.close_timeout;
        if flush == Flush::Taken {
            // Nothing new is taken: only what is held, and the rest of a direct write.
            out.shut();
        }
        if flush != Flush::Nothing && !self.broken {
            let written = tokio::time::timeout(
                timeout,
                poll_fn(|cx| {
                    out.register(cx.waker());
                    self.poll_pump(cx, true)
                }),
            )
            .await;
            if !matches!(written, Ok(Ok(()))) {
                self.broken = true;
            }
        }
        out.shut();
        self.batch.clear();
        self.pongs.clear();
        if self.broken {
            return;
        }
        if let Some(raw) = out.take_raw() {
            self.io.push_raw(raw);
        }
        let mut frame = Some(Some(reason.clone()));
        let closing = poll_fn(|cx| self.io.poll_close(cx, out, &mut frame));
        let sent = tokio::time::timeout(timeout, closing).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        let decode = self.limits.decode();
        let mut budget = LINGER_MAX_BYTES;
        let _ = tokio::time::timeout(
            timeout,
            poll_fn(|cx| loop {
                if self.io.failed() {
                    return self.io.poll_linger(cx, out, &mut budget).map(|_| ());
                }
                match futures::ready!(self.io.poll_read(cx, out, decode)) {
                    Ok(Some(Inbound::Close(_))) | Ok(None) => return Poll::Ready(()),
                    // Out of step from here on: linger (the loop's first branch).
                    Err(_) => {}
                    Ok(Some(_)) => {}
                }
            }),
        )
        .await;
    }

    /// After the peer's close frame: write what is batched, then the same close back, bounded.
    async fn answer_close(&mut self, reason: Option<CloseReason>) {
        if self.broken {
            return;
        }
        let timeout = self.ctx.limits.close_timeout;
        let session = self.session.clone();
        let out = session.outbound();
        if let Some(raw) = out.take_raw() {
            self.io.push_raw(raw);
        }
        let mut frame = Some(reason);
        let _ = tokio::time::timeout(
            timeout,
            poll_fn(|cx| {
                let (io, pongs) = (&mut self.io, &mut self.pongs);
                futures::ready!(self.batch.with(|batch| io.poll_write(
                    cx,
                    out,
                    pongs,
                    batch,
                    |_, _| {}
                )))?;
                self.io.poll_close(cx, out, &mut frame)
            }),
        )
        .await;
    }
}

/// The most bytes read and discarded after our close frame while waiting for the peer's end
/// (besides the time bound, `close_timeout`): 64 MiB, many times any message a peer could have
/// been sending when it was refused.
const LINGER_MAX_BYTES: usize = 64 << 20;

/// The most pongs that wait to be written; see `Driver::pongs`.
const MAX_PENDING_PONGS: usize = 64;

/// A duration in whole milliseconds, at least 1.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4).max(1)
}

/// Checks an incoming message against the endpoint's limit for its kind and the kinds it
/// accepts.
fn admit<E: Endpoint>(limits: &MessageLimits, message: Message) -> Result<Message, EndpointError> {
    let kind = message.kind();
    let max = limits.for_kind(kind);
    if message.len() > max {
        Err(EndpointError::TooBig {
            size: message.len(),
            max,
        })
    } else if E::accepts(kind) {
        Ok(message)
    } else {
        Err(EndpointError::Unsupported(kind))
    }
}

/// Unregisters a session when its task ends, however it ends.
struct Registered(Session);

impl Drop for Registered {
    fn drop(&mut self) {
        let session = &self.0;
        session.mark_ended();
        session.outbound().shut();
        session.registry().remove(session.id());
        session.leave_all_rooms();
        // The socket closes with the task, whoever still holds the session.
        session.outbound().release_stream();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointConfig;

    #[derive(Default)]
    struct Echo;

    impl Endpoint for Echo {
        fn config() -> EndpointConfig {
            EndpointConfig::new("/e")
        }
        async fn on_message(&mut self, _: &Session, m: Message) -> HookResult {
            Ok(Some(m))
        }
    }

    /// The connection future lives as long as the connection: keep it small (cold paths are
    /// boxed). Printed by `cargo test -p endpoint-runtime future_size -- --nocapture`; the task
    /// around it is measured in `server::mount`.
    #[test]
    fn future_size() {
        fn size_of_output<A, B, C, D, E2, G, H, F: Future>(
            _: fn(A, B, C, D, E2, G, H) -> F,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        let size = size_of_output(run::<Echo>);
        fn size3<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn size1<A, F: Future>(_: fn(A) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        eprintln!(
            "life: {}, next_event: {}",
            size3(Driver::life::<Echo>),
            size1(Driver::next_event::<Echo>)
        );
        eprintln!(
            "connection future: {size} bytes, driver: {} bytes, life: {} bytes",
            std::mem::size_of::<Driver>(),
            size - std::mem::size_of::<Driver>(),
        );
        // A plain TCP connection's future waits boxed in the reactor (`reactor.rs`), every
        // byte of it held by every idle connection: 496 bytes before the message limits were
        // shared, the pongs boxed and the tracing span boxed (392), and an event's handling
        // and the ending were boxed out of `life` (288), and the batch boxed while it holds
        // anything (264; 272 with every feature: the TLS transport makes `FrameIo` 8 bytes
        // larger).
        assert!(size <= 272, "the connection future grew to {size} bytes");
    }
}
