//! One URI-template grammar for the macro and the router.
//!
//! * Every `#[server_endpoint("...")]` path in `tests/ui/` that compiles (all of `ui/pass/`, and
//!   the compile-fail cases whose `.stderr` has no path error) is accepted by the runtime's
//!   router, and every path the macro refuses (`ui/path_malformed_*.rs`) is refused by the
//!   router with the message pinned in its `.stderr`, word for word.
//! * A table of further paths gets the same verdict and the same message from `endpoint_path`
//!   (what the macro runs), `UriTemplate::parse` and `Router::insert`.

use std::fs;
use std::path::{Path, PathBuf};

use endpoint_path::PathTemplate;
use endpoint_runtime::router::{Router, UriTemplate};

/// The router's verdict on `path`: its variables, or its error message. Panics when
/// `UriTemplate::parse` and `Router::insert` disagree.
#[track_caller]
fn router_verdict(path: &str) -> Result<Vec<String>, String> {
    let parsed = UriTemplate::parse(path)
        .map(|t| t.variables().map(str::to_owned).collect::<Vec<_>>())
        .map_err(|e| e.to_string());
    let inserted = Router::new().insert(path, ()).map_err(|e| e.to_string());
    assert_eq!(
        parsed.as_ref().err(),
        inserted.as_ref().err(),
        "{path:?}: UriTemplate::parse and Router::insert disagree"
    );
    parsed
}

/// The grammar's verdict on `path` (what `#[server_endpoint]` reports).
fn grammar_verdict(path: &str) -> Result<Vec<String>, String> {
    PathTemplate::parse(path)
        .map(|t| t.variables().map(str::to_owned).collect())
        .map_err(|e| e.to_string())
}

/// The string literals of every `#[server_endpoint("...")]` in a source file, unescaped.
fn endpoint_paths(source: &str) -> Vec<String> {
    const ATTR: &str = "#[server_endpoint(";
    let mut paths = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(ATTR) {
        rest = &rest[at + ATTR.len()..];
        let body = rest
            .strip_prefix('"')
            .expect("the path is the attribute's first argument, a plain string literal");
        let (path, after) = unescape_string(body);
        paths.push(path);
        rest = after;
    }
    paths
}

/// Reads a Rust string literal's contents up to its closing quote; returns them unescaped and
/// the text after the quote.
fn unescape_string(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('x') => {
                    let hex: String = (0..2)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    out.push(char::from(
                        u8::from_str_radix(&hex, 16).expect("\\x escape"),
                    ));
                }
                Some('u') => {
                    let mut hex = String::new();
                    for (_, c) in chars.by_ref() {
                        match c {
                            '{' => {}
                            '}' => break,
                            c => hex.push(c),
                        }
                    }
                    let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                    out.push(char::from_u32(code).expect("\\u escape"));
                }
                Some('\n') => {
                    // A line continuation skips the next line's leading white space.
                    let rest = &s[chars.offset()..];
                    let skip = rest.len() - rest.trim_start().len();
                    for _ in rest[..skip].chars() {
                        chars.next();
                    }
                }
                other => panic!("unknown escape \\{other:?} in a path literal"),
            },
            c => out.push(c),
        }
    }
    panic!("unterminated string literal");
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

