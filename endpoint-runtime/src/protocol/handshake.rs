//! The opening handshake (RFC 6455 section 4.2): validation of the upgrade request, the
//! `101` answer, and the refusals it can end in. (What `on_open` reads of the handshake is
//! [`Handshake`](crate::Handshake), a view of the session.)
//!
//! | request | answer |
//! |---|---|
//! | path matches no endpoint | `404 Not Found` |
//! | endpoint path, method other than `GET` | `405 Method Not Allowed` (`Allow: GET`) |
//! | endpoint path, no `Upgrade: websocket` / `Connection: upgrade` (a plain HTTP request) | `426 Upgrade Required` with `Sec-WebSocket-Version: 13` |
//! | `Sec-WebSocket-Version` missing or not `13` | `426 Upgrade Required` with `Sec-WebSocket-Version: 13` |
//! | `Sec-WebSocket-Key` missing or not the base64 of 16 bytes, `Host` missing | `400 Bad Request` |
//! | the server is at [`Limits::max_connections`](crate::Limits::max_connections) | `503 Service Unavailable` |
//!
//! Every refusal has a `text/plain` body saying why, and is logged with `tracing` at `debug`.
//!
//! Over HTTP/2 (RFC 8441) a WebSocket opens with an extended CONNECT (`:method CONNECT`,
//! `:protocol websocket`) and is accepted with `200` (no `Sec-WebSocket-Accept`: there is no
//! key). The same table applies, read for HTTP/2:
//!
//! | HTTP/2 request | answer |
//! |---|---|
//! | endpoint path, method other than `GET` or `CONNECT` | `405 Method Not Allowed` |
//! | endpoint path, `GET` (a plain HTTP request) | `426 Upgrade Required` with `Sec-WebSocket-Version: 13` |
//! | `CONNECT` without `:protocol`, or with a `:protocol` other than `websocket` | `400 Bad Request` |
//! | `Sec-WebSocket-Version` missing or not `13` | `426 Upgrade Required` with `Sec-WebSocket-Version: 13` |
//! | `:authority` (and `Host`) missing | `400 Bad Request` |
//!
//! Subprotocols (`Sec-WebSocket-Protocol`) and extensions (`Sec-WebSocket-Extensions`) are
//! negotiated exactly as over HTTP/1.1; HTTP/1-only headers (`Upgrade`, `Connection`) are
//! never sent on HTTP/2.

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use sha1::Digest as _;

/// Why an upgrade request was refused, with the HTTP status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No endpoint (and no fallback) serves this path: 404.
    NotFound,
    /// The method is not `GET`: 405.
    MethodNotAllowed,
    /// A plain HTTP request, or a WebSocket version other than 13: 426.
    UpgradeRequired(&'static str),
    /// A malformed handshake (key, host, HTTP version): 400.
    BadRequest(&'static str),
    /// The server is at its connection limit: 503.
    Overloaded,
    /// Any status with a body, e.g. from a configurator (401, 403, 429...).
    Status(StatusCode, String),
    /// Any status with headers (`WWW-Authenticate`, `Retry-After`...) and a body; build it with
    /// [`Rejection::with_header`].
    Custom {
        /// The status.
        status: StatusCode,
        /// Headers of the response (`Content-Type` defaults to `text/plain`).
        headers: HeaderMap,
        /// The body.
        body: String,
    },
}

impl Rejection {
    /// Adds a header to the refusal's response (turning it into [`Rejection::Custom`]).
    ///
    /// ```
    /// use endpoint_runtime::Rejection;
    /// use http::{header, HeaderValue, StatusCode};
    ///
    /// let r = Rejection::Status(StatusCode::UNAUTHORIZED, "token required\n".into())
    ///     .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    /// let res = r.into_response();
    /// assert_eq!(res.status(), 401);
    /// assert_eq!(res.headers()["www-authenticate"], "Bearer");
    /// ```
    pub fn with_header(self, name: header::HeaderName, value: HeaderValue) -> Self {
        let (status, mut headers, body) = match self {
            Rejection::Custom {
                status,
                headers,
                body,
            } => (status, headers, body),
            other => {
                let status = other.status();
                let body = other.to_string();
                let headers = other.into_response().headers().clone();
                (status, headers, body)
            }
        };
        headers.insert(name, value);
        Rejection::Custom {
            status,
            headers,
            body,
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Status(s, _) | Rejection::Custom { status: s, .. } => *s,
        }
    }

    /// A short name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NotFound => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::UpgradeRequired(_) => "upgrade_required",
            Rejection::BadRequest(_) => "bad_request",
            Rejection::Overloaded => "overloaded",
            Rejection::Status(..) | Rejection::Custom { .. } => "rejected",
        }
    }

    /// The response sent for this refusal.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        if let Rejection::Custom {
            status,
            headers,
            body,
        } = self
        {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = status;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            res.headers_mut().extend(headers);
            return res;
        }
        let status = self.status();
        let body = self.to_string();
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Rejection::UpgradeRequired(_) => {
                h.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            Rejection::BadRequest(_) => {
                h.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            Rejection::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Rejection::Overloaded => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NotFound => f.write_str("no WebSocket endpoint at this path\n"),
            Rejection::MethodNotAllowed => f.write_str("a WebSocket handshake must use GET\n"),
            Rejection::UpgradeRequired(why) => writeln!(f, "{why}"),
            Rejection::BadRequest(why) => writeln!(f, "{why}"),
            Rejection::Overloaded => f.write_str("server is at its connection limit\n"),
            Rejection::Status(_, body) | Rejection::Custom { body, .. } => f.write_str(body),
        }
    }
}

