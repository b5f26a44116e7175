//! URI-template routing (level-1 templates, as `@ServerEndpoint` paths).
//!
//! * A template is a path starting with `/`, made of literal segments and variables `{name}`;
//!   a variable fills one whole, non-empty segment. The grammar, and the message for each
//!   malformed template, are [`endpoint_path`]'s, which `#[server_endpoint]` checks its path with
//!   at compile time: a path that compiles is a path [`Router::insert`] accepts. Only the root
//!   `/` ends with `/`.
//! * A request path matches a template when it has the same number of segments and every
//!   literal segment is equal (after percent-decoding). There are no partial matches:
//!   `/a/{v}` matches neither `/a` nor `/a/b/` nor `/a/b/c`.
//! * When several templates match, the one with a literal where the others have a variable, at the
//!   first segment where they differ, wins (JSR 356, section 3.1.1): `/chat/lobby` beats
//!   `/chat/{room}`, and `/a/{x}/c` beats `/{y}/b/c` for `/a/b/c`.
//!
//! ```
//! use endpoint_runtime::router::Router;
//!
//! let mut router = Router::new();
//! router.insert("/chat/{room}", "room").unwrap();
//! router.insert("/chat/lobby", "lobby").unwrap();
//!
//! let m = router.find("/chat/rust%20lang").unwrap();
//! assert_eq!(*m.value, "room");
//! assert_eq!(m.params, vec![("room".to_string(), "rust lang".to_string())]);
//! assert_eq!(*router.find("/chat/lobby").unwrap().value, "lobby");
//! assert!(router.find("/chat").is_none());
//! assert!(router.find("/chat/a/").is_none());
//! ```

use std::fmt;

use endpoint_path::{percent_decode, PathTemplate, Segment};

/// A parsed level-1 URI template such as `/chat/{room}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    inner: PathTemplate,
}

/// Why a template is malformed, or why two templates cannot be registered together.
///
/// A malformed template's message is the one `#[server_endpoint]` reports at compile time for
/// the same path (`invalid endpoint path: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl UriTemplate {
    /// Parses and validates a template, with the grammar `#[server_endpoint]` checks at compile
    /// time ([`endpoint_path`]).
    ///
    /// # Errors
    /// A [`TemplateError`] when the path is empty, does not start with `/`, has a `?` or `#`,
    /// white space or a control character, an empty segment, a trailing `/` (other than the root
    /// `/`), a variable that does not fill its whole segment, an invalid or duplicate variable
    /// name, or a literal whose percent-encoding is not UTF-8. Its message is the macro's.
    ///
    /// ```
    /// # use endpoint_runtime::router::UriTemplate;
    /// assert!(UriTemplate::parse("/a/{b}").is_ok());
    /// assert!(UriTemplate::parse("/a/x{b}").is_err());
    /// assert!(UriTemplate::parse("/a/").is_err());
    /// assert_eq!(
    ///     UriTemplate::parse("a").unwrap_err().to_string(),
    ///     "invalid endpoint path: `a` must start with `/`, e.g. \"/a\""
    /// );
    /// ```
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        match PathTemplate::parse(template) {
            Ok(inner) => Ok(UriTemplate { inner }),
            Err(e) => Err(TemplateError(e.to_string())),
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        self.inner.as_str()
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.inner.variables()
    }

    /// Matches a request path (no query), returning the percent-decoded variables.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let segments = self.inner.segments();
        let mut params = Vec::new();
        let mut n = 0;
        if !rest.is_empty() {
            for seg in rest.split('/') {
                let tpl = segments.get(n)?;
                n += 1;
                let value = percent_decode(seg)?;
                match tpl {
                    Segment::Literal(lit) => {
                        if *lit != value {
                            return None;
                        }
                    }
                    Segment::Variable(name) => {
                        if value.is_empty() {
                            return None;
                        }
                        params.push((name.clone(), value.into_owned()));
                    }
                }
            }
        }
        (n == segments.len()).then_some(params)
    }

    /// For precedence: literal (true) or variable (false) per segment.
    fn shape(&self) -> impl Iterator<Item = bool> + '_ {
        self.inner.segments().iter().map(Segment::is_literal)
    }

    /// Whether both templates match exactly the same paths.
    fn equivalent(&self, other: &UriTemplate) -> bool {
        self.inner.matches_same_paths(&other.inner)
    }
}

/// A set of templates, each with a value; finds the best match for a path.
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<(UriTemplate, T)>,
}

