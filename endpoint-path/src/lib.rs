//! # endpoint-path
//!
//! The grammar of an endpoint path such as `/chat/{room}`, in one place: the parser, the rules
//! and their error messages. `#[server_endpoint("...")]` (endpoint-macros) checks its path with
//! it at compile time and the runtime's router (endpoint-runtime) parses the same path with it
//! at `bind()`, so a path that compiles is a path that binds, and a path that is refused is
//! refused with the same sentence in both places. Like `serde_derive_internals` for serde's
//! derive, this crate is an internal part of the `endpoint` framework: its API is what the
//! macro and the router need.
//!
//! ```
//! use endpoint_path::{PathTemplate, Segment};
//!
//! let t = PathTemplate::parse("/chat/{room}").unwrap();
//! assert_eq!(
//!     t.segments(),
//!     [Segment::Literal("chat".into()), Segment::Variable("room".into())]
//! );
//!
//! let err = PathTemplate::parse("/chat/").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid endpoint path: `/chat/` ends with `/`; write \"/chat\" (only the root path \
//!      \"/\" ends with `/`: `/chat` and `/chat/` would be different paths, and a WebSocket \
//!      client does not follow a redirect from one to the other)"
//! );
//! ```
//!
//! # The grammar
//!
//! An endpoint path is a level-1 URI template (RFC 6570) in which a variable fills a whole
//! segment, as the paths of Jakarta WebSocket's `@ServerEndpoint` (JSR 356, section 3.1.1):
//!
//! ```text
//! path     = "/" / 1*( "/" segment )      ; the root, or non-empty segments, no trailing "/"
//! segment  = variable / literal
//! variable = "{" name "}"
//! name     = ( ALPHA / "_" ) *( ALPHA / DIGIT / "_" )    ; ASCII letters, digits and "_"
//! literal  = 1*( any character except "/" "{" "}" "?" "#", white space and control characters )
//!            ; whose percent-decoding is UTF-8
//! ```
//!
//! A literal segment is compared with a request's segment once both are percent-decoded (with
//! [`percent_decode`]); a variable matches any one non-empty segment. Each variable name appears
//! once. Anything else is refused with the first of these errors that applies (checked in this
//! order, segments from left to right, duplicates last); every message reads
//! `invalid endpoint path: ` followed by:
//!
//! | refused | e.g. | the sentence |
//! |---|---|---|
//! | an empty path | `""` | the path is empty; it must start with `/`, e.g. "/chat" |
//! | no leading `/` | `echo` | `echo` must start with `/`, e.g. "/echo" |
//! | a query | `/echo?room=1` | `/echo?room=1` contains a query (`?`); an endpoint path is only the path part of the URI (read the query with `Session::query_param`) |
//! | a fragment | `/echo#top` | `/echo#top` contains a fragment (`#`); (as for a query) |
//! | white space or a control character | `/chat room` | `/chat room` contains ' '; percent-encode it (e.g. a space is `%20`) |
//! | an empty segment | `/chat//room` | `/chat//room` has an empty segment (`//`) |
//! | a trailing `/` | `/chat/` | `/chat/` ends with `/`; write "/chat" (only the root path "/" ends with `/`: ...) |
//! | an empty variable | `/chat/{}` | `/chat/{}` has an empty variable `{}`; name it, e.g. `{id}` |
//! | nested braces | `/chat/{{room}}` | `/chat/{{room}}` has nested braces in `{{room}}` |
//! | a bad variable name | `/chat/{user-id}` | `{user-id}` is not a valid variable name: use letters, digits and `_`, not starting with a digit |
//! | text and a variable in one segment | `/chat/room-{id}` | the segment `room-{id}` mixes text and braces; a variable must fill a whole segment, e.g. "/chat/{room}" |
//! | a literal that does not decode to UTF-8 | `/caf%E9` | `/caf%E9` has the segment `caf%E9`, whose percent-decoding is not UTF-8, so no request can match it; percent-encode UTF-8, e.g. `é` is `%C3%A9` |
//! | a variable used twice | `/chat/{room}/{room}` | `/chat/{room}/{room}` uses the variable `{room}` twice; each variable needs its own name |
//!
//! # Decision: no trailing `/`
//!
//! `/chat/` is refused: write `/chat`. Only the root path `/` ends with `/`. Matching is exact,
//! segment by segment, with no partial matches, so `/chat` and `/chat/` are two different
//! paths, and an endpoint at the one spelling is never reached by a client that uses the other.
//! HTTP frameworks that keep the two apart repair this typo with a redirect to the other
//! spelling; a WebSocket client does not follow redirects (a browser fails the connection on any
//! status but `101`), so that repair does not exist here. Refusing the trailing `/` leaves one
//! spelling per endpoint and turns the typo into a compile error (or an `InvalidInput` error at
//! `bind()` for a path given at run time). Request paths are not normalised either: a request
//! for `/chat/` does not reach the endpoint `/chat`.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

