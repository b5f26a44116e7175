//! One connection attempt: the URL, DNS, TCP, TLS, then the opening handshake over HTTP/1.1
//! (hyper's client connection, which parses the response and hands the socket over at the
//! `101`), checked strictly (RFC 6455 4.1): status, `Upgrade`, `Connection`, the accept key, the
//! subprotocol and the extensions must all be what was offered.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ConnectError;
use super::ClientConfigurator;
use crate::protocol::deflate::{self, DeflateConfig, DeflateParams};
use crate::protocol::handshake::{accept_key, header_has_token};

/// The most of a refusal's body kept in [`ConnectError::Status`].
const BODY_MAX: usize = 64 * 1024;

/// A `ws://` or `wss://` URL, taken apart.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) uri: Uri,
    pub(crate) secure: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, ConnectError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| ConnectError::InvalidUrl(format!("`{url}`: {e}")))?;
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(other) => {
                return Err(ConnectError::InvalidUrl(format!(
                    "`{url}`: the scheme is `{other}`, not ws:// or wss://"
                )))
            }
            None => {
                return Err(ConnectError::InvalidUrl(format!(
                    "`{url}`: no scheme (write ws://host/path)"
                )))
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ConnectError::InvalidUrl(format!("`{url}`: no host")))?;
        // `[::1]` in a URL is `::1` to the resolver.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(Target {
            uri,
            secure,
            host,
            port,
        })
    }

    /// The `Host` header: the host, with the port unless it is the scheme's.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.secure, self.port) {
            (false, 80) | (true, 443) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }

    /// The request target: path and query.
    fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }
}

/// What one attempt needs.
pub(crate) struct Attempt<'a> {
    pub(crate) target: &'a Target,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) subprotocols: &'a [String],
    pub(crate) deflate: &'a DeflateConfig,
    pub(crate) configurators: &'a [&'a dyn ClientConfigurator],
    #[cfg(feature = "tls")]
    pub(crate) tls: &'a super::ClientTls,
}

/// A completed handshake: the socket, and what was agreed.
pub(crate) struct Opened {
    /// The URL this attempt connected to.
    pub(crate) uri: Uri,
    pub(crate) upgraded: Upgraded,
    pub(crate) peer: SocketAddr,
    pub(crate) response_headers: HeaderMap,
    pub(crate) subprotocol: Option<String>,
    pub(crate) deflate: Option<(DeflateParams, u16)>,
}

/// One attempt, bounded by `timeout`.
pub(crate) async fn open(attempt: Attempt<'_>, timeout: Duration) -> Result<Opened, ConnectError> {
    match tokio::time::timeout(timeout, open_unbounded(attempt)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(timeout)),
    }
}

async fn open_unbounded(attempt: Attempt<'_>) -> Result<Opened, ConnectError> {
    let target = attempt.target;
    let (tcp, peer) = dial(&target.host, target.port).await?;
    let _ = tcp.set_nodelay(true);
    if target.secure {
        #[cfg(feature = "tls")]
        {
            let name = rustls_pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| ConnectError::InvalidUrl(format!("`{}`: {e}", target.host)))?;
            let connector = tokio_rustls::TlsConnector::from(attempt.tls.config.clone());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectError::Tls(e.to_string()))?;
            return handshake(tls, peer, &attempt).await;
        }
        #[cfg(not(feature = "tls"))]
        {
            drop(tcp);
            return Err(ConnectError::Tls(
                "wss:// needs the `tls` feature of endpoint".into(),
            ));
        }
    }
    handshake(tcp, peer, &attempt).await
}

/// Resolves `host` and connects to its addresses in turn; the last error if none answers.
async fn dial(host: &str, port: u16) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Dns {
            host: host.to_owned(),
            message: e.to_string(),
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => last = Some(ConnectError::connect(addr, &e)),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::Dns {
        host: host.to_owned(),
        message: "no address".into(),
    }))
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 4.1).
fn new_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

