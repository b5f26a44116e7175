//! The endpoint path: a level-1 URI template such as `/chat/{room}`.
//!
//! Checked at compile time so that a typo is a build error, not a route that never matches. The
//! grammar and its error messages are `endpoint-path`'s, the same crate the runtime's router
//! parses the path with at `bind()`: a path that compiles is a path that binds.

use std::fmt;

pub(crate) use endpoint_path::PathTemplate;

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

    #[test]
    fn variable_list() {
        let t = PathTemplate::parse("/chat/{room}/{user}").unwrap();
        assert_eq!(VariableList(&t).to_string(), "`room`, `user`");
        assert_eq!(
            VariableList(&PathTemplate::parse("/x").unwrap()).to_string(),
            "none"
        );
    }

    /// The macro's message is the shared crate's, whole: `invalid endpoint path: ...`.
    #[test]
    fn malformed_paths_are_refused_with_the_shared_message() {
        let err = PathTemplate::parse("/chat/").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid endpoint path: `/chat/` ends with `/`"));
    }
}
