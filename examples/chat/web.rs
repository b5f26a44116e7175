//! The browser page, served by the same server through `Server::fallback`: three files
//! embedded in the binary, no build step, nothing loaded from elsewhere.

use endpoint::server::{HttpRequest, HttpResponse};
use endpoint::Bytes;
use http::{header, Method, StatusCode};

const INDEX_HTML: &str = include_str!("static/index.html");
const CHAT_JS: &str = include_str!("static/chat.js");
const CHAT_CSS: &str = include_str!("static/chat.css");
const FAVICON_SVG: &str = include_str!("static/favicon.svg");

/// Scripts and styles only from this server, WebSockets to it, no inline script: even if the
/// page had an HTML-injection bug, an injected `<script>` or `onerror=` would not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// Answers every plain HTTP request (anything that is not a WebSocket upgrade).
pub(crate) async fn serve(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    match req.uri().path() {
        "/" | "/index.html" => file(INDEX_HTML, "text/html; charset=utf-8"),
        "/chat.js" => file(CHAT_JS, "text/javascript; charset=utf-8"),
        "/chat.css" => file(CHAT_CSS, "text/css; charset=utf-8"),
        "/favicon.svg" | "/favicon.ico" => file(FAVICON_SVG, "image/svg+xml"),
        p if p.starts_with("/chat/") => {
            let mut res = text(
                StatusCode::UPGRADE_REQUIRED,
                "this is the chat's WebSocket endpoint: connect with a WebSocket client, \
                 or open / in a browser\n",
            );
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                header::HeaderValue::from_static("13"),
            );
            res.headers_mut().insert(
                header::UPGRADE,
                header::HeaderValue::from_static("websocket"),
            );
            res
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn file(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut res = HttpResponse::new(Bytes::from_static(body.as_bytes()).into());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    res
}

fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut res = HttpResponse::new(Bytes::from_static(body.as_bytes()).into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