/// A handshake request that passed validation.
#[derive(Debug)]
pub(crate) struct ValidUpgrade {
    /// The `Sec-WebSocket-Accept` of an HTTP/1.1 handshake; `None` over HTTP/2 (RFC 8441 has
    /// no key).
    pub(crate) accept: Option<String>,
    pub(crate) client_protocols: Vec<String>,
}

/// Whether `req` asks for a WebSocket at all (as opposed to a plain HTTP request that happens
/// to be for an endpoint's path): `Upgrade` over HTTP/1.1, an extended CONNECT over HTTP/2.
pub(crate) fn is_websocket_request<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        || (req.method() == Method::CONNECT
            && req.extensions().get::<hyper::ext::Protocol>().is_some())
}

/// Checks an upgrade request to a known endpoint path (RFC 6455 section 4.2.1; over HTTP/2,
/// RFC 8441 section 5).
pub(crate) fn validate<B>(req: &Request<B>) -> Result<ValidUpgrade, Rejection> {
    if req.version() == Version::HTTP_2 {
        return validate_h2(req);
    }
    if req.method() != Method::GET {
        return Err(Rejection::MethodNotAllowed);
    }
    let h = req.headers();
    if !header_has_token(h, header::UPGRADE, "websocket")
        || !header_has_token(h, header::CONNECTION, "upgrade")
    {
        return Err(Rejection::UpgradeRequired(
            "this is a WebSocket endpoint: send `Upgrade: websocket` and `Connection: Upgrade`",
        ));
    }
    if req.version() < Version::HTTP_11 {
        return Err(Rejection::BadRequest(
            "a WebSocket handshake needs HTTP/1.1",
        ));
    }
    match h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) {
        Some(b"13") => {}
        Some(_) => {
            return Err(Rejection::UpgradeRequired(
                "unsupported Sec-WebSocket-Version: use 13",
            ))
        }
        None => {
            return Err(Rejection::UpgradeRequired(
                "missing Sec-WebSocket-Version: use 13",
            ))
        }
    }
    if h.get(header::HOST).is_none() {
        return Err(Rejection::BadRequest("missing Host header"));
    }
    let mut keys = h.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k,
        (None, _) => return Err(Rejection::BadRequest("missing Sec-WebSocket-Key")),
        (Some(_), Some(_)) => return Err(Rejection::BadRequest("duplicate Sec-WebSocket-Key")),
    };
    if !is_valid_key(key.as_bytes()) {
        return Err(Rejection::BadRequest(
            "invalid Sec-WebSocket-Key: it must be the base64 encoding of 16 bytes",
        ));
    }
    let accept = Some(accept_key(key.as_bytes()));
    Ok(ValidUpgrade {
        accept,
        client_protocols: client_protocols(h),
    })
}

/// The extended CONNECT of RFC 8441: `:method CONNECT`, `:protocol websocket`, an
/// `:authority`, `Sec-WebSocket-Version: 13`; no key, no `Upgrade`.
fn validate_h2<B>(req: &Request<B>) -> Result<ValidUpgrade, Rejection> {
    let h = req.headers();
    if req.method() == Method::GET {
        return Err(Rejection::UpgradeRequired(
            "this is a WebSocket endpoint: over HTTP/2 open it with an extended CONNECT \
             (`:protocol websocket`, RFC 8441)",
        ));
    }
    if req.method() != Method::CONNECT {
        return Err(Rejection::MethodNotAllowed);
    }
    match req.extensions().get::<hyper::ext::Protocol>() {
        Some(p) if p.as_str().eq_ignore_ascii_case("websocket") => {}
        Some(_) => {
            return Err(Rejection::BadRequest(
                "unsupported :protocol: this endpoint speaks `websocket`",
            ))
        }
        None => {
            return Err(Rejection::BadRequest(
                "a CONNECT to a WebSocket endpoint needs `:protocol websocket` (RFC 8441)",
            ))
        }
    }
    match h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) {
        Some(b"13") => {}
        Some(_) => {
            return Err(Rejection::UpgradeRequired(
                "unsupported Sec-WebSocket-Version: use 13",
            ))
        }
        None => {
            return Err(Rejection::UpgradeRequired(
                "missing Sec-WebSocket-Version: use 13",
            ))
        }
    }
    if req.uri().authority().is_none() && h.get(header::HOST).is_none() {
        return Err(Rejection::BadRequest("missing :authority"));
    }
    Ok(ValidUpgrade {
        accept: None,
        client_protocols: client_protocols(h),
    })
}