/// A parsed, valid endpoint path: its text as written and its segments.
///
/// ```
/// use endpoint_path::PathTemplate;
///
/// let t = PathTemplate::parse("/chat/{room}/users/{user}").unwrap();
/// assert_eq!(t.as_str(), "/chat/{room}/users/{user}");
/// assert_eq!(t.variables().collect::<Vec<_>>(), ["room", "user"]);
/// assert!(PathTemplate::parse("/").unwrap().segments().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathTemplate {
    raw: String,
    segments: Vec<Segment>,
}

/// One `/`-separated segment of a [`PathTemplate`].
///
/// ```
/// use endpoint_path::{PathTemplate, Segment};
///
/// let t = PathTemplate::parse("/caf%C3%A9/{id}").unwrap();
/// assert_eq!(t.segments()[0], Segment::Literal("café".into()));
/// assert_eq!(t.segments()[1], Segment::Variable("id".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text that a request's segment must equal, percent-decoded (`caf%C3%A9` is held as
    /// `café`).
    Literal(String),
    /// `{name}`: matches any one non-empty segment; holds the name, without braces.
    Variable(String),
}

/// Why a path is not a valid endpoint path.
///
/// Its [`Display`](fmt::Display) is the whole message, `invalid endpoint path: ` followed by
/// [`reason`](PathError::reason); see the [crate docs](crate#the-grammar) for every sentence.
///
/// ```
/// use endpoint_path::PathTemplate;
///
/// let err = PathTemplate::parse("echo").unwrap_err();
/// assert_eq!(err.path(), "echo");
/// assert_eq!(err.reason(), "`echo` must start with `/`, e.g. \"/echo\"");
/// assert_eq!(err.to_string(), format!("invalid endpoint path: {}", err.reason()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    path: String,
    reason: String,
}

