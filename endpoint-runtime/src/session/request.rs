//! [`RequestInfo`]: what the upgrade request said, in one compact block per session.
//!
//! A hand-written LEB128 layout rather than a serialization crate: the block is written once
//! and read field by field in place (no decode step, no second allocation), which is the whole
//! point; a general-purpose format would add a dependency and lose both.

use std::fmt;
use std::net::SocketAddr;
use std::sync::OnceLock;

use http::{HeaderMap, Uri};

/// What the HTTP upgrade request said, kept for the lifetime of the session.
///
/// Everything lives in one compact block: one allocation per session whatever the number of
/// headers and path variables, and nothing pointing into hyper's 8 KiB read buffer (which would
/// stay allocated as long as the session kept a reference into it). The `Uri` and `HeaderMap`
/// handed out by [`Session::request_uri`](super::Session::request_uri) and [`Session::headers`](super::Session::headers) are built from the block the
/// first time they are asked for, then kept (a `HeaderMap` costs about 100 bytes per header; an
/// idle session whose endpoint never looks at its headers should not pay that).
pub(crate) struct RequestInfo {
    /// In order: a tag byte (bit 7: TLS; low bits: the kind of peer address) and the address's
    /// fields; the URI (path and query); the subprotocol (length + 1, 0 for none); the
    /// permessage-deflate answer (`deflate::Agreement::pack` + 1, 0 for none); the number of
    /// path variables, then each name and value; then the headers, each name and value, up to
    /// the end, except [`HANDSHAKE_ONLY`]. Every length and count is a LEB128 varint.
    block: Box<[u8]>,
    /// The URI and headers as `http` types, parsed together on first use (one lazy slot
    /// rather than two: 16 bytes less per session).
    parsed: OnceLock<Box<(Uri, HeaderMap)>>,
}

/// Request headers the opening handshake consumes, not kept with the session: their outcome
/// is the session's (`subprotocol`, `extensions`, that it is a WebSocket at all), and the
/// rest is the handshake's own mechanics (the key, the version, which was checked to be 13).
/// About 110 bytes of every upgrade request, more with a permessage-deflate offer, that an
/// idle connection would otherwise hold for its whole life. A configurator sees them all.
const HANDSHAKE_ONLY: [http::HeaderName; 5] = [
    http::header::CONNECTION,
    http::header::UPGRADE,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
    http::header::SEC_WEBSOCKET_EXTENSIONS,
];

const SECURE: u8 = 0x80;
const NO_ADDR: u8 = 0;
const V4: u8 = 4;
const V6: u8 = 6;

