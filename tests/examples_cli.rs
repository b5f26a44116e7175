//! The README's examples as a new user meets them, run as the binaries `cargo test` builds with
//! the other examples.
//!
//! - `echo` and `chat` share the default port 127.0.0.1:8089, so starting one while the other
//!   runs is the first mistake anyone makes. Each is run on a port this test already holds: it
//!   exits with 1 and says what to do, instead of a `Debug` dump of the `io::Error`.
//! - Every example's command line is clap's: `--help` exits 0 and lists every flag with its
//!   value name and default (pinned here flag by flag, nothing more, nothing less), and a flag
//!   it does not know exits 2 with clap's `unexpected argument`, before anything listens.

mod examples_support;
use examples_support::example;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long an example may take to answer `--help` or refuse its command line (it exits before
/// it listens); one still running then is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the example `name` with `args` until it exits, within [`TIMEOUT`].
fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(example(name))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{name} {args:?} still running after {TIMEOUT:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("wait")
}

fn run_on_a_taken_port(name: &str, extra: &[&str]) -> (Option<i32>, String) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let mut args = vec!["--addr", &addr];
    args.extend_from_slice(extra);
    let out = run(name, &args);
    drop(taken);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!("cannot listen on {addr}:")),
        "{name}: {stderr}"
    );
    (out.status.code(), stderr)
}

#[test]
fn echo_on_a_port_in_use_says_so_and_how_to_pick_another() {
    let (code, stderr) = run_on_a_taken_port("echo", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pass --addr HOST:PORT"), "{stderr}");
    assert!(!stderr.contains("Os {"), "a Debug dump: {stderr}");
}

#[test]
fn chat_on_a_port_in_use_says_so_and_how_to_pick_another() {
    let (code, stderr) = run_on_a_taken_port("chat", &["--db", ":memory:"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pass --addr HOST:PORT"), "{stderr}");
    assert!(!stderr.contains("Os {"), "a Debug dump: {stderr}");
}

#[test]
fn axum_on_a_port_in_use_says_so_and_how_to_pick_another() {
    let (code, stderr) = run_on_a_taken_port("axum", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pass --addr HOST:PORT"), "{stderr}");
    assert!(!stderr.contains("Os {"), "a Debug dump: {stderr}");
}

#[test]
fn echo_takes_its_address_as_addr_equals_too() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let out = run("echo", &[&format!("--addr={addr}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}:")),
        "{stderr}"
    );
}

/// `name --help`, which must exit 0: each option's entry, keyed by its flag and value name as
/// listed (`--addr <HOST:PORT>`, `--help`), with its description's lines joined by one space.
fn help(name: &str) -> BTreeMap<String, String> {
    let out = run(name, &["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name} --help: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Usage: {name} [OPTIONS]")),
        "{name} --help: {stdout}"
    );
    let options = stdout
        .split_once("Options:\n")
        .unwrap_or_else(|| panic!("{name} --help has no Options: {stdout}"))
        .1;
    let mut entries = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in options.lines() {
        let line = line.trim();
        if line.starts_with('-') {
            entries.extend(current.take().map(|(k, v)| (k, v.join(" "))));
            let (flag, text) = line.split_once("  ").unwrap_or((line, ""));
            let flag = flag.strip_prefix("-h, ").unwrap_or(flag);
            current = Some((flag.to_owned(), vec![text.trim()]));
        } else if let Some((_, text)) = current.as_mut() {
            text.push(line);
        }
    }
    entries.extend(current.map(|(k, v)| (k, v.join(" "))));
    entries
        .into_iter()
        .map(|(k, v)| (k, v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

/// `name --help` lists exactly `flags` (each `(flag and value name, default)`) and `--help`:
/// each described, with `[default: ...]` where it has one and none where it has not.
fn assert_help(name: &str, flags: &[(&str, Option<&str>)]) {
    let help = help(name);
    let listed: Vec<&str> = help.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = flags.iter().map(|(flag, _)| *flag).collect();
    expected.push("--help");
    expected.sort_unstable();
    assert_eq!(listed, expected, "{name} --help: {help:#?}");
    for (flag, default) in flags {
        let text = &help[*flag];
        let described = text.split("[default:").next().unwrap_or("").trim();
        assert!(
            !described.is_empty(),
            "{name} {flag} has no description: {text:?}"
        );
        match default {
            Some(default) => assert!(
                text.ends_with(&format!("[default: {default}]")),
                "{name} {flag}: {text:?}"
            ),
            None => assert!(!text.contains("[default:"), "{name} {flag}: {text:?}"),
        }
    }
}

/// `name --no-such-flag` exits 2 with clap's own message, having printed nothing on stdout (so
/// it never got to listen).
fn assert_refuses_a_bad_flag(name: &str) {
    let out = run(name, &["--no-such-flag"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(
        stderr.contains("error: unexpected argument '--no-such-flag' found"),
        "{name}: {stderr}"
    );
    assert!(
        stderr.contains(&format!("Usage: {name} [OPTIONS]")),
        "{name}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{name}: {:?}", out.stdout);
}

/// `name --tls-cert PEM` without `--tls-key` (or the other way round) is refused by clap with 2.
fn assert_tls_flags_go_together(name: &str) {
    for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
        let out = run(name, &[given, "x.pem"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} {given}: {stderr}");
        assert!(
            stderr.contains("the following required arguments were not provided")
                && stderr.contains(&format!("{missing} <PEM>")),
            "{name} {given}: {stderr}"
        );
    }
}

const ADDR: (&str, Option<&str>) = ("--addr <HOST:PORT>", Some("127.0.0.1:8089"));
const TLS: [(&str, Option<&str>); 2] = [("--tls-cert <PEM>", None), ("--tls-key <PEM>", None)];

#[test]
fn echo_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help("echo", &[ADDR, TLS[0], TLS[1]]);
    assert_refuses_a_bad_flag("echo");
}

#[test]
fn chat_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help(
        "chat",
        &[
            ADDR,
            ("--db <PATH>", Some("chat.db")),
            ("--redis <URL>", None),
            TLS[0],
            TLS[1],
        ],
    );
    assert_refuses_a_bad_flag("chat");
}

#[test]
fn axum_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help("axum", &[ADDR]);
    assert_refuses_a_bad_flag("axum");
}

#[test]
fn port_echo_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help("port_echo", &[ADDR]);
    assert_refuses_a_bad_flag("port_echo");
}

#[test]
fn port_chat_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help("port_chat", &[ADDR]);
    assert_refuses_a_bad_flag("port_chat");
}

#[test]
fn port_auth_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help("port_auth", &[ADDR]);
    assert_refuses_a_bad_flag("port_auth");
}

#[test]
fn redis_node_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help(
        "redis_node",
        &[
            ADDR,
            ("--redis <URL>", Some("redis://127.0.0.1:6379")),
            ("--node <ID>", None),
            ("--presence-ttl-ms <N>", Some("15000")),
        ],
    );
    assert_refuses_a_bad_flag("redis_node");
}

#[test]
fn autobahn_server_help_lists_every_flag_with_its_default_and_a_bad_flag_exits_2() {
    assert_help(
        "autobahn_server",
        &[
            ("--addr <HOST:PORT>", Some("127.0.0.1:9001")),
            ("--context-takeover", None),
        ],
    );
    assert_refuses_a_bad_flag("autobahn_server");
}

#[test]
fn echo_and_chat_refuse_half_a_certificate_with_2() {
    assert_tls_flags_go_together("echo");
    assert_tls_flags_go_together("chat");
}
