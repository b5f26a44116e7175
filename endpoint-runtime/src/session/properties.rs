//! [`Properties`]: typed per-connection values.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use crate::util::{read, write};

/// A typed per-connection map, like Jakarta's `Session.getUserProperties()` but keyed by type.
///
/// ```
/// # use endpoint_runtime::Properties;
/// #[derive(Clone, Debug, PartialEq)]
/// struct User(String);
///
/// let props = Properties::default();
/// props.insert(User("ada".into()));
/// assert_eq!(props.get::<User>(), Some(User("ada".into())));
/// assert!(props.remove::<User>().is_some());
/// assert!(!props.contains::<User>());
/// ```
#[derive(Default)]
pub struct Properties {
    /// Created on the first insert: most sessions never store anything, and an empty map
    /// inline would cost every one of them its full size.
    map: RwLock<Option<Box<PropertyMap>>>,
}

type PropertyMap = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

impl Properties {
    /// Stores a value, returning the previous value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        let mut map = write(&self.map);
        map.get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with(|v: &T| v.clone())
    }

    /// Runs `f` on the stored value of type `T` without cloning it.
    pub fn with<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = read(&self.map);
        map.as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .map(f)
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let mut map = write(&self.map);
        map.as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        let map = read(&self.map);
        map.as_ref()
            .is_some_and(|m| m.contains_key(&TypeId::of::<T>()))
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .map
            .read()
            .map(|m| m.as_ref().map_or(0, |m| m.len()))
            .unwrap_or(0);
        f.debug_struct("Properties").field("len", &n).finish()
    }
}
