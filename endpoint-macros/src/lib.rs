//! Procedural macros of the [`endpoint`](https://docs.rs/endpoint) WebSocket framework:
//! `#[server_endpoint]`, `#[client_endpoint]` and the handler attributes `#[on_open]`,
//! `#[on_message]`, `#[on_error]`, `#[on_close]` (Jakarta's `@ServerEndpoint`, `@ClientEndpoint`,
//! `@OnOpen`, ...).
//!
//! Use them through the facade crate (`use endpoint::prelude::*;`), which re-exports them next to
//! the runtime the generated code refers to. The examples below are marked `ignore` because a
//! proc-macro crate's doctests cannot depend on the facade that re-exports it; the same code
//! compiles in the facade's docs and in `tests/ui/pass/`.
//!
//! # How it works
//!
//! `#[server_endpoint]` reads the annotated inherent `impl` block, builds a model of its handlers
//! (`model.rs`), checks the cross-cutting rules (`check.rs`), and generates an implementation of
//! the runtime's `Endpoint` trait (`expand.rs`) beside the user's impl, which is re-emitted with
//! only the macro's own attributes removed. Every mistake found is reported in the same build,
//! each on the token it is about.
//!
//! `#[client_endpoint]` is the same macro on the other side of the connection (`parse::Side`):
//! the same handlers, parameters, checks and generated hooks, without a path (the URL is given
//! when connecting), `#[path_param]` or `State<T>`; its `Endpoint::config()` starts from
//! `EndpointConfig::client()`, and it also implements the runtime's `ClientEndpoint` (where a
//! `configurator = T` goes, as a `ClientConfigurator`).
//!
//! Parameters are injected **by type, judged by the name** of the type's last path segment:
//! `Session`, `Handshake`, `State`, `EndpointError`, `CloseReason`, `String`, `str`, `Vec<u8>`,
//! `[u8]`, `Bytes`, `Pong`. A macro cannot resolve types, so a user type with one of these names
//! is taken for the framework's (rename it, or import it under another name, to use it as a
//! decoded payload). Any other type in an `#[on_message]` handler is the payload, decoded with
//! the runtime's `Decode` trait.
//!
//! Set `ENDPOINT_MACROS_DEBUG=1` while building to print the generated code to stderr.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod check;
mod ctxt;
mod expand;
mod model;
mod parse;
mod path;

use parse::HandlerKind;

