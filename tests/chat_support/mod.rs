//! Helpers for the chat example's tests (`tests/chat.rs`, `tests/chat_browser.rs`): the chat
//! server itself (the example's `app.rs`, included with `#[path]`) on an ephemeral port, a
//! temporary directory, a JSON-event WebSocket client, and a headless Chromium driven over the
//! Chrome DevTools Protocol. Every wait is bounded.

#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/chat/app.rs"]
pub mod app;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use endpoint::{Limits, ServerHandle};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// The bounded waits are the shared ones of the other suites.
#[path = "../common/mod.rs"]
mod common;
pub use common::{bounded, within, TIMEOUT};

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "endpoint-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Chromium's helpers may still be writing for a moment after being killed.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The chat server on `127.0.0.1`, with the history in `db`.
pub struct ChatServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ChatServer {
    /// Starts on an ephemeral port.
    pub async fn start(db: &Path) -> ChatServer {
        ChatServer::start_on("127.0.0.1:0".parse().expect("addr"), db).await
    }

    /// Starts on `addr` (e.g. the address of a server that was just stopped), retrying the
    /// bind for a moment.
    pub async fn start_on(addr: SocketAddr, db: &Path) -> ChatServer {
        let store = app::Store::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
        ChatServer::start_with(addr, app::server(app::Hub::new(store))).await
    }

    /// Starts `server` (the chat's, from `app::server`, perhaps with a broker) on `addr`.
    pub async fn start_with(addr: SocketAddr, server: endpoint::Server) -> ChatServer {
        let mut limits = Limits::default();
        limits.close_timeout = Duration::from_millis(500);
        limits.shutdown_timeout = Duration::from_secs(3);
        let deadline = Instant::now() + TIMEOUT;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let bound = server.limits(limits).listen(listener).expect("listen");
        let addr = bound.local_addr().expect("local_addr");
        let handle = bound.handle();
        let task = tokio::spawn(bound.run_until(std::future::pending::<()>()));
        ChatServer {
            addr,
            handle,
            task: Some(task),
        }
    }

    /// Graceful shutdown, waiting (bounded) for `run_until` to return.
    pub async fn stop(mut self) {
        self.handle.shutdown();
        if let Some(task) = self.task.take() {
            bounded("chat server shutdown", task)
                .await
                .expect("server task panicked")
                .expect("run_until failed");
        }
    }

    /// Whether the server's broker (if any) is connected.
    pub fn broker_connected(&self) -> bool {
        self.handle.stats().broker.is_some_and(|b| b.connected)
    }

    pub fn http_url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A WebSocket client of the chat, reading JSON events.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `/chat/{room}` (`room` is put in the path as given) with `query` appended
    /// as is (e.g. `"?name=ada"`, or `""`).
    pub async fn connect(addr: SocketAddr, room: &str, query: &str) -> Client {
        let url = format!("ws://{addr}/chat/{room}{query}");
        let (ws, res) = bounded("websocket connect", tokio_tungstenite::connect_async(&url))
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        assert_eq!(res.status().as_u16(), 101, "upgrade of {url}");
        Client { ws }
    }

    /// Connects as `name` and reads the three events every joiner gets first: `history`,
    /// its own `join`, and `presence`. Returns the client and the `history` event.
    pub async fn join(addr: SocketAddr, room: &str, name: &str) -> (Client, Value) {
        let mut c = Client::connect(addr, room, &format!("?name={name}")).await;
        let history = c.expect("history").await;
        assert_eq!(history["you"], name);
        let join = c.expect("join").await;
        assert_eq!(join["name"], name);
        c.expect("presence").await;
        (c, history)
    }

    /// Sends a text frame.
    pub async fn send_raw(&mut self, text: &str) {
        bounded("send", self.ws.send(WsMessage::text(text)))
            .await
            .expect("send");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: Vec<u8>) {
        bounded("send", self.ws.send(WsMessage::binary(data)))
            .await
            .expect("send");
    }

    /// Sends `{"text": text}`.
    pub async fn say(&mut self, text: &str) {
        self.send_raw(&json!({ "text": text }).to_string()).await;
    }