async fn handshake<S>(
    stream: S,
    peer: SocketAddr,
    attempt: &Attempt<'_>,
) -> Result<Opened, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let target = attempt.target;
    let key = new_key();
    let mut headers = attempt.headers.clone();
    for configurator in attempt.configurators {
        configurator.before_request(&mut headers);
    }
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .map_err(|_| ConnectError::InvalidUrl(format!("bad header value `{s}`")))
    };
    headers.insert(header::HOST, value(&target.host_header())?);
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_KEY, value(&key)?);
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    if attempt.subprotocols.is_empty() {
        headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
    } else {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            value(&attempt.subprotocols.join(", "))?,
        );
    }
    if attempt.deflate.enabled {
        let offer = deflate::client_offer(attempt.deflate);
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value(&offer)?);
    } else {
        headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
    let mut request = Request::get(target.path_and_query())
        .body(Empty::<Bytes>::new())
        .expect("a path from a parsed URI is a valid request target");
    *request.headers_mut() = headers;

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ConnectError::Http(e.to_string()))?;
    // Drives the request and response, and hands the socket over at the `101`.
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| ConnectError::Http(e.to_string()))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(
            Duration::from_secs(2),
            Limited::new(body, BODY_MAX).collect(),
        )
        .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        return Err(ConnectError::Status {
            status: parts.status,
            headers: Box::new(parts.headers),
            body,
        });
    }
    let response_headers = response.headers().clone();
    let (subprotocol, deflate) = check_response(&response_headers, &key, attempt)?;
    for configurator in attempt.configurators {
        configurator
            .after_response(&response_headers)
            .map_err(ConnectError::Refused)?;
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| ConnectError::Http(e.to_string()))?;
    Ok(Opened {
        uri: target.uri.clone(),
        upgraded,
        peer,
        response_headers,
        subprotocol,
        deflate,
    })
}

/// What a `101` agreed: the subprotocol, and the compression (as `client_accept` gives it).
type Agreed = (Option<String>, Option<(DeflateParams, u16)>);

/// The subprotocol and compression a `101` agreed, or why it breaks the handshake.
fn check_response(
    headers: &HeaderMap,
    key: &str,
    attempt: &Attempt<'_>,
) -> Result<Agreed, ConnectError> {
    let bad = |why: String| Err(ConnectError::Handshake(why));
    let has_token = |name, token| header_has_token(headers, name, token);
    if !has_token(header::UPGRADE, "websocket") {
        return bad("the 101 has no `Upgrade: websocket`".into());
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return bad("the 101 has no `Connection: Upgrade`".into());
    }
    let expected = accept_key(key.as_bytes());
    match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
        Some(v) if v.as_bytes() == expected.as_bytes() => {}
        Some(v) => {
            return bad(format!(
                "Sec-WebSocket-Accept is `{}`, expected `{expected}`",
                String::from_utf8_lossy(v.as_bytes())
            ))
        }
        None => return bad("the 101 has no Sec-WebSocket-Accept".into()),
    }
    let mut protocols = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    let subprotocol = match (protocols.next(), protocols.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return bad("the server chose more than one subprotocol".into()),
        (Some(v), None) => {
            let chosen = v.to_str().unwrap_or("").trim();
            if !attempt.subprotocols.iter().any(|p| p == chosen) {
                return bad(format!(
                    "the server chose subprotocol `{chosen}`, which was not offered ({:?})",
                    attempt.subprotocols
                ));
            }
            Some(chosen.to_owned())
        }
    };
    let deflate = deflate::client_accept(
        attempt.deflate,
        headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|v| v.as_bytes()),
    )
    .map_err(ConnectError::Handshake)?;
    Ok((subprotocol, deflate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = Target::parse("ws://example.com/chat/lobby?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.secure),
            ("example.com", 80, false)
        );
        assert_eq!(t.path_and_query(), "/chat/lobby?x=1");
        assert_eq!(t.host_header(), "example.com");
        let t = Target::parse("wss://[::1]:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.secure), ("::1", 8443, true));
        assert_eq!(t.path_and_query(), "/");
        assert_eq!(t.host_header(), "[::1]:8443");
        for bad in ["ftp://x/", "/just/a/path", "ws://", "not a url"] {
            assert!(
                matches!(Target::parse(bad), Err(ConnectError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
