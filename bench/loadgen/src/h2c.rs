//! WebSockets over HTTP/2 (RFC 8441) for `--h2 N`: the connections of a run are HTTP/2
//! streams opened with an extended CONNECT over N cleartext HTTP/2 connections (prior
//! knowledge), spread round-robin; each stream is then a byte stream ([`Stream::H2`]) carrying
//! the same pre-built masked frames as a TCP connection. The `h2` crate does the HTTP/2 side
//! (its connection task runs on the same current-thread runtime). What is read is given back
//! to the server's flow-control window at once; the windows are large (16 MiB per connection,
//! 1 MiB per stream), so flow control never throttles an echo run.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection of the run: a TCP stream, or an HTTP/2 stream.
pub(crate) enum Stream {
    Tcp(TcpStream),
    H2(H2Io),
}

/// One HTTP/2 stream as a byte stream.
pub(crate) struct H2Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    buf: Bytes,
}

fn h2_err(e: h2::Error) -> io::Error {
    io::Error::other(e)
}

/// Opens `n` WebSockets to `path` over `conns` HTTP/2 connections.
pub(crate) async fn connect_many(
    addr: std::net::SocketAddr,
    host: &str,
    conns: usize,
    n: usize,
    path: &str,
) -> io::Result<Vec<Stream>> {
    let mut senders: Vec<SendRequest<Bytes>> = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(h2_err)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        let mut send = send.ready().await.map_err(h2_err)?;
        // SETTINGS_ENABLE_CONNECT_PROTOCOL comes with the server's first SETTINGS.
        let mut waited = 0;
        while !send.is_extended_connect_protocol_enabled() {
            if waited > 500 {
                return Err(io::Error::other(
                    "the server does not allow extended CONNECT (RFC 8441)",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            send = send.ready().await.map_err(h2_err)?;
            waited += 1;
        }
        senders.push(send);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let send = senders[i % senders.len()].clone();
        let mut send = send.ready().await.map_err(h2_err)?;
        let req = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{host}{path}"))
            .header("sec-websocket-version", "13")
            .extension(h2::ext::Protocol::from("websocket"))
            .body(())
            .map_err(io::Error::other)?;
        let (response, stream) = send.send_request(req, false).map_err(h2_err)?;
        let response = response.await.map_err(h2_err)?;
        if response.status() != 200 {
            return Err(io::Error::other(format!(
                "extended CONNECT to {path}: {}",
                response.status()
            )));
        }
        out.push(Stream::H2(H2Io {
            send: stream,
            recv: response.into_body(),
            buf: Bytes::new(),
        }));
    }
    Ok(out)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, out),
            Stream::H2(s) => {
                while s.buf.is_empty() {
                    match ready!(s.recv.poll_data(cx)) {
                        Some(Ok(data)) => {
                            let _ = s.recv.flow_control().release_capacity(data.len());
                            s.buf = data;
                        }
                        Some(Err(e)) => return Poll::Ready(Err(h2_err(e))),
                        None => return Poll::Ready(Ok(())),
                    }
                }
                let n = s.buf.len().min(out.remaining());
                out.put_slice(&s.buf.split_to(n));
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::H2(s) => {
                if buf.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                loop {
                    let capacity = s.send.capacity();
                    if capacity > 0 {
                        let n = capacity.min(buf.len());
                        s.send
                            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                            .map_err(h2_err)?;
                        return Poll::Ready(Ok(n));
                    }
                    s.send.reserve_capacity(buf.len());
                    match ready!(s.send.poll_capacity(cx)) {
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Poll::Ready(Err(h2_err(e))),
                        None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                    }
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::H2(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::H2(s) => {
                let _ = s.send.send_data(Bytes::new(), true);
                Poll::Ready(Ok(()))
            }
        }
    }
}