    /// The next event (pings and pongs skipped); panics on a close or a non-JSON frame.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = match bounded("next chat event", self.ws.next()).await {
                Some(Ok(m)) => m,
                Some(Err(e)) => panic!("websocket error while waiting for an event: {e}"),
                None => panic!("websocket ended while waiting for an event"),
            };
            match msg {
                WsMessage::Text(t) => {
                    return serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("event is not JSON ({e}): {t}"))
                }
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// The next event, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let ev = self.next().await;
        assert_eq!(ev["type"], kind, "expected a `{kind}` event, got {ev}");
        ev
    }

    /// Asserts that no event arrives within `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("expected no event, got {m:?}");
        }
    }

    /// The next frame must be a close: its code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match bounded("close frame", self.ws.next()).await {
                Some(Ok(WsMessage::Close(Some(f)))) => {
                    return (u16::from(f.code), f.reason.as_str().to_owned())
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Closes normally and waits (bounded) for the close handshake to finish.
    pub async fn close(mut self) {
        let _ = bounded("close", self.ws.close(None)).await;
        let _ = bounded("close handshake", async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A plain HTTP/1.1 GET: status, headers (lower-case names) and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = bounded("tcp connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    bounded("http response", tcp.read_to_end(&mut raw))
        .await
        .expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium over the DevTools protocol.

/// Where Debian's `chromium` package puts the browser (`CHROMIUM` overrides it).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// A headless Chromium we started: killed (by its PID, and its process group) and its profile
/// removed on drop, also when the test fails.
pub struct Browser {
    child: Child,
    cdp: Cdp,
    // Dropped after the process is killed (fields drop in declaration order after `drop`).
    _dir: TempDir,
}

/// One tab, attached with a flattened CDP session.
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
    pub label: &'static str,
}

struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// `Network.webSocket*` events seen while waiting for answers (after `Network.enable`).
    ws_events: Vec<Value>,
}

impl Cdp {
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut req = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            req["sessionId"] = json!(s);
        }
        bounded("cdp send", self.ws.send(WsMessage::text(req.to_string())))
            .await
            .expect("cdp send");
        let what = format!("CDP {method}");
        within(Duration::from_secs(15), &what, async {
            loop {
                let msg = match self.ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => panic!("{what}: devtools connection failed: {e}"),
                    None => panic!("{what}: devtools connection closed (did Chromium crash?)"),
                };
                let v: Value = serde_json::from_str(msg.as_str()).expect("CDP JSON");
                if v["method"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("Network.webSocket"))
                {
                    self.ws_events.push(v);
                    continue;
                }
                if v["id"] != json!(id) {
                    continue; // an event, or an answer to someone else
                }
                if let Some(err) = v.get("error") {
                    panic!("{what} failed: {err}");
                }
                return v["result"].clone();
            }
        })
        .await
    }
}

impl Browser {
    /// Starts `chromium --headless` with a fresh profile and connects to it. Panics, saying how
    /// to install it, when Chromium is missing.
    pub async fn launch() -> Browser {
        Browser::launch_with(&[]).await
    }

    /// [`Browser::launch`] with extra command-line switches.
    pub async fn launch_with(extra: &[&str]) -> Browser {
        let exe = chromium_path();
        assert!(
            exe.exists(),
            "{} not found: the browser test needs Debian's Chromium; install it with \
             `apt-get install -y chromium` (as root), or set CHROMIUM=/path/to/chromium",
            exe.display()
        );
        let dir = TempDir::new("chromium");
        let profile = dir.path().join("profile");
        let log = std::fs::File::create(dir.path().join("chromium.log")).expect("log file");
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--window-size=1100,720",
            "--remote-debugging-port=0",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so that its helpers can be killed with it.
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut guard = Launching {
            child: Some(child),
            dir: Some(dir),
        };

        // Chromium writes "PORT\n/devtools/browser/ID" once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        let ws_url = loop {
            if let Ok(s) = std::fs::read_to_string(&port_file) {
                let mut lines = s.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
                }
            }
            if let Some(status) = guard
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("chromium exited early ({status}): {}", guard.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port within 20 s: {}",
                guard.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = bounded(
            "devtools connect",
            tokio_tungstenite::connect_async(&ws_url),
        )
        .await
        .unwrap_or_else(|e| panic!("connect to {ws_url}: {e}"));
        let (child, dir) = guard.take();
        Browser {
            child,
            cdp: Cdp {
                ws,
                next_id: 0,
                ws_events: Vec::new(),
            },
            _dir: dir,
        }
    }

