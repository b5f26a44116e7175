//! The chat page in headless Chromium over `https://` (a self-signed certificate made here,
//! trusted by its SPKI hash), where the page loads over HTTP/2 and its WebSockets go over that
//! same HTTP/2 connection (RFC 8441): the DevTools protocol shows the handshake answered `200`
//! (over HTTP/1.1 it would be `101`), and two pages in one room exchange messages.
//!
//! Needs Chromium, like `tests/chat_browser.rs`, and the `tls` feature:
//! `cargo test --features tls --test chat_browser_h2`.
#![cfg(feature = "tls")]

mod chat_support;

use std::time::Duration;

use chat_support::{app, within, Browser, Page, TempDir};
use endpoint::Limits;
use serde_json::{json, Value};

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

async fn wait_connected(browser: &mut Browser, page: &Page) {
    browser
        .wait_for(
            page,
            "document.getElementById('status').dataset.state === 'open'",
            "the page to join its room",
        )
        .await;
}

async fn send(browser: &mut Browser, page: &Page, text: &str) {
    browser
        .eval(
            page,
            &format!(
                "document.getElementById('text').value = {}; \
                 document.getElementById('send-form').requestSubmit(); true",
                js(text)
            ),
        )
        .await;
}

async fn wait_shows(browser: &mut Browser, page: &Page, text: &str) {
    browser
        .wait_for(
            page,
            &format!(
                "[...document.querySelectorAll('#messages li.msg .text')].some(e => e.textContent === {})",
                js(text)
            ),
            &format!("the message {text:?}"),
        )
        .await;
}

/// The base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo, for Chromium's
/// `--ignore-certificate-errors-spki-list` (this certificate alone is trusted).
fn spki_hash(key: &rcgen::KeyPair) -> String {
    use base64::Engine as _;
    use rcgen::PublicKeyData as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_over_https_opens_its_websockets_over_http2() {
    within(Duration::from_secs(60), "the browser-over-h2 test", run()).await;
}

async fn run() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let tls = endpoint::tls::TlsConfig::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .expect("tls config");
    let dir = TempDir::new("chat-browser-h2");
    let store = app::Store::open(dir.path().join("chat.db")).expect("store");
    let mut limits = Limits::default();
    limits.close_timeout = Duration::from_millis(500);
    limits.shutdown_timeout = Duration::from_secs(3);
    let bound = app::server(app::Hub::new(store))
        .limits(limits)
        .tls(tls)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = bound.local_addr().expect("local_addr");
    let handle = bound.handle();
    let task = tokio::spawn(bound.run_until(std::future::pending::<()>()));

    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_hash(&cert.signing_key)
    );
    let mut browser = Browser::launch_with(&[&trust]).await;
    let url = |q: &str| format!("https://127.0.0.1:{}/{q}", addr.port());
    let ada = browser.new_page("ada").await;
    let bob = browser.new_page("bob").await;
    browser.enable_network(&ada).await;
    browser.enable_network(&bob).await;
    browser.goto(&ada, &url("?room=h2&name=ada")).await;
    browser.goto(&bob, &url("?room=h2&name=bob")).await;
    wait_connected(&mut browser, &ada).await;
    wait_connected(&mut browser, &bob).await;

    // The page itself came over HTTP/2 (ALPN h2).
    let protocol = browser
        .eval(
            &ada,
            "performance.getEntriesByType('navigation')[0].nextHopProtocol",
        )
        .await;
    assert_eq!(protocol, json!("h2"));

    // Messages flow both ways between the two pages.
    send(&mut browser, &ada, "hello from ada over h2").await;
    wait_shows(&mut browser, &bob, "hello from ada over h2").await;
    send(&mut browser, &bob, "and back from bob").await;
    wait_shows(&mut browser, &ada, "and back from bob").await;

    // The WebSocket handshakes, as DevTools saw them: 200 (RFC 8441), not 101.
    for page in [&ada, &bob] {
        let responses =
            browser.websocket_events(page, "Network.webSocketHandshakeResponseReceived");
        let statuses: Vec<&Value> = responses.iter().map(|r| &r["response"]["status"]).collect();
        assert!(
            !statuses.is_empty(),
            "{}: no WebSocket handshake seen",
            page.label
        );
        assert!(
            statuses.iter().all(|s| **s == json!(200)),
            "{}: handshake statuses {statuses:?} (101 would be HTTP/1.1)",
            page.label
        );
        let frames = browser.websocket_events(page, "Network.webSocketFrameReceived");
        assert!(
            !frames.is_empty(),
            "{}: no WebSocket frame seen",
            page.label
        );
    }
    // And the server has both sessions open.
    assert_eq!(handle.stats().open_sessions, 2);

    browser.close().await;
    handle.shutdown();
    let _ = within(Duration::from_secs(10), "server shutdown", task).await;
}
