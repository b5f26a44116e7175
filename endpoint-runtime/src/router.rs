//! URI-template routing (level-1 templates, as `@ServerEndpoint` paths).
//!
//! * A template is a path starting with `/`, made of literal segments and variables `{name}`;
//!   a variable fills one whole, non-empty segment.
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

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(String),
}

/// A parsed level-1 URI template such as `/chat/{room}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    raw: String,
    segments: Vec<Segment>,
}

/// Why a template is malformed, or why two templates cannot be registered together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl UriTemplate {
    /// Parses and validates a template.
    ///
    /// # Errors
    /// A [`TemplateError`] when the path does not start with `/`, has a `?` or `#`, an empty
    /// segment (other than the root `/`), a variable that does not fill its whole segment, an
    /// invalid or duplicate variable name.
    ///
    /// ```
    /// # use endpoint_runtime::router::UriTemplate;
    /// assert!(UriTemplate::parse("/a/{b}").is_ok());
    /// assert!(UriTemplate::parse("/a/x{b}").is_err());
    /// assert!(UriTemplate::parse("a").is_err());
    /// ```
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let err = |m: String| {
            Err(TemplateError(format!(
                "invalid path template `{template}`: {m}"
            )))
        };
        let Some(rest) = template.strip_prefix('/') else {
            return err("it must start with `/`".into());
        };
        if template.contains(['?', '#']) {
            return err("it must not contain `?` or `#`".into());
        }
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for seg in rest.split('/') {
                if seg.is_empty() {
                    return err("empty segment (`//` or a trailing `/`)".into());
                }
                if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if !is_var_name(inner) {
                        return err(format!(
                            "`{{{inner}}}`: a variable name is a letter or `_` followed by letters, digits or `_`"
                        ));
                    }
                    if segments
                        .iter()
                        .any(|s| matches!(s, Segment::Var(v) if v == inner))
                    {
                        return err(format!("variable `{inner}` appears twice"));
                    }
                    segments.push(Segment::Var(inner.to_owned()));
                } else if seg.contains(['{', '}']) {
                    return err(format!(
                        "segment `{seg}`: a variable must fill a whole segment, like `/{{name}}`"
                    ));
                } else {
                    // A literal that does not decode could never equal a (decoded) request
                    // segment: refuse it rather than register a route that never matches.
                    let Some(literal) = decode(seg) else {
                        return err(format!(
                            "segment `{seg}`: its percent-encoding is not valid UTF-8"
                        ));
                    };
                    segments.push(Segment::Literal(literal));
                }
            }
        }
        Ok(UriTemplate {
            raw: template.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches a request path (no query), returning the percent-decoded variables.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        let mut n = 0;
        if !rest.is_empty() {
            for seg in rest.split('/') {
                let tpl = self.segments.get(n)?;
                n += 1;
                let value = decode(seg)?;
                match tpl {
                    Segment::Literal(lit) => {
                        if *lit != value {
                            return None;
                        }
                    }
                    Segment::Var(name) => {
                        if value.is_empty() {
                            return None;
                        }
                        params.push((name.clone(), value));
                    }
                }
            }
        }
        (n == self.segments.len()).then_some(params)
    }

    /// For precedence: literal (true) or variable (false) per segment.
    fn shape(&self) -> impl Iterator<Item = bool> + '_ {
        self.segments
            .iter()
            .map(|s| matches!(s, Segment::Literal(_)))
    }

    /// Whether both templates match exactly the same paths.
    fn equivalent(&self, other: &UriTemplate) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Var(_), Segment::Var(_)) => true,
                    _ => false,
                })
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn decode(seg: &str) -> Option<String> {
    if !seg.contains('%') {
        return Some(seg.to_owned());
    }
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
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
                "path template `{template}` conflicts with `{}`: both match the same paths",
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
            "/%eed ",
        ] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(UriTemplate::parse("/").is_ok());
    }

    #[test]
    fn conflicting_templates() {
        let mut r = Router::new();
        r.insert("/a/{x}", 1).unwrap();
        assert!(r.insert("/a/{y}", 2).is_err());
        assert!(r.insert("/a/b", 3).is_ok());
    }
}