/// Turns an inherent `impl` block into a WebSocket endpoint served at a URI template.
///
/// ```ignore
/// use endpoint::prelude::*;
///
/// #[derive(Default)]
/// struct Chat {
///     received: usize,
/// }
///
/// #[server_endpoint("/chat/{room}", subprotocols = ["v2.chat", "v1.chat"], max_message_size = 65536)]
/// impl Chat {
///     #[on_open]
///     async fn open(&mut self, session: &Session, #[path_param] room: String) {
///         session.join(&room);
///     }
///
///     #[on_message]
///     fn text(&mut self, text: &str) -> String {
///         self.received += 1;
///         format!("#{}: {text}", self.received) // sent back to the peer
///     }
///
///     #[on_error]
///     fn error(&mut self, error: &EndpointError) {
///         eprintln!("{error}");
///     }
///
///     #[on_close]
///     fn close(&mut self, reason: CloseReason) {}
/// }
/// ```
///
/// # Arguments
///
/// - the path, first: a level-1 URI template. It starts with `/`; a segment is either literal or a
///   whole `{name}` variable; no `?`, `#`, spaces, empty `//` segments, trailing `/` (except the
///   root `/`), or repeated names. The grammar is the `endpoint-path` crate's, which the router
///   also parses the path with: a path that compiles is a path that binds.
/// - `subprotocols = ["v2", "v1"]`: the subprotocols the endpoint speaks.
/// - `max_message_size = N`: the largest message accepted (exceeding it closes with 1009).
/// - `compression = true | false`: permessage-deflate (RFC 7692) for this endpoint. `true`
///   accepts a client's offer even when the server's `Limits::compression` is off (the default),
///   `false` declines it even when the server's is on; without the argument the server's
///   setting decides. Jakarta's `@ServerEndpoint` has no such element (Tomcat negotiates it for
///   the whole container).
/// - `crate = ::path::to::endpoint`: where the facade crate is, when it was renamed or
///   re-exported (the generated code refers to `<crate>::__private`).
///
/// # Handlers
///
/// Methods marked `#[on_open]`, `#[on_message]`, `#[on_error]` and `#[on_close]`, each at most
/// once (`#[on_message]` once per kind of message: text, binary, pong). They may be `fn` or
/// `async fn`, take `&mut self` (or `&self`), and take, in any order:
///
/// | handler | may take |
/// |---|---|
/// | all | `&Session`, `Session`, `State<T>`, `#[path_param] name: T` / `#[path_param("var")] x: T` (`T: FromStr`) |
/// | `#[on_open]` | `&Handshake` |
/// | `#[on_message]` | exactly one payload: `String`/`&str`, `Vec<u8>`/`Bytes`/`&[u8]`, `Pong`, or any `Decode` type (e.g. `Json<T>`) |
/// | `#[on_error]` | the error, `&EndpointError` or `EndpointError` (required) |
/// | `#[on_close]` | `CloseReason` |
///
/// `#[on_message(max_message_size = N)]` limits one handler's messages. A handler may return
/// anything implementing `IntoReply`: `()`, a sendable value (sent back), `Option<_>`, or
/// `Result<_, E>` (the `Err` goes to `#[on_error]`). A path parameter or state that cannot be
/// provided becomes an error for `#[on_error]` instead of a call; in `#[on_close]` the handler is
/// then skipped, since there is nobody left to report to.
///
/// # Errors
///
/// A compile error, on the offending token, for: a malformed path; the attribute anywhere but on a
/// non-generic inherent impl; two handlers of one kind; an `#[on_message]` handler with no payload
/// or two; an unknown parameter type; a parameter in the wrong handler; `#[path_param]` naming a
/// variable the path lacks; an `#[on_error]` handler without the error; unknown or repeated
/// arguments; a `compression` that is not `= true` or `= false`.
#[proc_macro_attribute]
pub fn server_endpoint(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::endpoint(parse::Side::Server, args.into(), input.into()).into()
}

/// Turns an inherent `impl` block into a WebSocket client endpoint (Jakarta's
/// `@ClientEndpoint`): the endpoint of a connection this program opens to a server.
///
/// ```ignore
/// use endpoint::prelude::*;
///
/// struct Ticker {
///     symbol: String,
///     seen: usize,
/// }
///
/// #[client_endpoint(subprotocols = ["ticks.v1"], max_message_size = 65536)]
/// impl Ticker {
///     #[on_open]
///     async fn open(&mut self, session: &Session, handshake: &Handshake) {
///         // `handshake` shows the server's `101` response headers.
///         session.send(format!("subscribe {}", self.symbol)).await.ok();
///     }
///
///     #[on_message]
///     fn tick(&mut self, Json(price): Json<f64>) {
///         self.seen += 1;
///         println!("{}: {price}", self.symbol);
///     }
///
///     #[on_close]
///     fn close(&mut self, reason: CloseReason) {}
/// }
///
/// assert!(<Ticker as endpoint::Endpoint>::config().is_client());
/// ```
///
/// The URL is not an argument: it is given when connecting
/// (`Client::new().connect("ws://host/ticks", Ticker { .. })`, Java's
/// `container.connectToServer(endpoint, URI)`), so the endpoint value is built by the caller
/// and needs no `Default`.
///
/// # Arguments
///
/// All optional, as for [`macro@server_endpoint`] and meaning the same on this side:
///
/// - `subprotocols = ["v2", "v1"]`: the subprotocols offered, in order of preference.
/// - `max_message_size = N`: the largest message accepted from the server (exceeding it closes
///   with 1009).
/// - `compression = true | false`: whether to offer permessage-deflate (RFC 7692).
/// - `unhandled = ignore | close`: what a message of a kind without a handler does.
/// - `configurator = T`: the handshake hooks, a `T: ClientConfigurator + Default`
///   (`endpoint::client::ClientConfigurator`: `before_request` to add headers,
///   `after_response` to read the `101`'s).
/// - `crate = ::path::to::endpoint`: where the facade crate is.
///
/// # Handlers
///
/// As for [`macro@server_endpoint`]: `#[on_open]` (which may take `&Handshake`, the server's
/// answer), `#[on_message]` (payloads, `Json<T>`, any `Decode` type, parts and streams,
/// `max_message_size = N`), `#[on_error]`, `#[on_close]`, each taking `&Session` or `Session`
/// besides; what a handler returns is sent back to the server.
///
/// # Errors
///
/// Every compile error of [`macro@server_endpoint`] but the path's, and, each on its token:
/// a path (`#[client_endpoint("/chat")]`, or Java's `value = "/chat"`): the URL is given when
/// connecting; a `#[path_param]` parameter: a client endpoint has no path parameters; a
/// `State<T>` parameter: that is the server's shared state, a client endpoint keeps what it needs
/// in its fields; `slow_consumer = ..`: a server's broadcast policy.
#[proc_macro_attribute]
pub fn client_endpoint(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::endpoint(parse::Side::Client, args.into(), input.into()).into()
}

