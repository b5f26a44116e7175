//! The byte stream under a WebSocket: the TCP (or TLS) stream itself, recovered from hyper's
//! type-erased `Upgraded` so that reads and writes skip a boxed trait object and a rewind layer.
//! Buffering is not done here: `io.rs` reads and writes through per-thread scratch buffers.
//!
//! A plain TCP stream does not live here but in the session's outbound queue, where broadcasts
//! write to it directly (`session::outbound`); every call takes that queue as `home`, and
//! locks it for the call.

use std::io;
use std::pin::Pin;
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
    ($io:expr, $home:expr, $s:ident => $e:expr) => {
        match $io {
            Transport::Tcp => $home.with_stream(|stream| match stream {
                Some($s) => $e,
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
                home.attach(parts.io.into_inner());
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
        let mut read = ReadBuf::new(buf);
        futures::ready!(each!(self, home, io => Pin::new(io).poll_read(cx, &mut read)))?;
        Poll::Ready(Ok(read.filled().len()))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, home, io => Pin::new(io).poll_write(cx, buf))
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, home, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    /// Ends our side of the stream (shutdown of writes; TLS sends close_notify first).
    pub(crate) fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        home: &Outbound,
    ) -> Poll<io::Result<()>> {
        each!(self, home, io => Pin::new(io).poll_shutdown(cx))
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
        each!(self, home, io => Pin::new(io).poll_flush(cx))
    }
}
