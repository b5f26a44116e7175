//! An HTTP/2 WebSocket client (RFC 8441) for the tests: the `h2` crate opens extended CONNECT
//! streams on one TCP (or TLS) connection, and tokio-tungstenite speaks WebSocket over each
//! stream through [`H2Io`], so both the HTTP/2 and the WebSocket side are independent of the
//! server's code.

#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket over one HTTP/2 stream.
pub type H2Ws = WebSocketStream<H2Io>;

/// One HTTP/2 connection to the server; opens WebSocket streams.
pub struct H2Conn {
    pub send: SendRequest<Bytes>,
    /// The connection's task: ends `Ok` when the server closed it gracefully (GOAWAY).
    pub task: JoinHandle<Result<(), h2::Error>>,
    pub authority: String,
}

/// Flow-control windows of the client: each stream's (64 KiB, as by default) far below the
/// connection's, so one stream that is not read holds back that stream only.
fn builder() -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.initial_window_size(64 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024);
    b
}

impl H2Conn {
    /// Connects in cleartext with prior knowledge (h2c).
    pub async fn connect(addr: SocketAddr) -> H2Conn {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).unwrap();
        H2Conn::handshake(tcp, addr.to_string()).await
    }

    /// The HTTP/2 handshake over any stream (TLS after ALPN `h2`), then waits (bounded) for the
    /// server's SETTINGS to allow extended CONNECT.
    pub async fn handshake<T>(io: T, authority: String) -> H2Conn
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = tokio::time::timeout(Duration::from_secs(5), builder().handshake(io))
            .await
            .expect("h2 handshake timed out")
            .expect("h2 handshake");
        let task = tokio::spawn(conn);
        let mut send = tokio::time::timeout(Duration::from_secs(5), send.ready())
            .await
            .expect("h2 ready timed out")
            .expect("h2 ready");
        // SETTINGS_ENABLE_CONNECT_PROTOCOL arrives with the server's first SETTINGS frame.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !send.is_extended_connect_protocol_enabled() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server never sent SETTINGS_ENABLE_CONNECT_PROTOCOL"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            send = send.ready().await.expect("h2 ready");
        }
        H2Conn {
            send,
            task,
            authority,
        }
    }

    /// Sends an extended CONNECT for `path` with `headers`; returns the response head and, on
    /// a 2xx, the stream's halves.
    pub async fn connect_stream(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (http::response::Parts, Option<H2Io>) {
        let mut req = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{}{}", self.authority, path))
            .extension(h2::ext::Protocol::from("websocket"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send_request(req.body(()).unwrap()).await
    }

    /// Sends any request (no body) and returns its response head and, on a 2xx CONNECT, the
    /// stream.
    pub async fn send_request(
        &mut self,
        req: http::Request<()>,
    ) -> (http::response::Parts, Option<H2Io>) {
        let is_connect = req.method() == http::Method::CONNECT;
        let send = self.send.clone();
        let mut send = tokio::time::timeout(Duration::from_secs(5), send.ready())
            .await
            .expect("h2 ready timed out")
            .expect("h2 ready");
        let (response, stream) = send.send_request(req, !is_connect).expect("send_request");
        let response = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .expect("response timed out")
            .expect("response");
        let (parts, recv) = response.into_parts();
        if parts.status.is_success() && is_connect {
            (parts, Some(H2Io::new(stream, recv)))
        } else {
            (parts, None)
        }
    }

    /// A WebSocket on a new stream, `Sec-WebSocket-Version: 13` and `headers`; panics unless
    /// the answer is `200`.
    pub async fn websocket(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (http::response::Parts, H2Ws) {
        let mut all = vec![("sec-websocket-version", "13")];
        all.extend_from_slice(headers);
        let (parts, io) = self.connect_stream(path, &all).await;
        assert_eq!(parts.status, 200, "extended CONNECT to {path}: {parts:?}");
        let ws = WebSocketStream::from_raw_socket(io.unwrap(), Role::Client, None).await;
        (parts, ws)
    }
}

/// One HTTP/2 stream as a byte stream: what is read is given back to the peer's flow-control
/// window as it is consumed, writes wait for window.
pub struct H2Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    buf: Bytes,
}

impl H2Io {
    fn new(send: SendStream<Bytes>, recv: RecvStream) -> H2Io {
        H2Io {
            send,
            recv,
            buf: Bytes::new(),
        }
    }
}

fn h2_err(e: h2::Error) -> io::Error {
    io::Error::other(e)
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.buf = data;
                }
                Some(Err(e)) => return Poll::Ready(Err(h2_err(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.buf.len().min(out.remaining());
        out.put_slice(&self.buf.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let capacity = self.send.capacity();
            if capacity > 0 {
                let n = capacity.min(buf.len());
                self.send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(h2_err)?;
                return Poll::Ready(Ok(n));
            }
            self.send.reserve_capacity(buf.len());
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(h2_err(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}
