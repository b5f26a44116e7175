//! A terminal client for the chat example (`examples/chat`), written with `#[client_endpoint]`.
//!
//! ```text
//! cargo run --example chat -- --db :memory:                             # the server
//! cargo run --example chat_client -- ws://127.0.0.1:8089/chat/lobby --name ada
//! ```
//!
//! What the server sends is printed as lines on stdout:
//!
//! | event | line |
//! |---|---|
//! | `history` (first, on every connection) | each message as `FROM: TEXT`, oldest first |
//! | `message` | `FROM: TEXT` (your own too: the room echoes them with their position) |
//! | `join`, `leave` | `* bob joined`, `* bob left` |
//! | `presence` | `* in the room: ada, bob` |
//! | `error` | `! the server's message` |
//!
//! Each line read from stdin is sent as a message (`{"text": LINE}`; blank lines are skipped).
//! At the end of stdin every message has been written to the socket (`send_flushed`), the
//! connection is closed with 1000 and the client waits for the close handshake: since the
//! server handles a connection's frames in order, every line was published before the client
//! exits with 0. Ctrl-C does the same.
//!
//! The connection's state (connected, reconnecting, why a line was not sent) goes to stderr.
//!
//! # Reconnecting, and what was missed
//!
//! When the connection drops (the server restarts, the network blinks), the client connects
//! again with exponential backoff (`Client::reconnect(Reconnect::exponential(..))`, 250 ms
//! doubling up to 10 s), except after a close that would happen again (1000, 1003, 1008, 1009)
//! or a refused handshake (a 4xx). A line typed while disconnected is not queued: it is
//! reported on stderr (`! not connected, message not sent: ...`), never silently lost.
//!
//! The same endpoint value runs again after a reconnection (its fields carry over, `on_open`
//! runs again), so it remembers the `epoch` and `offset` of the last message it printed, and
//! shares them with its `ClientConfigurator`, whose `request_url` adds `&epoch=E&since=OFFSET`
//! to each reconnection's URL: the chat's recovery (see `examples/chat/README.md`), which sends
//! exactly the messages after that offset, however many. The client still prints only what
//! comes after what it printed already; when the room's history no longer reaches back that
//! far, or was reset (a new `epoch`), it says so with a `!` line.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use endpoint::client::ReconnectHandler;
use endpoint::prelude::*;
use endpoint::SendError;
use serde::{Deserialize, Serialize};

/// A terminal client for the chat example: prints the room, sends each stdin line.
#[derive(Parser)]
#[command(name = "chat_client")]
struct Args {
    /// The chat's WebSocket URL, ws://HOST:PORT/chat/ROOM
    #[arg(value_name = "URL")]
    url: String,
    /// Your nickname in the room (without one, the server picks guest-N)
    #[arg(long, value_name = "NICK")]
    name: Option<String>,
}

/// What the chat server sends: JSON objects tagged by `"type"` (fields this client does not
/// show are ignored).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Event {
    History {
        you: String,
        epoch: String,
        offset: u64,
        messages: Vec<ChatLine>,
    },
    Message(ChatLine),
    Join {
        name: String,
    },
    Leave {
        name: String,
    },
    Presence {
        names: Vec<String>,
    },
    Error {
        message: String,
    },
    /// A type this client does not know (a newer server): ignored.
    #[serde(other)]
    Other,
}

/// A chat message, live or in a `history` event.
#[derive(Debug, Deserialize)]
struct ChatLine {
    offset: u64,
    epoch: String,
    from: String,
    text: String,
}

/// What the client sends.
#[derive(Serialize)]
struct Say<'a> {
    text: &'a str,
}

/// The endpoint: one value for the whole run, across reconnections.
#[derive(Debug)]
struct ChatClient {
    /// The URL connected to (the same for every attempt).
    url: String,
    /// The epoch and offset of the last message printed: what a reconnection resumes from
    /// (shared with the configurator, `Resume`, which puts it in the URL).
    seen: Seen,
    /// The nickname the server gave (a guest's `guest-N`).
    you: Option<String>,
    /// Connections made so far.
    opens: u32,
}

