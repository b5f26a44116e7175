//! The chat page in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! Chrome DevTools Protocol. Two pages in one room see each other's messages, a page in another
//! room does not, markup in messages and names is shown as text, a page joined through the
//! form gets a shareable URL, and the pages reconnect and reload the history after the server
//! restarts. A page taken offline (DevTools `Network.emulateNetworkConditions`) gets the
//! messages sent meanwhile after it reconnects, exactly once; one whose position cannot be
//! recovered says so.
//!
//! Without Chromium this test fails, saying `apt-get install -y chromium`. Set
//! `CHAT_SCREENSHOT_DIR=/some/dir` to keep screenshots of the pages.

mod chat_support;

use std::time::{Duration, Instant};

use chat_support::{within, Browser, ChatServer, Page, TempDir};
use serde_json::{json, Value};

/// A JS string literal for `s`.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// Texts of the messages a page shows, as `[from, text]`.
async fn messages(browser: &mut Browser, page: &Page) -> Vec<(String, String)> {
    let v = browser
        .eval(
            page,
            "[...document.querySelectorAll('#messages li.msg')].map(li => \
             [li.querySelector('.from').textContent, li.querySelector('.text').textContent])",
        )
        .await;
    serde_json::from_value(v).expect("messages")
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

async fn wait_connected(browser: &mut Browser, page: &Page) {
    browser
        .wait_for(
            page,
            "document.getElementById('status').dataset.state === 'open'",
            "the page to join its room",
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

async fn screenshot(browser: &mut Browser, page: &Page, name: &str) {
    if let Some(dir) = std::env::var_os("CHAT_SCREENSHOT_DIR") {
        let png = browser.screenshot(page).await;
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_chat_a_third_room_sees_nothing_markup_is_text() {
    within(Duration::from_secs(60), "the browser test", run()).await;
}

async fn run() {
    let started = Instant::now();
    let dir = TempDir::new("chat-browser");
    let db = dir.path().join("chat.db");
    let server = ChatServer::start(&db).await;
    let addr = server.addr;
    let mut browser = Browser::launch().await;

    // alice and bob join "lobby" by link; bob's name is markup.
    let bob_name = "<b>bob</b>";
    let alice = browser.new_page("alice").await;
    let bob = browser.new_page("bob").await;
    browser
        .goto(&alice, &server.http_url("/?room=lobby&name=alice"))
        .await;
    browser
        .goto(
            &bob,
            &server.http_url("/?room=lobby&name=%3Cb%3Ebob%3C%2Fb%3E"),
        )
        .await;
    wait_connected(&mut browser, &alice).await;
    wait_connected(&mut browser, &bob).await;
    // Chromium offers permessage-deflate and the chat accepts it (`compression = true`).
    let extensions = browser
        .eval(
            &alice,
            "document.getElementById('status').dataset.extensions",
        )
        .await;
    assert!(
        extensions
            .as_str()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "negotiated extensions: {extensions}"
    );

    // carol uses the form to join another room; the URL then names the room (shareable).
    let carol = browser.new_page("carol").await;
    browser.goto(&carol, &server.http_url("/")).await;
    browser
        .eval(
            &carol,
            "document.getElementById('name').value = 'carol'; \
             document.getElementById('room').value = 'elsewhere'; \
             document.getElementById('join-form').requestSubmit(); true",
        )
        .await;
    wait_connected(&mut browser, &carol).await;
    let search = browser.eval(&carol, "location.search").await;
    assert_eq!(search, json!("?room=elsewhere&name=carol"));
    let share = browser
        .eval(&carol, "document.getElementById('share').value")
        .await;
    assert_eq!(share, json!(server.http_url("/?room=elsewhere")));

    // presence: alice's page lists both, bob's name as text
    browser
        .wait_for(
            &alice,
            &format!(
                "JSON.stringify([...document.querySelectorAll('#presence li')].map(l => l.textContent)) === {}",
                js(&serde_json::to_string(&["<b>bob</b>", "alice"]).unwrap())
            ),
            "presence [<b>bob</b>, alice]",
        )
        .await;
    assert_eq!(
        browser
            .eval(&alice, "document.querySelectorAll('#presence b').length")
            .await,
        json!(0)
    );

    // alice speaks; bob sees it, carol (another room) does not
    send(&mut browser, &alice, "hello from alice").await;
    wait_shows(&mut browser, &bob, "hello from alice").await;
    wait_shows(&mut browser, &alice, "hello from alice").await;
    // carol's own message arrives after anything sent to her before it
    send(&mut browser, &carol, "carol here").await;
    wait_shows(&mut browser, &carol, "carol here").await;
    assert_eq!(
        messages(&mut browser, &carol).await,
        [("carol".to_owned(), "carol here".to_owned())]
    );
    assert!(!messages(&mut browser, &alice)
        .await
        .iter()
        .any(|(_, t)| t == "carol here"));

    // markup in a message is shown as text, and creates no element
    browser
        .eval(
            &alice,
            "window.__pwned = 0; window.alert = () => { window.__pwned++; }; true",
        )
        .await;
    let evil =
        r#"<script>alert(1)</script><img src=x onerror="window.__pwned=1;alert(2)"> & <b>bold</b>"#;
    send(&mut browser, &bob, evil).await;
    wait_shows(&mut browser, &alice, evil).await;
    let last = messages(&mut browser, &alice)
        .await
        .pop()
        .expect("a message");
    assert_eq!(last, (bob_name.to_owned(), evil.to_owned()));
    let found: Value = browser
        .eval(
            &alice,
            "['script', 'img', 'b'].map(t => document.querySelectorAll('#messages ' + t).length)",
        )
        .await;
    assert_eq!(
        found,
        json!([0, 0, 0]),
        "elements created from message data"
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // an onerror would have fired by now
    assert_eq!(browser.eval(&alice, "window.__pwned").await, json!(0));
    screenshot(&mut browser, &alice, "chat-alice").await;

    // the server restarts: the pages notice, reconnect with backoff, and reload the history
    server.stop().await;
    browser
        .wait_for(
            &alice,
            "document.getElementById('status').dataset.state === 'reconnecting'",
            "the page to notice the server is gone",
        )
        .await;
    screenshot(&mut browser, &alice, "chat-alice-reconnecting").await;
    let server = ChatServer::start_on(addr, &db).await;
    wait_connected(&mut browser, &alice).await;
    wait_connected(&mut browser, &bob).await;
    // Chromium offers permessage-deflate and the chat accepts it (`compression = true`).
    let extensions = browser
        .eval(
            &alice,
            "document.getElementById('status').dataset.extensions",
        )
        .await;
    assert!(
        extensions
            .as_str()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "negotiated extensions: {extensions}"
    );
    wait_shows(&mut browser, &alice, "hello from alice").await;
    wait_shows(&mut browser, &alice, evil).await;
    let after = messages(&mut browser, &alice).await;
    assert_eq!(
        after.len(),
        2,
        "history shown once, no duplicates: {after:?}"
    );
    send(&mut browser, &bob, "back again").await;
    wait_shows(&mut browser, &alice, "back again").await;

    browser.close().await;
    server.stop().await;
    eprintln!("browser test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_taken_offline_gets_the_missed_messages_once() {
    within(Duration::from_secs(90), "the offline test", offline()).await;
}

async fn offline() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let mut browser = Browser::launch().await;
    let alice = browser.new_page("alice").await;
    let bob = browser.new_page("bob").await;
    browser
        .goto(&alice, &server.http_url("/?room=wifi&name=alice"))
        .await;
    browser
        .goto(&bob, &server.http_url("/?room=wifi&name=bob"))
        .await;
    wait_connected(&mut browser, &alice).await;
    wait_connected(&mut browser, &bob).await;
    for i in 1..=3 {
        send(&mut browser, &alice, &format!("before {i}")).await;
    }
    wait_shows(&mut browser, &bob, "before 3").await;

    // bob's Wi-Fi blinks: his page is offline while alice keeps talking
    browser.set_offline(&bob, true).await;
    browser
        .wait_for(
            &bob,
            "document.getElementById('status').dataset.state !== 'open'",
            "the page to notice it is offline",
        )
        .await;
    // alice's page shows bob leaving: the server saw the drop
    browser
        .wait_for(
            &alice,
            "[...document.querySelectorAll('#messages li.sys')].some(e => e.textContent === 'bob left')",
            "alice to see bob leave",
        )
        .await;
    for i in 1..=20 {
        send(&mut browser, &alice, &format!("missed {i}")).await;
    }
    wait_shows(&mut browser, &alice, "missed 20").await;
    screenshot(&mut browser, &bob, "chat-bob-offline").await;
    browser.set_offline(&bob, false).await;
    wait_connected(&mut browser, &bob).await;
    wait_shows(&mut browser, &bob, "missed 20").await;
    send(&mut browser, &alice, "live again").await;
    wait_shows(&mut browser, &bob, "live again").await;
    let shown: Vec<String> = messages(&mut browser, &bob)
        .await
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let mut want: Vec<String> = (1..=3).map(|i| format!("before {i}")).collect();
    want.extend((1..=20).map(|i| format!("missed {i}")));
    want.push("live again".into());
    assert_eq!(shown, want, "every message once, in order");
    let lost = browser
        .eval(
            &bob,
            "document.querySelectorAll('#messages li.lost').length",
        )
        .await;
    assert_eq!(lost, json!(0), "nothing was lost");
    screenshot(&mut browser, &bob, "chat-bob-recovered").await;

    // The server's history lost (a new server with a memory database): bob's page says some
    // messages could not be recovered.
    let addr = server.addr;
    server.stop().await;
    let server = ChatServer::start_on(addr, ":memory:".as_ref()).await;
    wait_connected(&mut browser, &bob).await;
    browser
        .wait_for(
            &bob,
            "[...document.querySelectorAll('#messages li.lost')].some(e => e.textContent === 'Some messages could not be recovered.')",
            "the page to say messages were lost",
        )
        .await;
    screenshot(&mut browser, &bob, "chat-bob-lost").await;
    browser.close().await;
    server.stop().await;
}
