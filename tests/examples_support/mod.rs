//! Finding the example binaries the tests run as processes.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// `target/<profile>/examples/<name>`, next to the test's own binary in `.../deps/`.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe.parent().and_then(|d| d.parent()).expect("profile dir");
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} missing: `cargo test` builds the examples (or `cargo build --all-features --example {name}`)",
        path.display()
    );
    path
}