impl PathTemplate {
    /// Parses and validates an endpoint path against the [grammar](crate#the-grammar).
    ///
    /// # Errors
    ///
    /// A [`PathError`] naming the first rule the path breaks.
    ///
    /// ```
    /// use endpoint_path::PathTemplate;
    ///
    /// assert!(PathTemplate::parse("/echo.do").is_ok());
    /// assert!(PathTemplate::parse("/chat/{room}").is_ok());
    /// assert!(PathTemplate::parse("/chat/x{room}").is_err());
    /// assert!(PathTemplate::parse("/chat/").is_err());
    /// ```
    pub fn parse(path: &str) -> Result<PathTemplate, PathError> {
        let fail = |reason: String| {
            Err(PathError {
                path: path.to_owned(),
                reason,
            })
        };
        if path.is_empty() {
            return fail("the path is empty; it must start with `/`, e.g. \"/chat\"".into());
        }
        let Some(rest) = path.strip_prefix('/') else {
            let fixed = path.trim_end_matches('/');
            return fail(format!("`{path}` must start with `/`, e.g. \"/{fixed}\""));
        };
        if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#')) {
            let what = if c == '?' { "a query" } else { "a fragment" };
            return fail(format!(
                "`{path}` contains {what} (`{c}`); an endpoint path is only the path part of the \
                 URI (read the query with `Session::query_param`)"
            ));
        }
        if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return fail(format!(
                "`{path}` contains {c:?}; percent-encode it (e.g. a space is `%20`)"
            ));
        }
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let raw: Vec<&str> = rest.split('/').collect();
            let last = raw.len() - 1;
            for (i, seg) in raw.into_iter().enumerate() {
                if seg.is_empty() && i == last {
                    let fixed = path.trim_end_matches('/');
                    return fail(format!(
                        "`{path}` ends with `/`; write \"{fixed}\" (only the root path \"/\" ends \
                         with `/`: `{fixed}` and `{path}` would be different paths, and a \
                         WebSocket client does not follow a redirect from one to the other)"
                    ));
                }
                if seg.is_empty() {
                    return fail(format!("`{path}` has an empty segment (`//`)"));
                }
                match segment(path, seg) {
                    Ok(s) => segments.push(s),
                    Err(reason) => return fail(reason),
                }
            }
        }
        let template = PathTemplate {
            raw: path.to_owned(),
            segments,
        };
        for (i, var) in template.variables().enumerate() {
            if template.variables().take(i).any(|v| v == var) {
                return fail(format!(
                    "`{path}` uses the variable `{{{var}}}` twice; each variable needs its own name"
                ));
            }
        }
        Ok(template)
    }

    /// The path as written.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// assert_eq!(PathTemplate::parse("/caf%C3%A9").unwrap().as_str(), "/caf%C3%A9");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The segments, in order; none for the root path `/`.
    ///
    /// ```
    /// # use endpoint_path::{PathTemplate, Segment};
    /// let t = PathTemplate::parse("/a/{b}").unwrap();
    /// assert_eq!(t.segments(), [Segment::Literal("a".into()), Segment::Variable("b".into())]);
    /// ```
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The variable names, in path order.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// let t = PathTemplate::parse("/chat/{room}/{user}").unwrap();
    /// assert_eq!(t.variables().collect::<Vec<_>>(), ["room", "user"]);
    /// ```
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(v) => Some(v.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Whether `name` is one of the variables.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// let t = PathTemplate::parse("/chat/{room}").unwrap();
    /// assert!(t.has_variable("room"));
    /// assert!(!t.has_variable("chat"));
    /// ```
    pub fn has_variable(&self, name: &str) -> bool {
        self.variables().any(|v| v == name)
    }

    /// Whether both paths match exactly the same requests: as many segments, equal literals
    /// where one has a literal, variables (of any names) where one has a variable. Two such
    /// endpoints cannot be served together.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// let p = |s| PathTemplate::parse(s).unwrap();
    /// assert!(p("/a/{x}").matches_same_paths(&p("/a/{y}")));
    /// assert!(p("/caf%C3%A9").matches_same_paths(&p("/café")));
    /// assert!(!p("/a/{x}").matches_same_paths(&p("/a/b")));
    /// assert!(!p("/a/{x}").matches_same_paths(&p("/a/{x}/{y}")));
    /// ```
    pub fn matches_same_paths(&self, other: &PathTemplate) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Variable(_), Segment::Variable(_)) => true,
                    _ => false,
                })
    }
}

impl fmt::Display for PathTemplate {
    /// The path as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Segment {
    /// Whether this is a literal segment (which, at the first segment where two matching paths
    /// differ, takes precedence over a variable).
    ///
    /// ```
    /// # use endpoint_path::Segment;
    /// assert!(Segment::Literal("chat".into()).is_literal());
    /// assert!(!Segment::Variable("room".into()).is_literal());
    /// ```
    pub fn is_literal(&self) -> bool {
        matches!(self, Segment::Literal(_))
    }
}

