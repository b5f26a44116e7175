//! `examples/chat_client.rs`, the terminal client of the chat, run as the example binary
//! `cargo test` builds (or `cargo build --all-features --example chat_client`), against the chat
//! server itself (`examples/chat/app.rs`, included by `chat_support`) running in this process,
//! with an independent client (tokio-tungstenite) as bob:
//!
//! * ada's stdin lines reach bob as chat messages, bob's message shows as `bob: hello` on
//!   ada's stdout, and at the end of stdin ada exits 0 once her last line reached the server;
//! * the server stops and starts again on the same port with the same SQLite file; ada
//!   reconnects (backoff), says on stderr that a line typed meanwhile was not sent, and prints
//!   what bob said while she was away exactly once, and nothing she had printed already.
//!
//! Every wait is bounded; the process is killed by its PID when a test ends, however it ends.

mod chat_support;

mod examples_support;
use examples_support::example;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_support::{ChatServer, Client, TempDir};
use serde_json::Value;

/// The longest wait for a line, an event or an exit; a reconnection's backoff (250 ms, 500 ms,
/// 1 s) fits several times.
const WAIT: Duration = Duration::from_secs(10);

/// The lines one of the process's outputs printed so far, read on a thread.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
    label: &'static str,
}

impl Lines {
    fn read(from: impl std::io::Read + Send + 'static, label: &'static str) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
            label,
        }
    }

    /// Takes what arrived without waiting.
    fn pump(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
    }

    fn count(&mut self, line: &str) -> usize {
        self.pump();
        self.seen.iter().filter(|l| *l == line).count()
    }

    /// Waits (bounded) until `line` has been printed `n` times.
    async fn wait_count(&mut self, line: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.count(line) < n {
            assert!(
                Instant::now() < deadline,
                "ada's {} never printed {line:?} {n} time(s) within {WAIT:?}; it printed {:#?}",
                self.label,
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_for(&mut self, line: &str) {
        self.wait_count(line, 1).await;
    }

    /// Waits (bounded) for a line starting with `prefix`; returns it.
    async fn wait_prefix(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.pump();
            if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "ada's {} never printed a line starting with {prefix:?}; it printed {:#?}",
                self.label,
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `chat_client URL --name ada` with its stdin, stdout and stderr piped; killed by its PID on
/// drop.
struct Ada {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Lines,
    err: Lines,
}

impl Ada {
    fn start(addr: SocketAddr, room: &str) -> Ada {
        let mut child = Command::new(example("chat_client"))
            .arg(format!("ws://{addr}/chat/{room}"))
            .args(["--name", "ada"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the chat_client example");
        let stdin = child.stdin.take();
        let out = Lines::read(child.stdout.take().expect("stdout"), "stdout");
        let err = Lines::read(child.stderr.take().expect("stderr"), "stderr");
        Ada {
            child,
            stdin,
            out,
            err,
        }
    }

    /// Types `line` (and Enter).
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to ada's stdin");
        stdin.flush().expect("flush ada's stdin");
    }

    /// Closes stdin (Ctrl-D) and waits (bounded) for the process to exit.
    async fn end_of_input(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            self.err.pump();
            assert!(
                Instant::now() < deadline,
                "ada still running {WAIT:?} after the end of her stdin; stderr: {:#?}",
                self.err.seen
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Ada {
    fn drop(&mut self) {
        // `Child::kill` signals this very PID; a process that exited is only reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next `message` event on `client`: its `from` and `text`.
async fn next_message(client: &mut Client) -> (String, String) {
    let ev: Value = client.expect("message").await;
    (
        ev["from"].as_str().expect("from").to_owned(),
        ev["text"].as_str().expect("text").to_owned(),
    )
}

fn said(from: &str, text: &str) -> (String, String) {
    (from.to_owned(), text.to_owned())
}

/// ada joins a room where bob is: both see it.
async fn ada_joins(server: &ChatServer, bob: &mut Client) -> Ada {
    let mut ada = Ada::start(server.addr, "lobby");
    ada.out.wait_for("* ada joined").await;
    ada.out.wait_for("* in the room: ada, bob").await;
    assert_eq!(bob.expect("join").await["name"], "ada");
    assert_eq!(
        bob.expect("presence").await["names"],
        serde_json::json!(["ada", "bob"])
    );
    ada
}

#[tokio::test]
async fn ada_s_lines_reach_bob_bob_s_show_on_her_stdout_and_the_end_of_stdin_exits_0() {
    let server = ChatServer::start(":memory:".as_ref()).await;
    let (mut bob, _) = Client::join(server.addr, "lobby", "bob").await;
    let mut ada = ada_joins(&server, &mut bob).await;

    // Typed lines are chat messages (a line that looks like JSON is text too).
    ada.type_line("hello bob");
    ada.type_line(r#"{"text": "not parsed"} ✓"#);
    assert_eq!(next_message(&mut bob).await, said("ada", "hello bob"));
    assert_eq!(
        next_message(&mut bob).await,
        said("ada", r#"{"text": "not parsed"} ✓"#)
    );
    // The room echoes hers; bob's shows as `bob: hello`.
    ada.out.wait_for("ada: hello bob").await;
    bob.say("hello").await;
    assert_eq!(next_message(&mut bob).await, said("bob", "hello"));
    ada.out.wait_for("bob: hello").await;

    // The last lines, then the end of stdin at once: the process exits 0, and only after they
    // reached the server (bob gets them, then ada's leave).
    ada.type_line("one more");
    ada.type_line("last words");
    let status = ada.end_of_input().await;
    assert!(status.success(), "ada exited with {status}: {:#?}", {
        ada.err.pump();
        ada.err.seen.clone()
    });
    assert_eq!(next_message(&mut bob).await, said("ada", "one more"));
    assert_eq!(next_message(&mut bob).await, said("ada", "last words"));
    assert_eq!(bob.expect("leave").await["name"], "ada");
    assert_eq!(
        ada.err
            .count("! not connected, message not sent: last words"),
        0
    );

    bob.close().await;
    server.stop().await;
}

#[tokio::test]
async fn after_a_server_restart_ada_reconnects_and_prints_what_she_missed_exactly_once() {
    /// Messages posted while ada is away: more than a fresh joiner's 50.
    const MISSED: usize = 60;
    let dir = TempDir::new("chat-client");
    let db = dir.path().join("chat.db");
    let server = ChatServer::start(&db).await;
    let addr = server.addr;
    let (mut bob, _) = Client::join(addr, "lobby", "bob").await;
    let mut ada = ada_joins(&server, &mut bob).await;

    ada.type_line("before the restart");
    assert_eq!(
        next_message(&mut bob).await,
        said("ada", "before the restart")
    );
    bob.say("seen by ada").await;
    assert_eq!(next_message(&mut bob).await, said("bob", "seen by ada"));
    ada.out.wait_for("bob: seen by ada").await;
    ada.out.wait_for("ada: before the restart").await;

    // The server stops (1001 to both), nothing is posted while it is down.
    server.stop().await;
    drop(bob);
    let why = ada.err.wait_prefix("! disconnected: ").await;
    assert!(why.contains("1001"), "{why}");
    ada.err.wait_for("* reconnecting").await;
    // A line typed now is refused, and said so.
    ada.type_line("typed while down");
    ada.err
        .wait_for("! not connected, message not sent: typed while down")
        .await;
    // Two attempts fail (after 250 ms and 500 ms, less jitter): the next one waits at least
    // 800 ms, time for bob to come back and post first.
    ada.err.wait_prefix("! reconnect attempt 2 failed: ").await;

    // The same port, the same SQLite file: the history (and its epoch) survive.
    let server = ChatServer::start_on(addr, &db).await;
    let (mut bob, history) = Client::join(addr, "lobby", "bob").await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));
    // More than the 50 a fresh joiner's history holds: only a recovery from her position
    // (`?epoch=E&since=OFFSET`, put in the URL by the client's configurator) brings them all.
    for n in 1..=MISSED {
        bob.say(&format!("while you were away {n}")).await;
        assert_eq!(
            next_message(&mut bob).await,
            said("bob", &format!("while you were away {n}"))
        );
    }
    // ada comes back after it was published: she gets it from the history, not live.
    assert_eq!(
        bob.expect("join").await["name"],
        "ada",
        "ada reconnected before bob posted"
    );
    assert_eq!(
        bob.expect("presence").await["names"],
        serde_json::json!(["ada", "bob"])
    );
    ada.err.wait_for("* reconnected").await;
    ada.out
        .wait_for(&format!("bob: while you were away {MISSED}"))
        .await;
    ada.out.wait_count("* in the room: ada, bob", 2).await;

    // She talks again on the new connection, then ends her input.
    ada.type_line("after the restart");
    assert_eq!(
        next_message(&mut bob).await,
        said("ada", "after the restart")
    );
    ada.out.wait_for("ada: after the restart").await;
    let status = ada.end_of_input().await;
    assert!(status.success(), "ada exited with {status}");

    // Exactly once each: the history of the second connection held all three messages, and
    // only the one she had missed was printed.
    ada.out.pump();
    let missed = (1..=MISSED).map(|n| format!("bob: while you were away {n}"));
    let lines: Vec<String> = ["ada: before the restart", "bob: seen by ada"]
        .into_iter()
        .map(String::from)
        .chain(missed)
        .chain(["ada: after the restart".to_owned()])
        .collect();
    for line in &lines {
        assert_eq!(ada.out.count(line), 1, "{line:?} in {:#?}", ada.out.seen);
    }
    assert!(
        !ada.out.seen.iter().any(|l| l.contains("typed while down")
            || l.contains("could not be recovered")
            || l.contains("history was reset")),
        "{:#?}",
        ada.out.seen
    );
    assert_eq!(ada.err.count("* reconnected"), 1, "{:#?}", ada.err.seen);

    bob.close().await;
    server.stop().await;
}
