//! Small helpers shared by several modules.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

// Locks ignoring poisoning: every critical section of the runtime leaves its data consistent,
// and a handler's panic must not turn into a panic of every later lock.

/// Locks a mutex, ignoring poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read-locks an `RwLock`, ignoring poisoning.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Write-locks an `RwLock`, ignoring poisoning.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// The largest `i <= max` that is a char boundary of `s` (`str::floor_char_boundary`, which
/// is not stable yet): where to cut a string to at most `max` bytes.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The first value of `name` in a query string, percent-decoded (`+` as space).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Every value of `name` in a query string, percent-decoded, in order.
pub(crate) fn query_params(query: &str, name: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// At most `max` bytes of `s` (on a char boundary), with `...` when cut.
pub(crate) fn ellipsize(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}...", &s[..floor_char_boundary(s, max)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_decodes() {
        assert_eq!(
            query_param("name=J%C3%BCrgen+K&x=1", "name").as_deref(),
            Some("Jürgen K")
        );
        assert_eq!(query_param("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(query_param("a=1", "b"), None);
        assert_eq!(query_params("a=1&b=0&a=2", "a"), vec!["1", "2"]);
    }

    #[test]
    fn ellipsize_respects_char_boundaries() {
        assert_eq!(ellipsize("héllo", 2), "h...");
        assert_eq!(ellipsize("abc", 5), "abc");
        assert_eq!(floor_char_boundary("héllo", 2), 1);
        assert_eq!(floor_char_boundary("héllo", 3), 3);
        assert_eq!(floor_char_boundary("abc", 9), 3);
    }
}