impl RequestInfo {
    pub(crate) fn new(
        uri: &Uri,
        headers: &HeaderMap,
        path_params: &[(String, String)],
        remote_addr: Option<SocketAddr>,
        subprotocol: Option<&str>,
        extensions: Option<u16>,
        secure: bool,
    ) -> Self {
        let kept = |name: &http::HeaderName| !HANDSHAKE_ONLY.contains(name);
        // The origin form is all a session needs (and what it has always kept); anything else
        // keeps the whole URI.
        let uri = match uri.path_and_query() {
            Some(pq) => std::borrow::Cow::Borrowed(pq.as_str()),
            None => std::borrow::Cow::Owned(uri.to_string()),
        };
        let secure = if secure { SECURE } else { 0 };
        let mut block = Vec::with_capacity(
            40 + uri.len()
                + path_params
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + headers
                    .iter()
                    .filter(|(k, _)| kept(k))
                    .map(|(k, v)| k.as_str().len() + v.len() + 4)
                    .sum::<usize>(),
        );
        match remote_addr {
            None => block.push(secure | NO_ADDR),
            Some(SocketAddr::V4(a)) => {
                block.push(secure | V4);
                block.extend_from_slice(&a.ip().octets());
                block.extend_from_slice(&a.port().to_le_bytes());
            }
            Some(SocketAddr::V6(a)) => {
                block.push(secure | V6);
                block.extend_from_slice(&a.ip().octets());
                block.extend_from_slice(&a.port().to_le_bytes());
                block.extend_from_slice(&a.flowinfo().to_le_bytes());
                block.extend_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        put_field(&mut block, uri.as_bytes());
        match subprotocol {
            None => put_varint(&mut block, 0),
            Some(p) => {
                put_varint(&mut block, p.len() + 1);
                block.extend_from_slice(p.as_bytes());
            }
        }
        put_varint(&mut block, extensions.map_or(0, |e| usize::from(e) + 1));
        put_varint(&mut block, path_params.len());
        for (name, value) in path_params {
            put_field(&mut block, name.as_bytes());
            put_field(&mut block, value.as_bytes());
        }
        for (name, value) in headers.iter().filter(|(k, _)| kept(k)) {
            put_field(&mut block, name.as_str().as_bytes());
            put_field(&mut block, value.as_bytes());
        }
        RequestInfo {
            block: block.into_boxed_slice(),
            parsed: OnceLock::new(),
        }
    }

    pub(crate) fn secure(&self) -> bool {
        self.block.first().is_some_and(|t| t & SECURE != 0)
    }

    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.fields().remote
    }

    /// The URI (path and query) as it is stored.
    pub(crate) fn uri_str(&self) -> &str {
        utf8(self.fields().uri)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.uri_str().split_once('?').map(|(_, q)| q)
    }

    pub(crate) fn uri(&self) -> &Uri {
        &self.parsed().0
    }

    pub(crate) fn subprotocol(&self) -> Option<&str> {
        self.fields().subprotocol.map(utf8)
    }

    /// The permessage-deflate answer, packed (`deflate::Agreement::pack`).
    pub(crate) fn extensions(&self) -> Option<u16> {
        self.fields().extensions
    }

    /// The path variables, in template order.
    pub(crate) fn path_params(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut params = self.fields().params;
        let n = params.varint().unwrap_or(0);
        (0..n).map_while(move |_| Some((utf8(params.field()?), utf8(params.field()?))))
    }

    pub(crate) fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.parsed().1
    }

    fn parsed(&self) -> &(Uri, HeaderMap) {
        self.parsed.get_or_init(|| {
            let uri = Uri::try_from(self.uri_str()).unwrap_or_default();
            let mut rest = self.fields().params;
            let n = rest.varint().unwrap_or(0);
            for _ in 0..n * 2 {
                rest.field();
            }
            let mut map = HeaderMap::new();
            while let (Some(name), Some(value)) = (rest.field(), rest.field()) {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(name),
                    http::HeaderValue::from_bytes(value),
                ) {
                    map.append(n, v);
                }
            }
            Box::new((uri, map))
        })
    }

    /// The fixed fields at the start of the block; `params` is positioned at the path
    /// variables' count.
    fn fields(&self) -> Fields<'_> {
        let mut r = Reader(&self.block);
        let remote = match r.bytes(1).map_or(NO_ADDR, |t| t[0] & !SECURE) {
            V4 => r.bytes(6).map(|b| {
                let ip: [u8; 4] = b[..4].try_into().unwrap_or_default();
                SocketAddr::from((ip, u16::from_le_bytes([b[4], b[5]])))
            }),
            V6 => r.bytes(26).map(|b| {
                let ip: [u8; 16] = b[..16].try_into().unwrap_or_default();
                let le4 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip.into(),
                    u16::from_le_bytes([b[16], b[17]]),
                    le4(18),
                    le4(22),
                ))
            }),
            _ => None,
        };
        let uri = r.field().unwrap_or_default();
        let subprotocol = match r.varint() {
            None | Some(0) => None,
            Some(n) => r.bytes(n - 1),
        };
        let extensions = match r.varint() {
            None | Some(0) => None,
            Some(n) => u16::try_from(n - 1).ok(),
        };
        Fields {
            remote,
            uri,
            subprotocol,
            extensions,
            params: r,
        }
    }
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("uri", &self.uri_str())
            .field("remote_addr", &self.remote_addr())
            .field("secure", &self.secure())
            .finish_non_exhaustive()
    }
}

