//! The byte stream under a WebSocket: the TCP (or TLS) stream itself, recovered from hyper's
//! type-erased `Upgraded` so that reads and writes skip a boxed trait object and a rewind layer.
//!
//! # Reads without a per-connection buffer
//!
//! tungstenite keeps a read buffer per connection, allocated up front, and reads at most its
//! size per call. To keep idle connections small, the runtime gives tungstenite a small buffer
//! ([`Limits::read_buffer_size`](crate::Limits::read_buffer_size), 512 bytes) and reads the
//! socket here, in large chunks, into a scratch buffer shared by all connections of a thread.
//! What tungstenite cannot take at once is kept in a per-connection remainder that exists only
//! until it is consumed. An idle connection holds no read buffer of its own beyond
//! tungstenite's small one, and a 16 KiB message still takes one `read` system call.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Size of the per-thread scratch buffer: the most one `read` system call takes.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A connection's stream after the upgrade.
#[derive(Debug)]
pub(crate) struct Transport {
    io: Io,
    /// Bytes read from the socket that the reader has not taken yet (TCP only).
    rest: Option<Box<Rest>>,
}

#[derive(Debug)]
struct Rest {
    bytes: Vec<u8>,
    pos: usize,
}

#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Whatever hyper upgraded when it is not one of the above.
    Upgraded(TokioIo<Upgraded>),
}

impl Transport {
    fn new(io: Io) -> Self {
        Transport { io, rest: None }
    }

    /// Unwraps hyper's `Upgraded`; returns the stream and the bytes hyper read past the request.
    pub(crate) fn from_upgraded(upgraded: Upgraded) -> (Transport, Vec<u8>) {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let io = Io::Tcp(parts.io.into_inner());
                return (Transport::new(io), parts.read_buf.to_vec());
            }
            Err(upgraded) => upgraded,
        };
        #[cfg(feature = "tls")]
        let upgraded =
            match upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>() {
                Ok(parts) => {
                    let io = Io::Tls(Box::new(parts.io.into_inner()));
                    return (Transport::new(io), parts.read_buf.to_vec());
                }
                Err(upgraded) => upgraded,
            };
        (
            Transport::new(Io::Upgraded(TokioIo::new(upgraded))),
            Vec::new(),
        )
    }

    /// Serves a read from the remainder, freeing it once consumed.
    fn read_rest(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let Some(rest) = &mut self.rest else {
            return false;
        };
        let n = buf.remaining().min(rest.bytes.len() - rest.pos);
        buf.put_slice(&rest.bytes[rest.pos..rest.pos + n]);
        rest.pos += n;
        if rest.pos == rest.bytes.len() {
            self.rest = None;
        }
        true
    }
}

/// Reads the socket through the thread's scratch buffer: what fits goes to `buf`, the rest to
/// a remainder allocated for just as long as it is needed. (`TcpStream::poll_read` also clears
/// the readiness after a short read, which saves a read that would only say `EAGAIN`.)
fn poll_read_tcp(
    stream: &mut TcpStream,
    rest: &mut Option<Box<Rest>>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    SCRATCH_BUF.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < SCRATCH {
            scratch.resize(SCRATCH, 0);
        }
        let mut read = ReadBuf::new(&mut scratch[..]);
        futures::ready!(Pin::new(stream).poll_read(cx, &mut read))?;
        let filled = read.filled();
        let take = filled.len().min(buf.remaining());
        buf.put_slice(&filled[..take]);
        if take < filled.len() {
            *rest = Some(Box::new(Rest {
                bytes: filled[take..].to_vec(),
                pos: 0,
            }));
        }
        Poll::Ready(Ok(()))
    })
}

macro_rules! each {
    ($io:expr, $s:ident => $e:expr) => {
        match $io {
            Io::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            Io::Tls($s) => $e,
            Io::Upgraded($s) => $e,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_rest(buf) {
            return Poll::Ready(Ok(()));
        }
        match &mut this.io {
            Io::Tcp(s) => poll_read_tcp(s, &mut this.rest, cx, buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Io::Upgraded(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().io, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().io, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(&self.io, io => io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().io, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().io, io => Pin::new(io).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Small reads are served from one large socket read; nothing is lost or reordered, and the
    /// remainder is gone once consumed.
    #[tokio::test]
    async fn small_reads_over_one_large_socket_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&sent).await.unwrap();
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut t = Transport::new(Io::Tcp(server));
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let n = t.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, data);
        assert!(t.rest.is_none());
    }
}
