//! HTTP serving: TLS, hyper's HTTP/1 connection with upgrades or its HTTP/2 connection with
//! extended CONNECT (RFC 8441), and the choice between an upgrade and the fallback.
//!
//! Which HTTP a connection speaks: over TLS, what ALPN agreed (`h2` or `http/1.1`); in
//! cleartext, HTTP/2 when the first bytes are its connection preface (h2c "with prior
//! knowledge", RFC 9113 3.3), HTTP/1.1 otherwise. The preface is looked at with `peek`, so an
//! HTTP/1.1 connection reaches hyper (and, upgraded, the session) as the plain `TcpStream` it
//! was. `Upgrade: h2c` is not supported (RFC 9113 deprecates it).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::debug;

use super::state::{HttpResponse, ServerState};
use super::upgrade;
use crate::protocol::handshake::{self, Rejection};

pub(crate) async fn serve_tcp(server: Arc<ServerState>, stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &server.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let timeout = server.limits().handshake_timeout;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let h2 = server.http2 && stream.get_ref().1.alpn_protocol() == Some(b"h2");
                serve_http(server, stream, remote, true, h2).await;
            }
            Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => debug!(%remote, "TLS handshake timed out"),
        }
        return;
    }
    let h2 = if server.http2 {
        let timeout = server.limits().handshake_timeout;
        match tokio::time::timeout(timeout, starts_with_h2_preface(&stream)).await {
            Ok(Ok(h2)) => h2,
            Ok(Err(e)) => return debug!(%remote, error = %e, "connection failed"),
            Err(_) => return debug!(%remote, "no request within the handshake timeout"),
        }
    } else {
        false
    };
    serve_http(server, stream, remote, false, h2).await;
}

/// The client connection preface of HTTP/2 (RFC 9113 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the connection opens with the HTTP/2 preface, looked at without consuming it. A
/// client that sent only part of it is waited for (briefly: prefaces come in one segment).
async fn starts_with_h2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; 24];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // `peek` is ready again at once while the same bytes wait: pause instead of spinning.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn serve_http<S>(
    server: Arc<ServerState>,
    stream: S,
    remote: SocketAddr,
    secure: bool,
    h2: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = server.limits();
    let mut shutdown_rx = server.shutdown_tx.subscribe();
    let svc_server = server.clone();
    let service = hyper::service::service_fn(move |req| {
        let server = svc_server.clone();
        async move {
            let response = match handle_request(&server, req, Some(remote), secure) {
                Handled::Response(r) => r,
                Handled::Fallback(req) => match &server.fallback {
                    Some(f) => f(req).await,
                    None => upgrade::reject(
                        &server,
                        Rejection::NotFound,
                        req.uri().path(),
                        Some(remote),
                    ),
                },
            };
            Ok::<_, Infallible>(response)
        }
    });
    if h2 {
        return serve_h2(&server, stream, remote, service, shutdown_rx).await;
    }
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .max_buf_size(limits.max_request_head.max(8192));
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = shutdown_rx.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        debug!(%remote, error = %e, "http connection ended with an error");
    }
}

/// One HTTP/2 connection: every stream a request, the extended CONNECTs among them
/// WebSockets. The connection's task drives all of its streams, the WebSockets' included, so it
/// lives until the last of them has closed; at shutdown it sends GOAWAY (no new streams) and
/// lets the open ones finish their closing handshake (each session got its 1001).
async fn serve_h2<S, Svc>(
    server: &ServerState,
    stream: S,
    remote: SocketAddr,
    service: Svc,
    mut shutdown_rx: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<
            hyper::body::Incoming,
            ResBody = http_body_util::Full<bytes::Bytes>,
        > + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = server.limits();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_header_list_size(u32::try_from(limits.max_request_head.max(8192)).unwrap_or(u32::MAX))
        .max_concurrent_streams(server.h2_max_streams)
        // Each WebSocket stream buffers at most this much of what it writes before h2 flow
        // control makes the session wait (its own outbound bound then applies).
        .max_send_buf_size(H2_SEND_BUF);
    // A peer that vanished (no FIN, no RST) would hold the connection, and every stream on it,
    // until the kernel gives up: hyper pings it at the WebSocket keep-alive interval and drops
    // the connection when no answer comes within `pong_timeout`, whether streams are open or not
    // (the sessions' own pings cover only their streams, and a connection may have none).
    if let Some(interval) = limits.ping_interval {
        builder
            .keep_alive_interval(interval)
            .keep_alive_timeout(limits.pong_timeout);
    }
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = shutdown_rx.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        debug!(%remote, error = %e, "http/2 connection ended with an error");
    }
}

/// The most a WebSocket over HTTP/2 buffers in its stream before flow control holds it back.
const H2_SEND_BUF: usize = 256 * 1024;

/// What the upgrade logic made of a request.
pub(crate) enum Handled<B> {
    Response(HttpResponse),
    /// Not for an endpoint: the fallback service (or 404) answers.
    Fallback(Request<B>),
}

pub(crate) fn handle_request<B>(
    server: &Arc<ServerState>,
    req: Request<B>,
    remote: Option<SocketAddr>,
    secure: bool,
) -> Handled<B> {
    let path = req.uri().path();
    let path = if server.context_path.is_empty() {
        path
    } else {
        match path.strip_prefix(server.context_path.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => return Handled::Fallback(req),
        }
    };
    let Some(found) = server.router.find(path) else {
        return Handled::Fallback(req);
    };
    // A plain (non-upgrade) request to an endpoint path also goes to the fallback when there
    // is one: a page and its WebSocket may share a path.
    if server.fallback.is_some() && !handshake::is_websocket_request(&req) {
        return Handled::Fallback(req);
    }
    Handled::Response(upgrade::upgrade(server, req, found, remote, secure))
}
