//! The byte stream under a WebSocket: the TCP (or TLS) stream itself, recovered from hyper's
//! type-erased `Upgraded` so that reads and writes skip a boxed trait object and a rewind layer.
//! Buffering is not done here: `io.rs` reads and writes through per-thread scratch buffers.
//!
//! A plain TCP stream does not live here but in the session's outbound queue, where broadcasts
//! write to it directly (`session::outbound`); every call takes that queue as `home`, and
//! locks it for the call.
//!
//! A plain TCP stream is not registered with tokio either: it is a std stream in non-blocking
//! mode, registered with the server's connection reactor (`reactor.rs`), which sets the
//! readiness bits in `home.ready` at every edge and schedules the connection. The protocol
//! (tokio's `ScheduledIo`, reduced to what one task needs): an operation is tried only while
//! its bit is set; `WouldBlock` clears the bit unless an edge came in meanwhile (each edge
//! also adds [`TICK`], so the compare-and-swap fails then); `Pending` registers no waker,
//! because the reactor wakes the connection at every edge of its socket. That holds because a
//! plain TCP connection is always polled as a reactor connection (`reactor::Conn`).

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::session::Outbound;

/// The session's stream was closed (the connection task ended).
fn gone<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
}

/// The stream may be read (or has reached its end, or failed).
pub(crate) const READ: u32 = 1;
/// The stream may be written.
pub(crate) const WRITE: u32 = 2;
/// Added at each edge the reactor reports (above the bits).
pub(crate) const TICK: u32 = 4;

/// Runs `op` on a plain TCP stream while `bit` says it may succeed (see the module docs).
/// `clear_short`: whether a result shorter than `want` means the socket is drained (a short
/// read or write), which saves the system call that would only say `WouldBlock`.
fn ready_io(
    ready: &AtomicU32,
    bit: u32,
    want: usize,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        let seen = ready.load(Ordering::Acquire);
        if seen & bit == 0 {
            return Poll::Pending;
        }
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ =
                    ready.compare_exchange(seen, seen & !bit, Ordering::AcqRel, Ordering::Acquire);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(n) if n > 0 && n < want => {
                let _ =
                    ready.compare_exchange(seen, seen & !bit, Ordering::AcqRel, Ordering::Acquire);
                return Poll::Ready(Ok(n));
            }
            result => return Poll::Ready(result),
        }
    }
}

/// A connection's stream after the upgrade.
#[derive(Debug)]
pub(crate) enum Transport {
    /// A plain TCP stream, kept in the session's outbound queue (`home`) so that broadcasts
    /// can write to it too; locked for each call.
    Tcp,
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Whatever hyper upgraded when it is not one of the above (boxed: larger): an HTTP/2
    /// stream (RFC 8441; hyper's stream type is private, and it honours the stream's flow
    /// control in `poll_write`), or the stream of an outer server (axum, hyper-util's auto
    /// builder) that wraps the socket.
    Upgraded(Box<TokioIo<Upgraded>>),
}

macro_rules! each {
    ($io:expr, $home:expr, $s:ident => $e:expr, $tcp:ident => $t:expr) => {
        match $io {
            Transport::Tcp => $home.with_stream(|stream| match stream {
                Some($tcp) => $t,
                None => gone(),
            }),
            #[cfg(feature = "tls")]
            Transport::Tls($s) => $e,
            Transport::Upgraded($s) => {
                let $s = &mut **$s;
                $e
            }
        }
    };
}

impl Transport {
    /// Unwraps hyper's `Upgraded`; returns the stream and the bytes hyper read past the request.
    /// A plain TCP stream goes into `home` (see [`Transport::Tcp`]).
    ///
    /// A client's stream stays `Upgraded` and never goes into `home`: broadcasts write server
    /// frames (unmasked) directly, which a client must never send.
    pub(crate) fn from_upgraded(
        upgraded: Upgraded,
        home: &Outbound,
        client: bool,
    ) -> (Transport, Vec<u8>) {
        if client {
            return (
                Transport::Upgraded(Box::new(TokioIo::new(upgraded))),
                Vec::new(),
            );
        }
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                // Taken out of tokio's driver for the connection reactor (`reactor.rs`); if
                // tokio cannot let it go, the stream is dropped and the connection ends as
                // one whose transport is gone.
                match parts.io.into_inner().into_std() {
                    Ok(stream) => {
                        home.ready.store(READ | WRITE, Ordering::Release);
                        home.attach(stream);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot move the stream to the reactor"),
                }
                return (Transport::Tcp, parts.read_buf.to_vec());
            }
            Err(upgraded) => upgraded,
        };
        #[cfg(feature = "tls")]
        let upgraded =
            match upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>() {
                Ok(parts) => {
                    let io = Transport::Tls(Box::new(parts.io.into_inner()));
                    return (io, parts.read_buf.to_vec());
                }
                Err(upgraded) => upgraded,
            };
        (
            Transport::Upgraded(Box::new(TokioIo::new(upgraded))),
            Vec::new(),
        )
    }

    /// Reads into `buf`; `Ready(Ok(0))` at the end of the stream. (`TcpStream` also clears its
    /// readiness after a short read, which saves a read that would only say `EAGAIN`.)
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        each!(self, home, io => {
            let mut read = ReadBuf::new(buf);
            futures::ready!(Pin::new(io).poll_read(cx, &mut read))?;
            Poll::Ready(Ok(read.filled().len()))
        }, tcp => ready_io(&home.ready, READ, want, || tcp.read(buf)))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, home, io => Pin::new(io).poll_write(cx, buf),
              tcp => ready_io(&home.ready, WRITE, buf.len(), || tcp.write(buf)))
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.iter().map(|b| b.len()).sum();
        each!(self, home, io => Pin::new(io).poll_write_vectored(cx, bufs),
              tcp => ready_io(&home.ready, WRITE, want, || tcp.write_vectored(bufs)))
    }

    /// Ends our side of the stream (shutdown of writes; TLS sends close_notify first).
    pub(crate) fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
    ) -> Poll<io::Result<()>> {
        each!(self, home, io => Pin::new(io).poll_shutdown(cx),
              tcp => Poll::Ready(tcp.shutdown(std::net::Shutdown::Write)))
    }

    pub(crate) fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
    ) -> Poll<io::Result<()>> {
        if let Transport::Tcp = self {
            // TCP has nothing to flush: no lock for it.
            return Poll::Ready(Ok(()));
        }
        each!(self, home, io => Pin::new(io).poll_flush(cx), _tcp => Poll::Ready(Ok(())))
    }
}