/// Marks the method called once the WebSocket handshake has completed (Jakarta `@OnOpen`).
///
/// Only valid on a method of a `#[server_endpoint]` or `#[client_endpoint]` impl, which consumes
/// it; anywhere else it is a compile error. See [`macro@server_endpoint`] for the parameters it
/// may take.
///
/// ```ignore
/// #[on_open]
/// fn open(&mut self, session: &Session, handshake: &Handshake) {}
/// ```
#[proc_macro_attribute]
pub fn on_open(_args: TokenStream, input: TokenStream) -> TokenStream {
    expand::misplaced_handler(HandlerKind::Open, input.into()).into()
}

/// Marks a method called for each message of one kind (Jakarta `@OnMessage`); the kind is given
/// by its payload parameter. Takes an optional `max_message_size = N`.
///
/// Only valid on a method of a `#[server_endpoint]` or `#[client_endpoint]` impl, which consumes
/// it; anywhere else it is a compile error. See [`macro@server_endpoint`] for the parameters it
/// may take.
///
/// ```ignore
/// #[on_message(max_message_size = 1024)]
/// fn binary(&mut self, data: Vec<u8>) -> Vec<u8> { data }
/// ```
#[proc_macro_attribute]
pub fn on_message(_args: TokenStream, input: TokenStream) -> TokenStream {
    expand::misplaced_handler(HandlerKind::Message, input.into()).into()
}

/// Marks the method called when a handler fails or the connection breaks (Jakarta `@OnError`).
/// It must take the error, as `&EndpointError` or `EndpointError`.
///
/// Only valid on a method of a `#[server_endpoint]` or `#[client_endpoint]` impl, which consumes
/// it; anywhere else it is a compile error.
///
/// ```ignore
/// #[on_error]
/// fn error(&mut self, session: &Session, error: &EndpointError) {}
/// ```
#[proc_macro_attribute]
pub fn on_error(_args: TokenStream, input: TokenStream) -> TokenStream {
    expand::misplaced_handler(HandlerKind::Error, input.into()).into()
}

/// Marks the method called exactly once, last, when the session ends (Jakarta `@OnClose`).
///
/// Only valid on a method of a `#[server_endpoint]` or `#[client_endpoint]` impl, which consumes
/// it; anywhere else it is a compile error.
///
/// ```ignore
/// #[on_close]
/// fn close(&mut self, reason: CloseReason) {}
/// ```
#[proc_macro_attribute]
pub fn on_close(_args: TokenStream, input: TokenStream) -> TokenStream {
    expand::misplaced_handler(HandlerKind::Close, input.into()).into()
}
