//! The byte stream under a WebSocket: the TCP (or TLS) stream itself, recovered from hyper's
//! type-erased `Upgraded` so that reads and writes skip a boxed trait object and a rewind layer.
//! Buffering is not done here: `ws.rs` reads and writes through per-thread scratch buffers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::session::Session;

/// The session's stream was closed (the connection task ended).
fn gone<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
}

/// A connection's stream after the upgrade.
#[derive(Debug)]
pub(crate) enum Transport {
    /// A plain TCP stream, kept in the session's outbound state so that broadcasts can write
    /// to it too (see `session::Outbound`); locked for each call.
    Shared(Session),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Whatever hyper upgraded when it is not one of the above (boxed: rare, and larger).
    Upgraded(Box<TokioIo<Upgraded>>),
}

macro_rules! each {
    ($io:expr, $s:ident => $e:expr) => {
        match $io {
            Transport::Shared(session) => session.inner.out.with_stream(|stream| match stream {
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
    /// A plain TCP stream goes into `session` (see [`Transport::Shared`]).
    pub(crate) fn from_upgraded(upgraded: Upgraded, session: &Session) -> (Transport, Vec<u8>) {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                session.inner.out.attach(parts.io.into_inner());
                let io = Transport::Shared(session.clone());
                return (io, parts.read_buf.to_vec());
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
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        futures::ready!(each!(self, io => Pin::new(io).poll_read(cx, &mut read)))?;
        Poll::Ready(Ok(read.filled().len()))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Transport::Shared(_) = self {
            // TCP has nothing to flush: no lock for it.
            return Poll::Ready(Ok(()));
        }
        each!(self, io => Pin::new(io).poll_flush(cx))
    }
}
