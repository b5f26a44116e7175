//! URI templates and the router: arbitrary templates and request paths.
//!
//! Properties:
//! * parsing, inserting and matching never panic;
//! * a template that parses matches its own instantiation (literal segments as written, every
//!   `{var}` replaced by a percent-encoded non-empty value), giving back the values in order;
//! * `Router::find` returns a template that matches the path with the parameters it reports,
//!   none of the other matching templates ranks above it (a literal beats a variable at the
//!   first segment where they differ), and `None` only when no template matches.
#![no_main]

use arbitrary::Arbitrary;
use endpoint_runtime::router::{Router, UriTemplate};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

#[derive(Arbitrary, Debug)]
struct Input {
    templates: Vec<String>,
    paths: Vec<String>,
    /// Values for template variables.
    values: Vec<String>,
}

/// Literal (true) or variable (false) per segment of a parsed template.
fn shape(t: &UriTemplate) -> Vec<bool> {
    let raw = t.as_str();
    if raw == "/" {
        return Vec::new();
    }
    raw[1..]
        .split('/')
        .map(|s| !(s.starts_with('{') && s.ends_with('}')))
        .collect()
}

/// Whether a literal segment's percent-encoding decodes to UTF-8.
fn literal_decodes(seg: &str) -> bool {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .is_ok()
}

fn instantiate(t: &UriTemplate, values: &[String]) -> Option<(String, Vec<(String, String)>)> {
    let raw = t.as_str();
    if raw == "/" {
        return Some(("/".to_owned(), Vec::new()));
    }
    let mut path = String::new();
    let mut params = Vec::new();
    let mut i = 0;
    for seg in raw[1..].split('/') {
        path.push('/');
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let mut value = values.get(i).cloned().unwrap_or_default();
            i += 1;
            if value.is_empty() {
                value.push('v');
            }
            path.extend(utf8_percent_encode(&value, NON_ALPHANUMERIC));
            params.push((name.to_owned(), value));
        } else {
            // A literal that does not decode could never match: the parser refuses it.
            assert!(
                literal_decodes(seg),
                "template with undecodable literal {raw:?} parsed"
            );
            path.push_str(seg);
        }
    }
    Some((path, params))
}

fuzz_target!(|input: Input| {
    let mut router = Router::new();
    let mut parsed = Vec::new();
    for (n, template) in input.templates.iter().take(16).enumerate() {
        if let Ok(t) = UriTemplate::parse(template) {
            assert_eq!(t.as_str(), template);
            let vars: Vec<&str> = t.variables().collect();
            if let Some((path, params)) = instantiate(&t, &input.values) {
                assert_eq!(
                    t.matches(&path).as_ref(),
                    Some(&params),
                    "template {template:?} does not match its instantiation {path:?}"
                );
                assert_eq!(
                    params.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                    vars
                );
                parsed.push(path);
            }
        }
        let _ = router.insert(template, n);
    }
    let mut paths: Vec<&str> = input.paths.iter().take(16).map(String::as_str).collect();
    paths.extend(parsed.iter().map(String::as_str));
    for path in paths {
        let found = router.find(path);
        let matching: Vec<_> = router
            .iter()
            .filter(|(t, _)| t.matches(path).is_some())
            .collect();
        match found {
            None => assert!(matching.is_empty(), "{path:?} matches but find() says no"),
            Some(m) => {
                assert_eq!(m.template.matches(path), Some(m.params.clone()));
                let best = shape(m.template);
                for (t, _) in matching {
                    assert!(
                        shape(t) <= best,
                        "{path:?}: {} ranks above the chosen {}",
                        t.as_str(),
                        m.template.as_str()
                    );
                }
            }
        }
    }
    // Every instantiation of a template the router accepted is routed somewhere.
    for template in input.templates.iter().take(16) {
        if let Ok(t) = UriTemplate::parse(template) {
            if let Some((path, _)) = instantiate(&t, &input.values) {
                assert!(router.find(&path).is_some(), "{path:?} is not routed");
            }
        }
    }
});