#[test]
fn every_path_that_compiles_is_routed() {
    let mut checked = 0;
    let mut files = rs_files(&ui_dir().join("pass"));
    // Compile-fail cases fail for another reason than their path: it compiled as a path.
    files.extend(rs_files(&ui_dir()).into_iter().filter(|f| {
        let stderr = fs::read_to_string(f.with_extension("stderr")).unwrap_or_default();
        !stderr.contains("error: invalid endpoint path: ")
    }));
    for file in files {
        let source = fs::read_to_string(&file).expect("read a UI case");
        for path in endpoint_paths(&source) {
            let routed = router_verdict(&path);
            assert!(
                routed.is_ok(),
                "{}: #[server_endpoint({path:?})] compiles but the router refuses it: {}",
                file.display(),
                routed.unwrap_err()
            );
            assert_eq!(routed, grammar_verdict(&path), "{path:?}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} paths found in tests/ui");
}

#[test]
fn every_path_the_macro_refuses_is_refused_by_the_router_with_its_message() {
    let mut checked = 0;
    for file in rs_files(&ui_dir()) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("path_") {
            continue;
        }
        let source = fs::read_to_string(&file).expect("read a UI case");
        let stderr = fs::read_to_string(file.with_extension("stderr")).expect("its .stderr");
        let pinned: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .filter(|m| m.starts_with("invalid endpoint path: "))
            .collect();
        let paths = endpoint_paths(&source);
        if !name.starts_with("path_malformed_") {
            assert!(
                pinned.is_empty(),
                "{name}: a path error outside path_malformed_*"
            );
            continue;
        }
        assert_eq!(
            paths.len(),
            1,
            "{name}: one endpoint per path_malformed_* case"
        );
        assert_eq!(pinned.len(), 1, "{name}: its .stderr pins one path error");
        let path = &paths[0];
        assert_eq!(
            router_verdict(path),
            Err(pinned[0].to_owned()),
            "{name}: the router must refuse {path:?} with the macro's message"
        );
        assert_eq!(grammar_verdict(path), Err(pinned[0].to_owned()), "{name}");
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} path_malformed_* cases");
}

/// Paths beyond the UI cases: `Ok` with the variables, or a fragment of the refusal.
#[test]
fn grammar_and_router_agree() {
    let cases: &[(&str, Result<&[&str], &str>)] = &[
        ("/", Ok(&[])),
        ("/echo.do", Ok(&[])),
        ("/chat/{room}/users/{user}", Ok(&["room", "user"])),
        ("/{_}/{a1}/{B_2}", Ok(&["_", "a1", "B_2"])),
        ("/caf%C3%A9", Ok(&[])),
        ("/café", Ok(&[])),
        ("/a%20b", Ok(&[])),
        ("/100%", Ok(&[])),
        ("/a;b=c,d~e", Ok(&[])),
        ("", Err("the path is empty; it must start with `/`")),
        ("chat", Err("`chat` must start with `/`, e.g. \"/chat\"")),
        ("chat/", Err("`chat/` must start with `/`, e.g. \"/chat\"")),
        ("/chat?x=1", Err("contains a query (`?`)")),
        ("/chat#top", Err("contains a fragment (`#`)")),
        ("/a b", Err("`/a b` contains ' '; percent-encode it")),
        ("/a\tb", Err(r"contains '\t'")),
        ("/a\nb", Err(r"contains '\n'")),
        ("/a\u{0}", Err(r"contains '\0'")),
        ("/a\u{a0}b", Err(r"contains '\u{a0}'")),
        ("//", Err("has an empty segment (`//`)")),
        ("/a//b", Err("has an empty segment (`//`)")),
        ("/a//", Err("has an empty segment (`//`)")),
        ("/chat/", Err("`/chat/` ends with `/`; write \"/chat\"")),
        (
            "/{room}/",
            Err("`/{room}/` ends with `/`; write \"/{room}\""),
        ),
        ("/chat/{}", Err("has an empty variable `{}`")),
        ("/chat/{{room}}", Err("has nested braces in `{{room}}`")),
        (
            "/chat/{1room}",
            Err("`{1room}` is not a valid variable name"),
        ),
        (
            "/chat/{ro-om}",
            Err("`{ro-om}` is not a valid variable name"),
        ),
        ("/chat/{é}", Err("`{é}` is not a valid variable name")),
        (
            "/chat/x{room}",
            Err("the segment `x{room}` mixes text and braces"),
        ),
        (
            "/chat/{room}x",
            Err("the segment `{room}x` mixes text and braces"),
        ),
        (
            "/chat/{room",
            Err("the segment `{room` mixes text and braces"),
        ),
        (
            "/chat/room}",
            Err("the segment `room}` mixes text and braces"),
        ),
        (
            "/chat/{a}{b}",
            Err("the segment `{a}{b}` mixes text and braces"),
        ),
        (
            "/%FF",
            Err("has the segment `%FF`, whose percent-decoding is not UTF-8"),
        ),
        (
            "/a/%C3/{v}",
            Err("has the segment `%C3`, whose percent-decoding is not UTF-8"),
        ),
        ("/{a}/b/{a}", Err("uses the variable `{a}` twice")),
    ];
    for (path, expected) in cases {
        let grammar = grammar_verdict(path);
        let router = router_verdict(path);
        assert_eq!(
            grammar, router,
            "{path:?}: endpoint_path and the router disagree"
        );
        match (expected, &grammar) {
            (Ok(vars), Ok(got)) => assert_eq!(got, vars, "{path:?}"),
            (Err(fragment), Err(msg)) => {
                assert!(
                    msg.starts_with("invalid endpoint path: ") && msg.contains(fragment),
                    "{path:?}: {msg:?} does not say {fragment:?}"
                );
            }
            _ => panic!("{path:?}: expected {expected:?}, got {grammar:?}"),
        }
    }
}

#[test]
fn the_scanner_reads_escapes() {
    assert_eq!(
        endpoint_paths(r#"#[server_endpoint("/a\tb\u{e9}\"", x = 1)] #[server_endpoint("/c")]"#),
        ["/a\tbé\"", "/c"]
    );
}
