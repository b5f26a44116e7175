//! Compile-time behaviour of `#[server_endpoint]` and `#[client_endpoint]` (`client_*.rs`):
//! every misuse in `tests/ui/*.rs` must fail with the pinned message in its `.stderr`;
//! everything in `tests/ui/pass/` must compile.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`, then read
//! every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