/// A successful match: the route's value and the decoded path variables.
#[derive(Debug)]
pub struct Match<'a, T> {
    /// The value registered with the matching template.
    pub value: &'a T,
    /// The template that matched.
    pub template: &'a UriTemplate,
    /// Path variables, percent-decoded, in template order.
    pub params: Vec<(String, String)>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    ///
    /// # Errors
    /// When the template is malformed, or another template already matches exactly the same
    /// paths (`/a/{x}` and `/a/{y}`).
    pub fn insert(&mut self, template: &str, value: T) -> Result<(), TemplateError> {
        let tpl = UriTemplate::parse(template)?;
        if let Some((other, _)) = self.routes.iter().find(|(t, _)| t.equivalent(&tpl)) {
            return Err(TemplateError(format!(
                "endpoint path `{template}` conflicts with `{}`: both match the same paths",
                other.as_str()
            )));
        }
        self.routes.push((tpl, value));
        Ok(())
    }

    /// The best route for `path` (without query string), if any.
    pub fn find(&self, path: &str) -> Option<Match<'_, T>> {
        let mut best: Option<Match<'_, T>> = None;
        for (tpl, value) in &self.routes {
            if let Some(params) = tpl.matches(path) {
                let better = match &best {
                    None => true,
                    Some(b) => tpl.shape().gt(b.template.shape()),
                };
                if better {
                    best = Some(Match {
                        value,
                        template: tpl,
                        params,
                    });
                }
            }
        }
        best
    }

    /// Whether no route is registered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The registered templates and values.
    pub fn iter(&self) -> impl Iterator<Item = (&UriTemplate, &T)> {
        self.routes.iter().map(|(t, v)| (t, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(paths: &[&'static str]) -> Router<&'static str> {
        let mut r = Router::new();
        for p in paths {
            r.insert(p, *p).unwrap();
        }
        r
    }

    #[test]
    fn exact_beats_variable() {
        let r = router(&["/chat/{room}", "/chat/lobby", "/{a}/{b}"]);
        assert_eq!(*r.find("/chat/lobby").unwrap().value, "/chat/lobby");
        assert_eq!(*r.find("/chat/x").unwrap().value, "/chat/{room}");
        assert_eq!(*r.find("/other/x").unwrap().value, "/{a}/{b}");
    }

    #[test]
    fn leftmost_literal_wins() {
        let r = router(&["/a/{x}/c", "/{y}/b/c"]);
        assert_eq!(*r.find("/a/b/c").unwrap().value, "/a/{x}/c");
    }

    #[test]
    fn no_partial_matches() {
        let r = router(&["/a/{v}", "/"]);
        assert!(r.find("/a").is_none());
        assert!(r.find("/a/").is_none());
        assert!(r.find("/a/b/").is_none());
        assert!(r.find("/a/b/c").is_none());
        assert!(r.find("").is_none());
        assert_eq!(*r.find("/").unwrap().value, "/");
        assert!(r.find("//").is_none());
    }

    #[test]
    fn params_are_decoded() {
        let r = router(&["/u/{name}/{id}"]);
        let m = r.find("/u/J%C3%BCrgen/42").unwrap();
        assert_eq!(
            m.params,
            vec![("name".into(), "Jürgen".into()), ("id".into(), "42".into())]
        );
        assert!(r.find("/u/%FF/1").is_none(), "invalid UTF-8 does not match");
    }

    #[test]
    fn malformed_templates() {
        for bad in [
            "", "a", "/a//b", "/a/", "/{}", "/{1x}", "/a{b}", "/{a}/{a}", "/a?b", "/{a-b}", "/%FF",
            "/%eed", "/%eed ", "/a b", "/a\tb", "/a#b", "/{{a}}",
        ] {
            let err = UriTemplate::parse(bad).expect_err(bad);
            // The message #[server_endpoint] gives for the same path, word for word.
            let shared = endpoint_path::PathTemplate::parse(bad).expect_err(bad);
            assert_eq!(err.to_string(), shared.to_string());
            let mut r = Router::new();
            assert_eq!(r.insert(bad, ()).unwrap_err(), err);
        }
        assert!(UriTemplate::parse("/").is_ok());
        assert_eq!(
            UriTemplate::parse("/chat/").unwrap_err().to_string(),
            "invalid endpoint path: `/chat/` ends with `/`; write \"/chat\" (only the root path \
             \"/\" ends with `/`: `/chat` and `/chat/` would be different paths, and a WebSocket \
             client does not follow a redirect from one to the other)"
        );
    }

    #[test]
    fn literals_are_compared_decoded() {
        let r = router(&["/caf%C3%A9/{x}", "/a%20b"]);
        assert_eq!(*r.find("/caf%c3%a9/1").unwrap().value, "/caf%C3%A9/{x}");
        assert_eq!(*r.find("/café/1").unwrap().value, "/caf%C3%A9/{x}");
        assert_eq!(*r.find("/a b").unwrap().value, "/a%20b");
        assert_eq!(*r.find("/a%20b").unwrap().value, "/a%20b");
        assert!(r.find("/a%2520b").is_none());
    }

    #[test]
    fn conflicting_templates() {
        let mut r = Router::new();
        r.insert("/a/{x}", 1).unwrap();
        assert_eq!(
            r.insert("/a/{y}", 2).unwrap_err().to_string(),
            "endpoint path `/a/{y}` conflicts with `/a/{x}`: both match the same paths"
        );
        assert!(r.insert("/a/b", 3).is_ok());
        assert!(r.insert("/a/%62", 4).is_err(), "`%62` is `b`");
    }
}
