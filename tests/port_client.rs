//! `examples/port_client.rs`, the port of a Jakarta-tutorial `@ClientEndpoint`, run as the
//! example binary `cargo test` builds (or `cargo build --all-features --example port_client
//! --example echo`), as `tests/examples_cli.rs` runs the others:
//!
//! * against the echo example's own binary, it prints the transcript the Java original prints
//!   (greeting from `@OnOpen`, each echo from `@OnMessage`, the close from `@OnClose`, the
//!   collected list from `main`) and exits 0;
//! * against an in-process `/echo.do` that records the upgrade request, its configurator's
//!   `beforeRequest` header arrived, and the client closed with 1000 "Bye";
//! * with nothing listening, it says `Could not connect:` with the cause (Java's
//!   `DeploymentException`) and exits 1; `--help` lists `--url` and its default.
//!
//! Every wait is bounded; processes are killed by their PID when a test ends.

mod examples_support;
use examples_support::example;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use endpoint::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A process we started, killed by its PID on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `port_client` with `args` until it exits, within [`TIMEOUT`] (killed otherwise).
fn run_port_client(args: &[&str]) -> Output {
    let mut child = Killed(
        Command::new(example("port_client"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run port_client"),
    );
    let deadline = Instant::now() + TIMEOUT;
    while child.0.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "port_client {args:?} still running after {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Exited: read what it printed (the pipes hold it).
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Output {
        status: child.0.wait().expect("wait"),
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

/// The Java original's output for `ws://.../echo.do`.
const TRANSCRIPT: &str = "\
Connected to endpoint: /echo.do
Received: Hello, server!
Received: How are you?
Closed: 1000 (Bye)
Received 2 messages: [Hello, server!, How are you?]
";

#[test]
fn against_the_echo_example_it_prints_what_the_java_original_prints() {
    let mut echo = Killed(
        Command::new(example("echo"))
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the echo example"),
    );
    let stdout = echo.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("echo: ") {
                if url.ends_with("/echo.do") {
                    let _ = tx.send(url.to_owned());
                }
            }
        }
    });
    let url = rx
        .recv_timeout(TIMEOUT)
        .expect("echo prints its /echo.do address");

    let out = run_port_client(&["--url", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), TRANSCRIPT, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// What the in-process `/echo.do` saw: the `X-Client` header, and how the client closed.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

/// `examples/echo.rs`'s `/echo.do`, recording the upgrade request and the close.
struct RecordingEcho {
    seen: Seen,
}

#[server_endpoint("/echo.do")]
impl RecordingEcho {
    #[on_open]
    fn open(&mut self, session: &Session) {
        let header = session
            .headers()
            .get("x-client")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        self.seen
            .0
            .lock()
            .unwrap()
            .push(format!("x-client {header:?}"));
    }

    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.seen.0.lock().unwrap().push(format!("close {reason}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configurator_s_header_reaches_the_server_and_the_client_closes_with_1000() {
    let seen = Seen::default();
    let server = {
        let seen = seen.clone();
        Server::new().endpoint_with(move |_| RecordingEcho { seen: seen.clone() })
    };
    let bound = server.bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = bound.local_addr().expect("local_addr");
    let handle = bound.handle();
    let task = tokio::spawn(bound.run());

    let url = format!("ws://{addr}/echo.do");
    let out = tokio::task::spawn_blocking(move || run_port_client(&["--url", &url]))
        .await
        .expect("run port_client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), TRANSCRIPT, "{stderr}");

    // `on_close` has run on the server by the time the client saw the close handshake end.
    let deadline = Instant::now() + TIMEOUT;
    while seen.0.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", seen.0.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            "x-client Some(\"echo-client/1.0\")".to_owned(),
            "close 1000 (Bye)".to_owned()
        ]
    );
    handle.shutdown();
    let _ = tokio::time::timeout(TIMEOUT, task).await;
}

#[test]
fn a_refused_connection_is_reported_as_java_reports_a_deployment_exception() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/echo.do");
    let out = run_port_client(&["--url", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "Could not connect: cannot connect to 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn help_lists_the_url_and_its_default_and_a_bad_flag_exits_2() {
    let out = run_port_client(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Usage: port_client [OPTIONS]"), "{stdout}");
    let url = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("--url <URL>"))
        .unwrap_or_else(|| panic!("no --url in {stdout}"));
    assert!(
        url.ends_with("[default: ws://127.0.0.1:8089/echo.do]"),
        "{url}"
    );
    let out = run_port_client(&["--no-such-flag"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: unexpected argument '--no-such-flag' found"),
        "{stderr}"
    );
}