/// The subprotocols the client offers, in its order of preference.
fn client_protocols(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `Sec-WebSocket-Accept` answer to a key (RFC 6455 4.2.2): base64 of the SHA-1 of the key
/// and the protocol's GUID.
pub(crate) fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Whether a comma-separated header contains `token` (ASCII case-insensitive).
pub(crate) fn header_has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Whether a `Sec-WebSocket-Key` is valid (exposed for fuzzing).
///
/// A key is 16 bytes in base64: 22 significant characters and `==`. The last significant
/// character carries 2 bits, so it is one of `A`, `Q`, `g`, `w`.
pub fn is_valid_key(key: &[u8]) -> bool {
    fn b64(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
    }
    key.len() == 24
        && key[..21].iter().all(|&c| b64(c))
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// The first protocol of the client's list that the server supports (the default subprotocol
/// choice, as in Jakarta).
pub fn choose_subprotocol(client: &[String], server: &[&str]) -> Option<String> {
    client
        .iter()
        .find(|c| server.iter().any(|s| s == c))
        .cloned()
}

/// The answer that opens the WebSocket: `101 Switching Protocols` with the accept key over
/// HTTP/1.1, `200 OK` over HTTP/2 (RFC 8441 section 5, when `accept` is `None`).
pub(crate) fn switching_protocols(
    accept: Option<&str>,
    protocol: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    let h = res.headers_mut();
    if let Some(accept) = accept {
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
    }
    if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    if accept.is_some() {
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const OK: &[(&str, &str)] = &[
        ("host", "h"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-protocol", "v2, v1"),
    ];

    #[test]
    fn accepts_rfc_example() {
        let v = validate(&req(OK)).unwrap();
        assert_eq!(v.accept.as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(v.client_protocols, vec!["v2", "v1"]);
    }

    #[test]
    fn refusals() {
        let without = |name: &str| {
            let h: Vec<_> = OK.iter().copied().filter(|(k, _)| *k != name).collect();
            validate(&req(&h)).unwrap_err().status().as_u16()
        };
        assert_eq!(without("upgrade"), 426);
        assert_eq!(without("connection"), 426);
        assert_eq!(without("sec-websocket-version"), 426);
        assert_eq!(without("sec-websocket-key"), 400);
        assert_eq!(without("host"), 400);
        let mut h = OK.to_vec();
        h[3] = ("sec-websocket-version", "8");
        assert_eq!(validate(&req(&h)).unwrap_err().status().as_u16(), 426);
        h[3] = ("sec-websocket-version", "13");
        h[4] = ("sec-websocket-key", "short");
        assert_eq!(validate(&req(&h)).unwrap_err().status().as_u16(), 400);
    }

    fn h2_req(
        method: Method,
        protocol: Option<&'static str>,
        headers: &[(&str, &str)],
    ) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .version(Version::HTTP_2)
            .uri("https://h/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(p) = protocol {
            b = b.extension(hyper::ext::Protocol::from_static(p));
        }
        b.body(()).unwrap()
    }

    #[test]
    fn extended_connect() {
        let ok = [
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "v2, v1"),
        ];
        let v = validate(&h2_req(Method::CONNECT, Some("websocket"), &ok)).unwrap();
        assert_eq!(v.accept, None);
        assert_eq!(v.client_protocols, vec!["v2", "v1"]);
        assert!(is_websocket_request(&h2_req(
            Method::CONNECT,
            Some("websocket"),
            &ok
        )));
        assert!(!is_websocket_request(&h2_req(Method::GET, None, &ok)));
        let status = |r: Request<()>| validate(&r).unwrap_err().status().as_u16();
        assert_eq!(status(h2_req(Method::GET, None, &ok)), 426);
        assert_eq!(status(h2_req(Method::POST, None, &ok)), 405);
        assert_eq!(status(h2_req(Method::CONNECT, None, &ok)), 400);
        assert_eq!(
            status(h2_req(Method::CONNECT, Some("webtransport"), &ok)),
            400
        );
        assert_eq!(status(h2_req(Method::CONNECT, Some("websocket"), &[])), 426);
        let v8 = [("sec-websocket-version", "8")];
        assert_eq!(status(h2_req(Method::CONNECT, Some("websocket"), &v8)), 426);
        let res = switching_protocols(None, Some("v1"));
        assert_eq!(res.status(), 200);
        assert!(res.headers().get(header::SEC_WEBSOCKET_ACCEPT).is_none());
        assert!(res.headers().get(header::CONNECTION).is_none());
        assert_eq!(res.headers()[header::SEC_WEBSOCKET_PROTOCOL], "v1");
    }

    #[test]
    fn keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j*Q=="));
    }

    #[test]
    fn subprotocol_is_first_of_client_list() {
        let client = vec!["v3".to_string(), "v1".to_string(), "v2".to_string()];
        assert_eq!(
            choose_subprotocol(&client, &["v2", "v1"]).as_deref(),
            Some("v1")
        );
        assert_eq!(choose_subprotocol(&client, &["x"]), None);
    }
}