// A `history` event holds up to 50 messages of up to 4 KiB of text each, up to six times that
// once escaped in JSON: more than the default 1 MiB message limit (`Limits::max_message_size`).
#[client_endpoint(max_message_size = 4 * 1024 * 1024, compression = true)]
impl ChatClient {
    #[on_open]
    fn open(&mut self) {
        self.opens += 1;
        if self.opens == 1 {
            eprintln!("* connected to {}", self.url);
        } else {
            eprintln!("* reconnected");
        }
    }

    #[on_message]
    fn event(&mut self, Json(event): Json<Event>) {
        match event {
            Event::History {
                you,
                epoch,
                offset,
                messages,
            } => self.history(you, epoch, offset, messages),
            Event::Message(line) => {
                if !self.already_printed(&line) {
                    self.print(&line);
                }
            }
            Event::Join { name } => println!("* {name} joined"),
            Event::Leave { name } => println!("* {name} left"),
            Event::Presence { names } => println!("* in the room: {}", names.join(", ")),
            Event::Error { message } => println!("! {message}"),
            Event::Other => {}
        }
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        eprintln!("! {error}");
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        // 1000 is this client closing at the end of stdin: nothing to report.
        if reason.code() != CloseCode::NORMAL {
            eprintln!("! disconnected: {reason}");
        }
    }
}

impl ChatClient {
    fn new(url: String, seen: Seen) -> ChatClient {
        ChatClient {
            url,
            seen,
            you: None,
            opens: 0,
        }
    }

    /// The `history` event of a connection: everything on the first, what was missed after.
    fn history(&mut self, you: String, epoch: String, offset: u64, messages: Vec<ChatLine>) {
        if self.you.as_deref() != Some(&you) {
            if self.you.is_some() || you.starts_with("guest-") {
                println!("* you are {you}");
            }
            self.you = Some(you);
        }
        match self.seen() {
            Some((seen_epoch, last)) if seen_epoch == epoch => {
                let missed: Vec<&ChatLine> = messages.iter().filter(|m| m.offset > last).collect();
                // The room's last offset says how many came after ours; the history holds
                // the last 50 of them at most.
                let lost = offset
                    .saturating_sub(last)
                    .saturating_sub(missed.len() as u64);
                if lost > 0 {
                    println!("! {lost} earlier messages could not be recovered");
                }
                for line in missed {
                    self.print(line);
                }
            }
            previous => {
                if previous.is_some() {
                    println!("! the room's history was reset; its last messages:");
                }
                for line in &messages {
                    self.print(line);
                }
            }
        }
        // Nothing printed (an empty room): the room's position is where to resume from.
        let mut seen = self.seen.lock().unwrap();
        match &mut *seen {
            Some((e, last)) if *e == epoch => *last = (*last).max(offset),
            _ => *seen = Some((epoch, offset)),
        }
    }

    /// Whether `line` is at or before the last message printed (same epoch).
    fn already_printed(&self, line: &ChatLine) -> bool {
        self.seen()
            .is_some_and(|(epoch, last)| epoch == line.epoch && line.offset <= last)
    }

    fn print(&mut self, line: &ChatLine) {
        println!("{}: {}", line.from, line.text);
        *self.seen.lock().unwrap() = Some((line.epoch.clone(), line.offset));
    }

    fn seen(&self) -> Option<(String, u64)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The epoch and offset of the last message printed, shared by the endpoint and `Resume`.
type Seen = std::sync::Arc<std::sync::Mutex<Option<(String, u64)>>>;

/// Puts the position to resume from in each reconnection's URL (`&epoch=E&since=OFFSET`).
struct Resume(Seen);

impl ClientConfigurator for Resume {
    fn request_url(&self, url: &str) -> Option<String> {
        let (epoch, since) = self.0.lock().unwrap().clone()?;
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(format!("{url}{sep}epoch={}&since={since}", encode(&epoch)))
    }
}

/// Percent-encodes what is not unreserved in a query value.
fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    encoded
}