impl PathError {
    /// The path that was refused, as given.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// assert_eq!(PathTemplate::parse("/a//b").unwrap_err().path(), "/a//b");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, as a sentence that follows `invalid endpoint path: `.
    ///
    /// ```
    /// # use endpoint_path::PathTemplate;
    /// assert_eq!(
    ///     PathTemplate::parse("/a//b").unwrap_err().reason(),
    ///     "`/a//b` has an empty segment (`//`)"
    /// );
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid endpoint path: {}", self.reason)
    }
}

impl std::error::Error for PathError {}

/// Percent-decodes a path segment as the router compares segments: every `%` followed by two
/// hex digits is that byte, any other `%` stays as it is, and the bytes must be UTF-8 (`None`
/// when they are not). Used for a template's literal segments and for a request's segments
/// alike, so that both are compared the same way.
///
/// ```
/// use endpoint_path::percent_decode;
///
/// assert_eq!(percent_decode("rust%20lang").as_deref(), Some("rust lang"));
/// assert_eq!(percent_decode("J%c3%bcrgen").as_deref(), Some("Jürgen"));
/// assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
/// assert_eq!(percent_decode("%FF"), None);
/// ```
pub fn percent_decode(segment: &str) -> Option<Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(hex_value),
                bytes.get(i + 2).and_then(hex_value),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_value(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One non-empty segment; the error is the sentence.
fn segment(path: &str, seg: &str) -> Result<Segment, String> {
    if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        if inner.is_empty() {
            return Err(format!(
                "`{path}` has an empty variable `{{}}`; name it, e.g. `{{id}}`"
            ));
        }
        if inner.starts_with('{') && inner.ends_with('}') {
            return Err(format!("`{path}` has nested braces in `{seg}`"));
        }
        if !inner.contains(['{', '}']) {
            if !is_variable_name(inner) {
                return Err(format!(
                    "`{{{inner}}}` is not a valid variable name: use letters, digits and `_`, \
                     not starting with a digit"
                ));
            }
            return Ok(Segment::Variable(inner.to_owned()));
        }
        // Otherwise `{a}{b}`, `{a}}`, ...: braces inside a segment, like `x{a}`.
    }
    if seg.contains(['{', '}']) {
        return Err(format!(
            "the segment `{seg}` mixes text and braces; a variable must fill a whole segment, \
             e.g. \"/chat/{{room}}\""
        ));
    }
    // A literal that does not decode could never equal a (decoded) request segment: refuse it
    // rather than accept an endpoint that is never reached.
    match percent_decode(seg) {
        Some(literal) => Ok(Segment::Literal(literal.into_owned())),
        None => Err(format!(
            "`{path}` has the segment `{seg}`, whose percent-decoding is not UTF-8, so no \
             request can match it; percent-encode UTF-8, e.g. `é` is `%C3%A9`"
        )),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_variable_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.into())
    }
    fn var(s: &str) -> Segment {
        Segment::Variable(s.into())
    }

    #[track_caller]
    fn segments(path: &str) -> Vec<Segment> {
        match PathTemplate::parse(path) {
            Ok(t) => {
                assert_eq!(t.as_str(), path);
                assert_eq!(t.to_string(), path);
                t.segments().to_vec()
            }
            Err(e) => panic!("{path:?} refused: {e}"),
        }
    }

    /// The whole message for `path`, checked to be `invalid endpoint path: ` + the reason.
    #[track_caller]
    fn refused(path: &str) -> String {
        let err = PathTemplate::parse(path).expect_err(path);
        assert_eq!(err.path(), path);
        let msg = err.to_string();
        assert_eq!(msg, format!("invalid endpoint path: {}", err.reason()));
        err.reason().to_owned()
    }

    #[test]
    fn root() {
        assert_eq!(segments("/"), []);
    }

    #[test]
    fn literals() {
        assert_eq!(segments("/echo.do"), [lit("echo.do")]);
        assert_eq!(segments("/a/b-c/~d_e"), [lit("a"), lit("b-c"), lit("~d_e")]);
        assert_eq!(segments("/a;b=c,d"), [lit("a;b=c,d")]);
        // Non-ASCII literals are compared with decoded request segments: `/café` is reached by
        // `/caf%C3%A9`.
        assert_eq!(segments("/café"), [lit("café")]);
    }

    #[test]
    fn literals_are_percent_decoded() {
        assert_eq!(segments("/rust%20lang"), [lit("rust lang")]);
        assert_eq!(segments("/caf%c3%a9"), [lit("café")]);
        assert_eq!(segments("/a%2Fb"), [lit("a/b")]);
        // A `%` that does not start an escape is kept, as in a request.
        assert_eq!(segments("/100%"), [lit("100%")]);
        assert_eq!(segments("/%zz"), [lit("%zz")]);
    }

    #[test]
    fn variables() {
        assert_eq!(
            segments("/chat/{room}/u/{_user2}"),
            [lit("chat"), var("room"), lit("u"), var("_user2")]
        );
        assert_eq!(segments("/{_}"), [var("_")]);
        assert_eq!(segments("/{A9}"), [var("A9")]);
        let t = PathTemplate::parse("/chat/{room}/{user}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["room", "user"]);
        assert!(t.has_variable("user"));
        assert!(!t.has_variable("chat"));
    }

    #[test]
    fn empty_path() {
        assert_eq!(
            refused(""),
            "the path is empty; it must start with `/`, e.g. \"/chat\""
        );
    }

    #[test]
    fn leading_slash() {
        assert_eq!(
            refused("echo"),
            "`echo` must start with `/`, e.g. \"/echo\""
        );
        assert_eq!(
            refused("chat/{room}"),
            "`chat/{room}` must start with `/`, e.g. \"/chat/{room}\""
        );
        // The suggestion is itself valid.
        assert_eq!(
            refused("echo/"),
            "`echo/` must start with `/`, e.g. \"/echo\""
        );
    }

    #[test]
    fn query_and_fragment() {
        assert_eq!(
            refused("/echo?room=1"),
            "`/echo?room=1` contains a query (`?`); an endpoint path is only the path part of \
             the URI (read the query with `Session::query_param`)"
        );
        assert_eq!(
            refused("/echo#top"),
            "`/echo#top` contains a fragment (`#`); an endpoint path is only the path part of \
             the URI (read the query with `Session::query_param`)"
        );
        assert!(refused("/?").contains("a query"));
        assert!(refused("/a#b?c").contains("a fragment (`#`)"));
    }

    #[test]
    fn white_space_and_control_characters() {
        assert_eq!(
            refused("/chat room"),
            "`/chat room` contains ' '; percent-encode it (e.g. a space is `%20`)"
        );
        assert!(refused("/chat/ ").contains("contains ' '"));
        assert!(refused("/a\tb").contains(r"contains '\t'"));
        assert!(refused("/a\nb").contains(r"contains '\n'"));
        assert!(refused("/a\u{7f}").contains(r"contains '\u{7f}'"));
        assert!(refused("/a\u{a0}").contains(r"contains '\u{a0}'"));
        assert!(refused("/a\u{3000}").contains("percent-encode"));
    }

    #[test]
    fn empty_segment() {
        assert_eq!(refused("/a//b"), "`/a//b` has an empty segment (`//`)");
        assert_eq!(refused("//"), "`//` has an empty segment (`//`)");
        assert_eq!(refused("//a"), "`//a` has an empty segment (`//`)");
        assert_eq!(refused("/a//"), "`/a//` has an empty segment (`//`)");
    }

    #[test]
    fn trailing_slash() {
        assert_eq!(
            refused("/chat/"),
            "`/chat/` ends with `/`; write \"/chat\" (only the root path \"/\" ends with `/`: \
             `/chat` and `/chat/` would be different paths, and a WebSocket client does not \
             follow a redirect from one to the other)"
        );
        assert!(refused("/chat/{room}/")
            .starts_with("`/chat/{room}/` ends with `/`; write \"/chat/{room}\""));
    }

    #[test]
    fn empty_variable() {
        assert_eq!(
            refused("/chat/{}"),
            "`/chat/{}` has an empty variable `{}`; name it, e.g. `{id}`"
        );
    }

    #[test]
    fn nested_braces() {
        assert_eq!(
            refused("/chat/{{room}}"),
            "`/chat/{{room}}` has nested braces in `{{room}}`"
        );
        assert!(refused("/{{{a}}}").contains("nested braces in `{{{a}}}`"));
    }

    #[test]
    fn variable_names() {
        for name in ["1room", "ro-om", "é", "a.b", "a:b", "*"] {
            assert_eq!(
                refused(&format!("/chat/{{{name}}}")),
                format!(
                    "`{{{name}}}` is not a valid variable name: use letters, digits and `_`, not \
                     starting with a digit"
                )
            );
        }
    }

    #[test]
    fn partial_variables() {
        for seg in [
            "x{room}",
            "{room}x",
            "room-{id}",
            "{room",
            "room}",
            "{",
            "}",
            "{a}{b}",
            "{a}}",
            "{a{b}",
        ] {
            assert_eq!(
                refused(&format!("/chat/{seg}")),
                format!(
                    "the segment `{seg}` mixes text and braces; a variable must fill a whole \
                     segment, e.g. \"/chat/{{room}}\""
                ),
                "{seg}"
            );
        }
    }

    #[test]
    fn literal_that_does_not_decode() {
        assert_eq!(
            refused("/caf%E9"),
            "`/caf%E9` has the segment `caf%E9`, whose percent-decoding is not UTF-8, so no \
             request can match it; percent-encode UTF-8, e.g. `é` is `%C3%A9`"
        );
        assert!(refused("/ok/%FF/{v}").contains("the segment `%FF`"));
        assert!(refused("/%C3").contains("not UTF-8"));
    }

    #[test]
    fn duplicate_variables() {
        assert_eq!(
            refused("/chat/{room}/{room}"),
            "`/chat/{room}/{room}` uses the variable `{room}` twice; each variable needs its own \
             name"
        );
        assert!(refused("/{a}/{b}/x/{a}").contains("`{a}` twice"));
    }

    #[test]
    fn first_rule_broken_is_reported() {
        assert!(refused("chat?x").contains("must start with `/`"));
        assert!(refused("/a b?x").contains("a query"));
        assert!(refused("/a//{1}").contains("empty segment"));
        assert!(refused("/{1}//a").contains("not a valid variable name"));
        assert!(refused("/{a}/{a}/x{b}").contains("mixes text and braces"));
        assert!(refused("/{a}/{a}/").contains("ends with `/`"));
    }

    #[test]
    fn same_paths() {
        let p = |s| PathTemplate::parse(s).unwrap();
        assert!(p("/").matches_same_paths(&p("/")));
        assert!(p("/a/{x}").matches_same_paths(&p("/a/{y}")));
        assert!(p("/a%20b").matches_same_paths(&p("/a%20b")));
        assert!(p("/%41").matches_same_paths(&p("/A")));
        assert!(!p("/a").matches_same_paths(&p("/A")));
        assert!(!p("/").matches_same_paths(&p("/{x}")));
        assert!(!p("/{x}/b").matches_same_paths(&p("/a/{y}")));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("plain"), Some(Cow::Borrowed("plain")));
        assert_eq!(percent_decode("%41%62").as_deref(), Some("Ab"));
        assert_eq!(percent_decode("%%41").as_deref(), Some("%A"));
        assert_eq!(percent_decode("%4").as_deref(), Some("%4"));
        assert_eq!(percent_decode("%").as_deref(), Some("%"));
        assert_eq!(percent_decode("%g1").as_deref(), Some("%g1"));
        assert_eq!(percent_decode("%00").as_deref(), Some("\0"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%C3"), None);
        assert_eq!(percent_decode("%ee%64"), None);
    }
}
