//! [`State<T>`]: server-wide shared state injected into handlers.
//!
//! Register values with [`Server::state`](crate::Server::state); a handler taking `State<T>`
//! receives a cheap clone of the `Arc`. This replaces the Java habit of `static` fields and the
//! Spring pain of beans that are not injected into `@ServerEndpoint` instances.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Shared state of type `T`, registered on the server and injected by type.
///
/// ```
/// use endpoint_runtime::{Server, State};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(Default)]
/// struct Counter { hits: AtomicUsize }
///
/// let server = Server::new().state(Counter::default());
/// let counter: State<Counter> = server.get_state::<Counter>().unwrap();
/// counter.hits.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.hits.load(Ordering::Relaxed), 1);
/// ```
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        State(self.0.clone())
    }
}

impl<T: ?Sized> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&&*self.0).finish()
    }
}

/// The server's map of registered states, keyed by type.
#[derive(Default, Clone)]
pub(crate) struct StateMap {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.map.insert(TypeId::of::<T>(), value);
    }

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|a| a.clone().downcast::<T>().ok())
            .map(State)
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("len", &self.map.len())
            .finish()
    }
}
