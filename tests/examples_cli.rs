//! The README's examples as a new user meets them: `echo` and `chat` share the default port
//! 127.0.0.1:8089, so starting one while the other runs is the first mistake anyone makes. Each
//! binary (built by `cargo test` with the other examples) is run on a port this test already
//! holds: it exits with 1 and says what to do, instead of a `Debug` dump of the `io::Error`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, next to this test's own binary in `.../deps/`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

fn run_on_a_taken_port(name: &str, extra: &[&str]) -> (Option<i32>, String) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let out = Command::new(example(name))
        .arg("--addr")
        .arg(&addr)
        .args(extra)
        .env("RUST_LOG", "off")
        .output()
        .expect("run the example");
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
