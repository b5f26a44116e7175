//! The handshake-facing API that is public today.
//!
//! The handshake validation itself (`handshake::validate`, `is_valid_key`,
//! `choose_subprotocol`) is `pub(crate)`, and `HandshakeRequest` (query and cookie parsing) has
//! no public constructor, so this target covers what a request reaches before and after them:
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
}

const TEMPLATES: &[&str] = &["/", "/echo.do", "/chat/{room}", "/chat/lobby", "/{a}/{b}/c"];

fuzz_target!(|input: Input| {
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
