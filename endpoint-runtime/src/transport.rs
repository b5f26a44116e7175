//! The byte stream under a WebSocket: the TCP (or TLS) stream itself, recovered from hyper's
//! type-erased `Upgraded` so that reads and writes skip a boxed trait object and a rewind layer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's stream after the upgrade.
#[derive(Debug)]
pub(crate) enum Transport {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Whatever hyper upgraded when it is not one of the above.
    Upgraded(TokioIo<Upgraded>),
}

impl Transport {
    /// Unwraps hyper's `Upgraded`; returns the stream and the bytes hyper read past the request.
    pub(crate) fn from_upgraded(upgraded: Upgraded) -> (Transport, Vec<u8>) {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                return (
                    Transport::Tcp(parts.io.into_inner()),
                    parts.read_buf.to_vec(),
                )
            }
            Err(upgraded) => upgraded,
        };
        #[cfg(feature = "tls")]
        let upgraded =
            match upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>() {
                Ok(parts) => {
                    let io = Box::new(parts.io.into_inner());
                    return (Transport::Tls(io), parts.read_buf.to_vec());
                }
                Err(upgraded) => upgraded,
            };
        (Transport::Upgraded(TokioIo::new(upgraded)), Vec::new())
    }
}

macro_rules! each {
    ($self:ident, $io:ident => $e:expr) => {
        match $self.get_mut() {
            Transport::Tcp($io) => $e,
            #[cfg(feature = "tls")]
            Transport::Tls($io) => $e,
            Transport::Upgraded($io) => $e,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tcp(io) => io.is_write_vectored(),
            #[cfg(feature = "tls")]
            Transport::Tls(io) => io.is_write_vectored(),
            Transport::Upgraded(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => Pin::new(io).poll_shutdown(cx))
    }
}
