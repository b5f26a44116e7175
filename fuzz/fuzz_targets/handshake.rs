//! The opening handshake: validation of arbitrary upgrade requests, the configurator's query and
//! cookie parsing, subprotocol choice, routing of the request target, and every refusal.
//!
//! * `__fuzz::validate_upgrade` on a request with an arbitrary method, version and headers never
//!   panics; when it accepts, the request really is a valid RFC 6455 upgrade (GET, HTTP/1.1+,
//!   `Upgrade: websocket`, `Connection: upgrade`, version 13, one valid key, a Host) and the
//!   accept value is 28 characters of base64; when it refuses, the status is 400, 405 or 426;
//! * `HandshakeRequest::query_param(s)`/`cookie` never panic; the chosen subprotocol is one the
//!   client asked for and the server supports;
//! * an arbitrary request target parsed as hyper would (`http::Uri`) and routed by path, as
//!   the server does with the request's path (never panics; routing is consistent with
//!   `UriTemplate::matches`);
//! * every `Rejection` with arbitrary statuses and bodies: `status()`, `reason()`, `Display`
//!   and `into_response()` never panic, and the response carries the status, the body and the
//!   headers the contract promises (`Sec-WebSocket-Version: 13` on 426, `Allow: GET` on 405,
//!   `Retry-After` on 503).
//!
//! See fuzz/README.md for what should be exposed to fuzz the validation proper.
#![no_main]

use arbitrary::Arbitrary;
use endpoint_runtime::__fuzz;
use endpoint_runtime::router::Router;
use endpoint_runtime::Rejection;
use http::{header, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    target: String,
    kind: u8,
    status: u16,
    body: String,
    method: u8,
    version: u8,
    /// Header lines: a choice among the handshake's headers (or an arbitrary name) and a value.
    headers: Vec<(u8, String, Vec<u8>)>,
    server_protocols: Vec<String>,
}

const NAMES: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-version",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "cookie",
    "origin",
];

/// The request the input describes, if `http` can represent it.
fn request(input: &Input) -> Option<http::Request<()>> {
    let method = match input.method % 4 {
        0 | 1 => http::Method::GET,
        2 => http::Method::POST,
        _ => http::Method::HEAD,
    };
    let version = match input.version % 4 {
        0 => http::Version::HTTP_10,
        1 => http::Version::HTTP_2,
        _ => http::Version::HTTP_11,
    };
    let mut req = http::Request::builder()
        .method(method)
        .version(version)
        .uri("/x");
    for (choice, custom, value) in &input.headers {
        let name = match NAMES.get(*choice as usize % (NAMES.len() + 1)) {
            Some(n) => (*n).to_owned(),
            None => custom.to_ascii_lowercase(),
        };
        let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = http::HeaderValue::from_bytes(value).ok()?;
        req = req.header(name, value);
    }
    req.body(()).ok()
}

fn has_token(h: &http::HeaderMap, name: &str, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn check_validation(input: &Input) {
    let Some(req) = request(input) else {
        return;
    };
    match __fuzz::validate_upgrade(&req) {
        Ok((accept, protocols)) => {
            let h = req.headers();
            assert_eq!(req.method(), http::Method::GET);
            assert!(req.version() >= http::Version::HTTP_11);
            assert!(has_token(h, "upgrade", "websocket"));
            assert!(has_token(h, "connection", "upgrade"));
            assert_eq!(h.get("sec-websocket-version").unwrap(), "13");
            assert!(h.contains_key("host"));
            let keys: Vec<_> = h.get_all("sec-websocket-key").iter().collect();
            assert_eq!(keys.len(), 1);
            assert!(__fuzz::is_valid_key(keys[0].as_bytes()));
            assert_eq!(accept.len(), 28);
            assert!(accept.ends_with('='));
            let supported: Vec<&str> = input.server_protocols.iter().map(String::as_str).collect();
            if let Some(p) = __fuzz::choose_subprotocol(&protocols, &supported) {
                assert!(protocols.contains(&p) && supported.contains(&p.as_str()));
            }
        }
        Err(r) => assert!(matches!(r.status().as_u16(), 400 | 405 | 426), "{r:?}"),
    }
    if let Ok(uri) = input.target.parse::<http::Uri>() {
        let hr = __fuzz::handshake_request(uri, req.headers().clone());
        let _ = hr.query_param(&input.body);
        let all = hr.query_params(&input.body);
        if let Some(first) = hr.query_param(&input.body) {
            assert_eq!(all.first(), Some(&first));
        }
        let _ = hr.cookie(&input.body);
        let _ = hr.origin();
    }
}

const TEMPLATES: &[&str] = &["/", "/echo.do", "/chat/{room}", "/chat/lobby", "/{a}/{b}/c"];

fuzz_target!(|input: Input| {
    check_validation(&input);
    if let Ok(uri) = input.target.parse::<http::Uri>() {
        let mut router = Router::new();
        for (i, t) in TEMPLATES.iter().enumerate() {
            router.insert(t, i).expect("fixed templates are valid");
        }
        let path = uri.path();
        if let Some(m) = router.find(path) {
            assert_eq!(m.template.matches(path), Some(m.params.clone()));
            for (name, value) in &m.params {
                assert!(!value.is_empty(), "empty `{name}` for {path:?}");
            }
        }
    }

    let rejection = match input.kind % 6 {
        0 => Rejection::NotFound,
        1 => Rejection::MethodNotAllowed,
        2 => Rejection::UpgradeRequired("send `Upgrade: websocket`"),
        3 => Rejection::BadRequest("invalid Sec-WebSocket-Key"),
        4 => Rejection::Overloaded,
        _ => match StatusCode::from_u16(input.status) {
            Ok(s) => Rejection::Status(s, input.body.clone()),
            Err(_) => return,
        },
    };
    let status = rejection.status();
    let reason = rejection.reason();
    assert!(!reason.is_empty());
    let text = rejection.to_string();
    let response = rejection.clone().into_response();
    assert_eq!(response.status(), status);
    let h = response.headers();
    assert!(h.contains_key(header::CONTENT_TYPE));
    match rejection {
        Rejection::UpgradeRequired(_) => {
            assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
            assert_eq!(h.get(header::SEC_WEBSOCKET_VERSION).unwrap(), "13");
        }
        Rejection::MethodNotAllowed => assert_eq!(h.get(header::ALLOW).unwrap(), "GET"),
        Rejection::Overloaded => {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(h.contains_key(header::RETRY_AFTER));
        }
        Rejection::Status(s, body) => {
            assert_eq!(status, s);
            assert_eq!(text, body);
        }
        _ => {}
    }
    let body = futures::executor::block_on(response.into_body().collect())
        .expect("a full body cannot fail")
        .to_bytes();
    assert_eq!(body, text.as_bytes());
});