    /// Opens a new tab (its own window, so it is never a throttled background tab).
    pub async fn new_page(&mut self, label: &'static str) -> Page {
        let target = self
            .cdp
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "newWindow": true }),
            )
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self
            .cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let page = Page { session, label };
        self.cdp
            .call(Some(&page.session), "Page.enable", json!({}))
            .await;
        self.cdp
            .call(Some(&page.session), "Runtime.enable", json!({}))
            .await;
        page
    }

    /// Navigates and waits for the document to have loaded.
    pub async fn goto(&mut self, page: &Page, url: &str) {
        let res = self
            .cdp
            .call(Some(&page.session), "Page.navigate", json!({ "url": url }))
            .await;
        if let Some(err) = res.get("errorText") {
            panic!("{}: navigate to {url}: {err}", page.label);
        }
        self.wait_for(
            page,
            "document.readyState === 'complete'",
            &format!("{url} to load"),
        )
        .await;
    }

    /// Evaluates `expression` in the page and returns its value (promises are awaited).
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let res = self
            .cdp
            .call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(ex) = res.get("exceptionDetails") {
            panic!("{}: `{expression}` threw: {ex}", page.label);
        }
        res["result"]["value"].clone()
    }

    /// Polls `condition` (a JS expression) until it is `true`, for at most 10 s.
    pub async fn wait_for(&mut self, page: &Page, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.eval(page, condition).await == json!(true) {
                return;
            }
            if Instant::now() >= deadline {
                let status = self
                    .eval(page, "document.getElementById('status')?.textContent")
                    .await;
                panic!(
                    "{}: timed out after 10 s waiting for {what} (`{condition}`); page status: {status}",
                    page.label
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Turns on the page's `Network` domain, so its WebSocket events are kept (see
    /// [`Browser::websocket_events`]).
    pub async fn enable_network(&mut self, page: &Page) {
        self.cdp
            .call(Some(&page.session), "Network.enable", json!({}))
            .await;
    }

    /// The `Network.webSocket*` events of `page` received so far, named `method`.
    pub fn websocket_events(&self, page: &Page, method: &str) -> Vec<Value> {
        self.cdp
            .ws_events
            .iter()
            .filter(|e| e["method"] == json!(method) && e["sessionId"] == json!(page.session))
            .map(|e| e["params"].clone())
            .collect()
    }

    /// Takes the page offline (or back online) as DevTools' network throttling does
    /// (`Network.emulateNetworkConditions`): its connections fail and new ones are refused.
    pub async fn set_offline(&mut self, page: &Page, offline: bool) {
        self.cdp
            .call(Some(&page.session), "Network.enable", json!({}))
            .await;
        self.cdp
            .call(
                Some(&page.session),
                "Network.emulateNetworkConditions",
                json!({
                    "offline": offline,
                    "latency": 0,
                    "downloadThroughput": -1,
                    "uploadThroughput": -1
                }),
            )
            .await;
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&mut self, page: &Page) -> Vec<u8> {
        let res = self
            .cdp
            .call(
                Some(&page.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await;
        base64_decode(res["data"].as_str().expect("screenshot data"))
    }

    /// Asks Chromium to quit (the drop guard kills it anyway).
    pub async fn close(mut self) {
        let id = self.cdp.next_id + 1;
        self.cdp.next_id = id;
        let req = json!({ "id": id, "method": "Browser.close", "params": {} });
        let _ = self.cdp.ws.send(WsMessage::text(req.to_string())).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_chromium(&mut self.child);
    }
}

/// Holds the process and profile while Chromium starts, so that a failed start cleans up too.
struct Launching {
    child: Option<Child>,
    dir: Option<TempDir>,
}

impl Launching {
    fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("chromium.log")).ok())
            .unwrap_or_default()
    }

    fn take(&mut self) -> (Child, TempDir) {
        (
            self.child.take().expect("child"),
            self.dir.take().expect("dir"),
        )
    }
}

impl Drop for Launching {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_chromium(child);
        }
    }
}

/// Kills the Chromium we started, by its PID, then the rest of its process group (its
/// zygote, renderer and utility processes), and reaps it.
fn kill_chromium(child: &mut Child) {
    let pid = child.id();
    let _ = child.kill();
    #[cfg(unix)]
    {
        // The group was created for this browser at spawn (`process_group(0)`): its id is the
        // browser's PID, so this reaches only the processes that browser started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.wait();
}

fn base64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