struct Fields<'a> {
    remote: Option<SocketAddr>,
    uri: &'a [u8],
    subprotocol: Option<&'a [u8]>,
    extensions: Option<u16>,
    params: Reader<'a>,
}

/// Reads the varint-prefixed fields of a `RequestInfo` block.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<usize> {
        let mut n = 0usize;
        let mut shift = 0u32;
        loop {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
            shift += 7;
        }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (field, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(field)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()?;
        self.bytes(n)
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    put_varint(out, field.len());
    out.extend_from_slice(field);
}

/// The block's text fields were written from `&str`s.
fn utf8(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        uri: &str,
        headers: &HeaderMap,
        params: &[(&str, &str)],
        remote: Option<SocketAddr>,
        protocol: Option<&str>,
        secure: bool,
    ) -> RequestInfo {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let uri: Uri = uri.parse().unwrap();
        RequestInfo::new(&uri, headers, &params, remote, protocol, None, secure)
    }

    #[test]
    fn handshake_headers_are_not_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "example.com"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-protocol", "v2.chat"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let uri: Uri = "/chat".parse().unwrap();
        let info = RequestInfo::new(&uri, &headers, &[], None, None, Some(0x2A3), false);
        let kept: Vec<_> = info.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(kept, ["host", "sec-websocket-protocol"]);
        assert_eq!(info.extensions(), Some(0x2A3));
        assert_eq!(info.uri(), "/chat");
        let plain = RequestInfo::new(&uri, &headers, &[], None, None, None, false);
        assert_eq!(plain.extensions(), None);
    }

    #[test]
    fn request_info_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.append("cookie", "a=1".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        headers.insert(
            "x-bytes",
            http::HeaderValue::from_bytes(b"caf\xc3\xa9 \xff").unwrap(),
        );
        headers.insert("x-empty", http::HeaderValue::from_static(""));
        let long = "v".repeat(70_000);
        headers.insert("x-long", long.parse().unwrap());
        let v6: SocketAddr = "[fe80::1%3]:443".parse().unwrap();
        let info = request(
            "http://example.com/chat/rust%20lang?x=1&y=%20#frag",
            &headers,
            &[("room", "rust lang"), ("empty", ""), ("é", &long)],
            Some(v6),
            Some("v2.chat"),
            true,
        );
        assert_eq!(info.headers(), &headers);
        let cookies: Vec<_> = info.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(info.uri(), "/chat/rust%20lang?x=1&y=%20");
        assert_eq!(info.query(), Some("x=1&y=%20"));
        assert_eq!(info.query(), info.uri().query());
        assert_eq!(
            info.path_params().collect::<Vec<_>>(),
            [("room", "rust lang"), ("empty", ""), ("é", long.as_str())]
        );
        assert_eq!(info.path_param("empty"), Some(""));
        assert_eq!(info.path_param("nope"), None);
        assert_eq!(info.remote_addr(), Some(v6));
        assert_eq!(info.subprotocol(), Some("v2.chat"));
        assert!(info.secure());

        let v4: SocketAddr = "192.0.2.7:50123".parse().unwrap();
        let info = request("/plain", &HeaderMap::new(), &[], Some(v4), Some(""), false);
        assert!(info.headers().is_empty());
        assert_eq!(info.uri(), "/plain");
        assert_eq!(info.query(), None);
        assert_eq!(info.path_params().count(), 0);
        assert_eq!(info.remote_addr(), Some(v4));
        assert_eq!(info.subprotocol(), Some(""));
        assert!(!info.secure());

        let info = request("/?", &HeaderMap::new(), &[], None, None, false);
        assert_eq!(info.query(), Some(""));
        assert_eq!(info.query(), info.uri().query());
        assert_eq!(info.remote_addr(), None);
        assert_eq!(info.subprotocol(), None);
    }
}
