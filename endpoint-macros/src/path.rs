//! The endpoint path: a level-1 URI template such as `/chat/{room}`.
//!
//! Checked at compile time so that a typo is a build error, not a route that never matches.

use std::fmt;

/// A parsed, valid URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    raw: String,
    segments: Vec<Segment>,
}

/// One `/`-separated segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Matched exactly.
    Literal(String),
    /// `{name}`: matches any one non-empty segment.
    Variable(String),
}

impl PathTemplate {
    /// Parses and validates a template; the error says what is wrong, in a sentence that fits
    /// after "invalid endpoint path: ".
    pub(crate) fn parse(path: &str) -> Result<PathTemplate, String> {
        if path.is_empty() {
            return Err("the path is empty; it must start with `/`, e.g. \"/chat\"".into());
        }
        if !path.starts_with('/') {
            return Err(format!("`{path}` must start with `/`, e.g. \"/{path}\""));
        }
        if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#')) {
            let what = if c == '?' { "a query" } else { "a fragment" };
            return Err(format!(
                "`{path}` contains {what} (`{c}`); an endpoint path is only the path part of the \
                 URI (read the query with `Session::query_param`)"
            ));
        }
        if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "`{path}` contains {c:?}; percent-encode it (e.g. a space is `%20`)"
            ));
        }
        let mut segments = Vec::new();
        let mut raw: Vec<&str> = path[1..].split('/').collect();
        // "/" is the root; a trailing "/" is kept literally (as an empty last segment).
        if raw.len() == 1 && raw[0].is_empty() {
            raw.clear();
        }
        let last = raw.len().saturating_sub(1);
        for (i, seg) in raw.into_iter().enumerate() {
            if seg.is_empty() && i != last {
                return Err(format!("`{path}` has an empty segment (`//`)"));
            }
            segments.push(Self::segment(path, seg)?);
        }
        let template = PathTemplate {
            raw: path.to_owned(),
            segments,
        };
        let mut seen: Vec<&str> = Vec::new();
        for var in template.variables() {
            if seen.contains(&var) {
                return Err(format!(
                    "`{path}` uses the variable `{{{var}}}` twice; each variable needs its own name"
                ));
            }
            seen.push(var);
        }
        Ok(template)
    }

    fn segment(path: &str, seg: &str) -> Result<Segment, String> {
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if inner.is_empty() {
                return Err(format!(
                    "`{path}` has an empty variable `{{}}`; name it, e.g. `{{id}}`"
                ));
            }
            if inner.contains(['{', '}']) {
                return Err(format!("`{path}` has nested braces in `{seg}`"));
            }
            if !is_identifier(inner) {
                return Err(format!(
                    "`{{{inner}}}` is not a valid variable name: use letters, digits and `_`, \
                     not starting with a digit"
                ));
            }
            return Ok(Segment::Variable(inner.to_owned()));
        }
        if seg.contains(['{', '}']) {
            return Err(format!(
                "the segment `{seg}` mixes text and braces; a variable must fill a whole segment, \
                 e.g. \"/chat/{{room}}\""
            ));
        }
        Ok(Segment::Literal(seg.to_owned()))
    }

    /// The variable names, in template order.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(v) => Some(v.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Whether `name` is one of the template's variables.
    pub(crate) fn has_variable(&self, name: &str) -> bool {
        self.variables().any(|v| v == name)
    }

    /// The segments, in order.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lists variables for error messages: "`room`, `user`" or "none".
pub(crate) struct VariableList<'a>(pub(crate) &'a PathTemplate);

impl fmt::Display for VariableList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (i, v) in self.0.variables().enumerate() {
            any = true;
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{v}`")?;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
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

    #[test]
    fn valid_templates() {
        assert_eq!(PathTemplate::parse("/").unwrap().segments(), &[]);
        assert_eq!(
            PathTemplate::parse("/echo.do").unwrap().segments(),
            &[lit("echo.do")]
        );
        assert_eq!(
            PathTemplate::parse("/chat/{room}/u/{_user2}")
                .unwrap()
                .segments(),
            &[lit("chat"), var("room"), lit("u"), var("_user2")]
        );
        assert_eq!(
            PathTemplate::parse("/a/").unwrap().segments(),
            &[lit("a"), lit("")]
        );
        let t = PathTemplate::parse("/chat/{room}/{user}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["room", "user"]);
        assert!(t.has_variable("room"));
        assert!(!t.has_variable("chat"));
        assert_eq!(VariableList(&t).to_string(), "`room`, `user`");
        assert_eq!(
            VariableList(&PathTemplate::parse("/x").unwrap()).to_string(),
            "none"
        );
    }

    #[track_caller]
    fn rejects(path: &str, needle: &str) {
        let err = PathTemplate::parse(path).unwrap_err();
        assert!(
            err.contains(needle),
            "{path:?}: {err:?} does not mention {needle:?}"
        );
    }

    #[test]
    fn malformed_templates() {
        rejects("", "empty");
        rejects("chat", "must start with `/`");
        rejects("/chat?x=1", "query");
        rejects("/chat#top", "fragment");
        rejects("/a b", "percent-encode");
        rejects("/a//b", "empty segment");
        rejects("/chat/{}", "empty variable");
        rejects("/chat/{1room}", "not a valid variable name");
        rejects("/chat/{ro-om}", "not a valid variable name");
        rejects("/chat/x{room}", "mixes text and braces");
        rejects("/chat/{room", "mixes text and braces");
        rejects("/chat/room}", "mixes text and braces");
        rejects("/chat/{{room}}", "nested braces");
        rejects("/{a}/{a}", "twice");
    }
}
