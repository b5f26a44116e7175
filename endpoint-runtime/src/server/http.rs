//! HTTP serving: TLS, hyper's HTTP/1 connection with upgrades, and the choice between an
//! upgrade and the fallback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::debug;

use super::state::{HttpResponse, ServerState};
use super::upgrade;
use crate::protocol::handshake::Rejection;

pub(crate) async fn serve_tcp(server: Arc<ServerState>, stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &server.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let timeout = server.limits().handshake_timeout;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_http(server, stream, remote, true).await,
            Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => debug!(%remote, "TLS handshake timed out"),
        }
        return;
    }
    serve_http(server, stream, remote, false).await;
}

async fn serve_http<S>(server: Arc<ServerState>, stream: S, remote: SocketAddr, secure: bool)
where
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
    if server.fallback.is_some() && !req.headers().contains_key(http::header::UPGRADE) {
        return Handled::Fallback(req);
    }
    Handled::Response(upgrade::upgrade(server, req, found, remote, secure))
}