/// Whether to connect again: Tyrus's `ReconnectHandler`, saying why on stderr.
struct Retry;

impl ReconnectHandler for Retry {
    fn on_disconnect(&self, reason: &CloseReason) -> bool {
        // A normal close, data the server cannot take, a policy violation (a bad room name) or
        // a message too big would happen again.
        let again = ![
            CloseCode::NORMAL,
            CloseCode::CANNOT_ACCEPT,
            CloseCode::POLICY_VIOLATION,
            CloseCode::TOO_BIG,
        ]
        .contains(&reason.code());
        if again {
            eprintln!("* reconnecting");
        }
        again
    }

    fn on_connect_failure(&self, error: &ConnectError, attempt: u32) -> bool {
        eprintln!("! reconnect attempt {attempt} failed: {error}");
        // A 404 (not the chat's path) or a 403 will not get better by trying again.
        !matches!(error, ConnectError::Status { status, .. } if status.is_client_error())
    }
}

/// `url` with `name=NICK` added to its query.
fn with_name(url: &str, name: Option<&str>) -> String {
    let Some(name) = name else {
        return url.to_owned();
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}name={}", encode(name))
}

/// Sends one stdin line; says on stderr when it could not.
async fn say(connection: &Connection, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    // Written to the socket before the next line is read, so that the end of stdin can close
    // knowing every line went out.
    match connection.send_flushed(Json(Say { text: line })).await {
        Ok(()) => {}
        Err(SendError::NotConnected) => {
            eprintln!("! not connected, message not sent: {line}");
        }
        Err(e) => eprintln!("! message not sent ({e}): {line}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let url = with_name(&args.url, args.name.as_deref());
    let policy =
        Reconnect::exponential(Duration::from_millis(250), Duration::from_secs(10)).handler(Retry);
    let seen = Seen::default();
    let client = Client::new()
        .reconnect(policy)
        .configurator(Resume(seen.clone()));
    // Resolves once the handshake is done and `on_open` ran.
    let connection = match client
        .connect(&url, ChatClient::new(url.clone(), seen))
        .await
    {
        Ok(connection) => connection,
        Err(e) => {
            eprintln!("chat_client: cannot connect to {url}: {e}");
            return ExitCode::from(1);
        }
    };

    // stdin is read on a thread of its own (blocking reads), line by line.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let failed = line.is_err();
            if lines_tx.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    let closed = connection.closed();
    tokio::pin!(closed);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let ended = loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(Ok(line)) => say(&connection, &line).await,
                None => break None,
                Some(Err(e)) => {
                    eprintln!("! cannot read stdin: {e}");
                    break None;
                }
            },
            _ = &mut ctrl_c => break None,
            ended = &mut closed => break Some(ended),
        }
    };
    match ended {
        // The end of stdin (or Ctrl-C): close, and wait for the close handshake (bounded by
        // the close timeout).
        None => {
            // 1000 is always a code that may be sent: `close` cannot refuse it.
            let _ = connection.close(CloseReason::new(CloseCode::NORMAL, "bye"));
            let _ = connection.closed().await;
            ExitCode::SUCCESS
        }
        // Over for good before the end of stdin: the server closed for a reason that would
        // happen again, or a reconnection was refused.
        Some(Ok(reason)) if reason.code() == CloseCode::NORMAL => ExitCode::SUCCESS,
        Some(Ok(reason)) => {
            eprintln!("chat_client: the connection ended: {reason}");
            ExitCode::from(1)
        }
        Some(Err(e)) => {
            eprintln!("chat_client: gave up reconnecting: {e}");
            ExitCode::from(1)
        }
    }
}
