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

/// A `State<T>` an endpoint's handlers take, declared by the endpoint
/// ([`Endpoint::required_state`](crate::Endpoint::required_state); `#[server_endpoint]`
/// declares every `State<T>` parameter) so that [`Server::bind`](crate::Server::bind) refuses a
/// server where it was never registered, naming the type and the endpoint, instead of every
/// message failing at run time.
///
/// ```
/// use endpoint_runtime::state::RequiredState;
/// # struct Db;
/// let need = RequiredState::of::<Db>("#[on_message] fn text");
/// assert!(need.type_name().ends_with("Db"));
/// assert_eq!(need.taken_by(), "#[on_message] fn text");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredState {
    id: TypeId,
    type_name: &'static str,
    taken_by: &'static str,
}

impl RequiredState {
    /// `State<T>`, taken by `taken_by` (a hook or handler, for the error message).
    pub fn of<T: Send + Sync + 'static>(taken_by: &'static str) -> Self {
        RequiredState {
            id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            taken_by,
        }
    }

    /// The state's type, as `std::any::type_name` spells it.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Which hook or handler takes it.
    pub fn taken_by(&self) -> &'static str {
        self.taken_by
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

    /// Whether a value of the required type was registered.
    pub(crate) fn has(&self, need: &RequiredState) -> bool {
        self.map.contains_key(&need.id)
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
