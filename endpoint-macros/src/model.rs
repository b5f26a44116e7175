//! The validated model of an endpoint: what each handler is and what each of its parameters
//! receives. Every node keeps the syntax it came from, for spans.
//!
//! Building the model also strips our attributes from the user's impl, so that the impl can be
//! re-emitted unchanged otherwise.

use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Type};

use crate::ctxt::Ctxt;
use crate::parse::{self, EndpointArgs, HandlerArgs, HandlerKind, Side};
use crate::path::{PathTemplate, VariableList};

/// An endpoint: the impl's self type, the attribute arguments and the handlers.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The type the impl is for.
    pub(crate) self_ty: Type,
    /// `#[server_endpoint(...)]` or `#[client_endpoint(...)]` arguments (`args.side` says which).
    pub(crate) args: EndpointArgs,
    /// The parsed path (`None` when missing or invalid: already reported; always `None` for a
    /// client endpoint).
    pub(crate) template: Option<PathTemplate>,
    /// Handlers in source order.
    pub(crate) handlers: Vec<Handler>,
}

/// One method carrying a handler attribute.
#[derive(Debug)]
pub(crate) struct Handler {
    /// Which attribute.
    pub(crate) kind: HandlerKind,
    /// The attribute itself (for spans).
    pub(crate) attr: syn::Attribute,
    /// The method name.
    pub(crate) ident: syn::Ident,
    /// The whole signature (for spans).
    pub(crate) sig: syn::Signature,
    /// `async fn`?
    pub(crate) is_async: bool,
    /// `#[on_message(max_message_size = N)]`.
    pub(crate) max_message_size: Option<syn::Expr>,
    /// Parameters after the receiver, in order.
    pub(crate) params: Vec<Param>,
}

/// One parameter of a handler and what the generated code passes for it.
#[derive(Debug)]
pub(crate) struct Param {
    /// The declared type (for `quote_spanned!`).
    pub(crate) ty: Type,
    /// What it receives.
    pub(crate) source: Source,
}

/// What the generated code passes for a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `&Session`.
    SessionRef,
    /// `Session` (a clone).
    Session,
    /// `&Handshake` (on_open only).
    Handshake,
    /// `State<T>`.
    State,
    /// `#[path_param]`: the variable name.
    PathParam(String),
    /// `&EndpointError` (on_error only).
    ErrorRef,
    /// `EndpointError` (on_error only).
    Error,
    /// `CloseReason` (on_close only).
    CloseReason,
    /// The message payload (on_message only).
    Payload(Payload),
    /// `bool` (on_message only): whether the part is the message's last; the handler takes
    /// messages in parts (Jakarta's `(String part, boolean last)`).
    Last,
}

/// The payload parameter of an `#[on_message]` handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// `&str`, borrowed from the message.
    Str,
    /// `&[u8]`, borrowed from the message.
    Slice,
    /// A type decoded with `Decode`; `kind` is known for the built-in types (`String`,
    /// `Vec<u8>`, `Bytes`, `Pong`) and `None` for the others (known only to the type checker).
    Decoded(Option<KnownKind>),
    /// `TextStream` or `BinaryStream`: the message read as it arrives.
    Stream(KnownKind),
}

/// How a message handler receives its messages (the runtime's `MessageMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Whole, to `on_message`.
    Whole,
    /// In parts with a `last: bool`, to `on_part`.
    Parts,
    /// As a stream, to `on_stream`.
    Stream,
}

/// A message kind the macro can tell from the type's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownKind {
    /// Text frames.
    Text,
    /// Binary frames.
    Binary,
    /// Pong frames.
    Pong,
}

impl KnownKind {
    /// `"text"`, `"binary"`, `"pong"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KnownKind::Text => "text",
            KnownKind::Binary => "binary",
            KnownKind::Pong => "pong",
        }
    }
}

impl Payload {
    /// The kind of message, when the macro can tell.
    pub(crate) fn known_kind(&self) -> Option<KnownKind> {
        match self {
            Payload::Str => Some(KnownKind::Text),
            Payload::Slice => Some(KnownKind::Binary),
            Payload::Decoded(kind) => *kind,
            Payload::Stream(kind) => Some(*kind),
        }
    }
}

impl Handler {
    /// The payload parameter of an `#[on_message]` handler, if any.
    pub(crate) fn payload(&self) -> Option<(&Param, &Payload)> {
        self.params.iter().find_map(|p| match &p.source {
            Source::Payload(payload) => Some((p, payload)),
            _ => None,
        })
    }

    /// How this message handler receives its messages.
    pub(crate) fn mode(&self) -> Mode {
        if self.params.iter().any(|p| p.source == Source::Last) {
            Mode::Parts
        } else if matches!(self.payload(), Some((_, Payload::Stream(_)))) {
            Mode::Stream
        } else {
            Mode::Whole
        }
    }
}

/// What a type looks like, judged by the name of its last path segment (a macro cannot resolve
/// types: a user type named `Session` is taken for ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    SessionRef,
    Session,
    HandshakeRef,
    Handshake,
    State,
    ErrorRef,
    Error,
    CloseReason,
    CloseReasonRef,
    Str,
    Slice,
    String,
    VecU8,
    Bytes,
    Pong,
    Bool,
    TextStream,
    BinaryStream,
    /// Any other type taken by value.
    Other,
    /// Any other reference.
    OtherRef,
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn is_u8(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "u8" && s.arguments.is_none())
}

fn shape(ty: &Type) -> Shape {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Slice(s) if is_u8(&s.elem) => Shape::Slice,
            elem => match last_segment(elem).map(|s| s.ident.to_string()).as_deref() {
                Some("str") => Shape::Str,
                Some("Session") => Shape::SessionRef,
                Some("Handshake") => Shape::HandshakeRef,
                Some("EndpointError") => Shape::ErrorRef,
                Some("CloseReason") => Shape::CloseReasonRef,
                _ => Shape::OtherRef,
            },
        },
        Type::Reference(_) => Shape::OtherRef,
        Type::Group(g) => shape(&g.elem),
        Type::Paren(p) => shape(&p.elem),
        _ => {
            let Some(seg) = last_segment(ty) else {
                return Shape::Other;
            };
            match seg.ident.to_string().as_str() {
                "Session" => Shape::Session,
                "Handshake" => Shape::Handshake,
                "State" => Shape::State,
                "EndpointError" => Shape::Error,
                "CloseReason" => Shape::CloseReason,
                "String" => Shape::String,
                "Bytes" => Shape::Bytes,
                "Pong" => Shape::Pong,
                "bool" if seg.arguments.is_none() => Shape::Bool,
                "TextStream" => Shape::TextStream,
                "BinaryStream" => Shape::BinaryStream,
                "Vec" => match &seg.arguments {
                    syn::PathArguments::AngleBracketed(args)
                        if matches!(args.args.first(),
                            Some(syn::GenericArgument::Type(t)) if is_u8(t)) =>
                    {
                        Shape::VecU8
                    }
                    _ => Shape::Other,
                },
                _ => Shape::Other,
            }
        }
    }
}

/// What a handler of `kind` may take, for error messages.
fn allowed(side: Side, kind: HandlerKind) -> &'static str {
    if side == Side::Client {
        return match kind {
            HandlerKind::Open => "`&Session`, `Session`, or `&Handshake`",
            HandlerKind::Message => {
                "one payload (`String`/`&str`, `Vec<u8>`/`Bytes`/`&[u8]`, `Pong`, `TextStream`/\
                 `BinaryStream`, or a type implementing `Decode`), `last: bool` for a message in \
                 parts, `&Session`, or `Session`"
            }
            HandlerKind::Error => "`&EndpointError` or `EndpointError`, `&Session`, or `Session`",
            HandlerKind::Close => "`CloseReason`, `&Session`, or `Session`",
        };
    }
    match kind {
        HandlerKind::Open => {
            "`&Session`, `Session`, `&Handshake`, `State<T>`, or a `#[path_param]` value"
        }
        HandlerKind::Message => {
            "one payload (`String`/`&str`, `Vec<u8>`/`Bytes`/`&[u8]`, `Pong`, `TextStream`/\
             `BinaryStream`, or a type implementing `Decode`), `last: bool` for a message in \
             parts, `&Session`, `Session`, `State<T>`, or a `#[path_param]` value"
        }
        HandlerKind::Error => {
            "`&EndpointError` or `EndpointError`, `&Session`, `Session`, `State<T>`, or a \
             `#[path_param]` value"
        }
        HandlerKind::Close => {
            "`CloseReason`, `&Session`, `Session`, `State<T>`, or a `#[path_param]` value"
        }
    }
}

/// What the other parameters of a message handler may be, beside its one payload.
pub(crate) fn besides_payload(side: Side) -> &'static str {
    match side {
        Side::Server => "`&Session`, `Session`, `State<T>`, or a `#[path_param]` value",
        Side::Client => "`&Session` or `Session`",
    }
}

/// A `#[path_param]` in a client endpoint.
const CLIENT_PATH_PARAM: &str = "a client endpoint has no path parameters: the URL is given \
     whole when connecting (`Client::new().connect(url, endpoint)`); put what the handlers need \
     in the endpoint's fields when you create it";

/// A `State<T>` parameter in a client endpoint.
const CLIENT_STATE: &str = "`State<T>` is the server's shared state; a client endpoint keeps \
     what it needs in its own fields (an `Arc<T>` field shares it between connections)";

/// The handler attribute a handler-specific parameter belongs to.
fn only_in(shape: Shape) -> Option<(HandlerKind, &'static str)> {
    match shape {
        Shape::HandshakeRef | Shape::Handshake => Some((HandlerKind::Open, "`&Handshake`")),
        Shape::ErrorRef | Shape::Error => Some((HandlerKind::Error, "the error")),
        Shape::CloseReason | Shape::CloseReasonRef => Some((HandlerKind::Close, "`CloseReason`")),
        _ => None,
    }
}

impl Endpoint {
    /// Builds the model from the user's impl, stripping our attributes from it as it goes.
    /// Problems are recorded in `cx`; the returned model holds whatever was understood.
    pub(crate) fn from_impl(cx: &Ctxt, args: EndpointArgs, item: &mut ItemImpl) -> Endpoint {
        let side = args.side;
        let template = args
            .path
            .as_ref()
            .and_then(|lit| match PathTemplate::parse(&lit.value()) {
                Ok(t) => Some(t),
                Err(err) => {
                    // "invalid endpoint path: ..." (endpoint-path's message, as at bind()).
                    cx.error_spanned_by(lit, err);
                    None
                }
            });
        let mut handlers = Vec::new();
        for impl_item in &mut item.items {
            let ImplItem::Fn(method) = impl_item else {
                continue;
            };
            if let Some(handler) = Handler::from_method(cx, side, template.as_ref(), method) {
                handlers.push(handler);
            }
        }
        Endpoint {
            self_ty: (*item.self_ty).clone(),
            args,
            template,
            handlers,
        }
    }
}

impl Handler {
    /// Strips our attributes from `method`; returns the handler if it carries one.
    fn from_method(
        cx: &Ctxt,
        side: Side,
        template: Option<&PathTemplate>,
        method: &mut ImplItemFn,
    ) -> Option<Handler> {
        let mut found: Option<(HandlerKind, &syn::Attribute)> = None;
        let mut handler_args = HandlerArgs::default();
        let mut ours = Vec::new();
        let mut kept = Vec::new();
        for attr in std::mem::take(&mut method.attrs) {
            if HandlerKind::of(&attr).is_some() {
                ours.push(attr);
            } else {
                kept.push(attr);
            }
        }
        method.attrs = kept;
        for attr in &ours {
            let kind = HandlerKind::of(attr).expect("filtered above");
            if let Some((first, _)) = found {
                cx.error_spanned_by(
                    attr,
                    format!(
                        "`{}` is already `#[{}]`; a method can be only one handler",
                        method.sig.ident,
                        first.name()
                    ),
                );
                continue;
            }
            handler_args = HandlerArgs::parse(cx, kind, attr);
            found = Some((kind, attr));
        }

        // Strip `#[path_param]` from every method, handler or not (an error for non-handlers).
        let mut path_params = Vec::new();
        for input in &mut method.sig.inputs {
            let FnArg::Typed(pat_type) = input else {
                continue;
            };
            let (pp, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut pat_type.attrs)
                .into_iter()
                .partition(parse::is_path_param);
            pat_type.attrs = rest;
            path_params.push(pp);
        }

        let Some((kind, attr)) = found else {
            if let Some(attr) = path_params.iter().flatten().next() {
                cx.error_spanned_by(
                    attr,
                    match side {
                        Side::Server => {
                            "`#[path_param]` is only meaningful on a parameter of an `#[on_open]`, \
                             `#[on_message]`, `#[on_error]` or `#[on_close]` handler"
                        }
                        Side::Client => CLIENT_PATH_PARAM,
                    },
                );
            }
            return None;
        };
        let sig = &method.sig;
        let name = kind.name();

        // Receiver.
        match sig.inputs.first() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.colon_token.is_none() => {}
            Some(FnArg::Receiver(r)) => cx.error_spanned_by(
                r,
                format!(
                    "`#[{name}]` handlers take `&mut self` or `&self`, not `{}`",
                    quote::ToTokens::to_token_stream(r)
                ),
            ),
            _ => cx.error_spanned_by(
                &sig.ident,
                format!(
                    "`#[{name}]` handler `{}` must take `&mut self` (or `&self`): handlers are \
                     methods called on the connection's endpoint value",
                    sig.ident
                ),
            ),
        }
        if let Some(unsafety) = &sig.unsafety {
            cx.error_spanned_by(
                unsafety,
                format!("`#[{name}]` handlers cannot be `unsafe fn`"),
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                format!("`#[{name}]` handlers cannot be generic: the runtime calls them with concrete types"),
            );
        }
        if let Some(variadic) = &sig.variadic {
            cx.error_spanned_by(variadic, "handlers cannot be variadic");
        }

        let mut params = Vec::new();
        let typed = sig.inputs.iter().filter_map(|i| match i {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        });
        for (pat_type, pp_attrs) in typed.zip(path_params) {
            let ty = (*pat_type.ty).clone();
            if let (Some(pp), Side::Client) = (pp_attrs.first(), side) {
                // The attribute and the parameter it is on (already stripped of it).
                cx.error_spanned_by(quote::quote!(#pp #pat_type), CLIENT_PATH_PARAM);
                continue;
            }
            if let Some(pp) = pp_attrs.first() {
                for extra in &pp_attrs[1..] {
                    cx.error_spanned_by(extra, "duplicate `#[path_param]`");
                }
                let (var, span) = match parse::path_param_name(cx, pp) {
                    Some(named) => named,
                    None => match &*pat_type.pat {
                        syn::Pat::Ident(pi) => (
                            syn::ext::IdentExt::unraw(&pi.ident).to_string(),
                            pi.ident.span(),
                        ),
                        other => {
                            if matches!(pp.meta, syn::Meta::Path(_)) {
                                cx.error_spanned_by(
                                    other,
                                    "name the path variable for this pattern: \
                                     #[path_param(\"room\")]",
                                );
                            }
                            continue;
                        }
                    },
                };
                if let Some(template) = template {
                    if !template.has_variable(&var) {
                        cx.error_at(
                            span,
                            format!(
                                "the path `{}` has no variable `{var}`; its variables: {}",
                                endpoint_path_string(template),
                                VariableList(template)
                            ),
                        );
                    }
                }
                if matches!(ty, Type::Reference(_)) {
                    cx.error_spanned_by(
                        &ty,
                        "a `#[path_param]` is parsed into an owned value (`String`, `u64`, any \
                         `FromStr` type), not a reference",
                    );
                }
                params.push(Param {
                    ty,
                    source: Source::PathParam(var),
                });
                continue;
            }
            let shape = shape(&ty);
            let source = match (shape, kind) {
                (Shape::SessionRef, _) => Source::SessionRef,
                (Shape::Session, _) => Source::Session,
                (Shape::State, _) if side == Side::Client => {
                    cx.error_spanned_by(&ty, CLIENT_STATE);
                    continue;
                }
                (Shape::State, _) => Source::State,
                (Shape::HandshakeRef, HandlerKind::Open) => Source::Handshake,
                (Shape::Handshake, HandlerKind::Open) => {
                    cx.error_spanned_by(&ty, "take the handshake by reference: `&Handshake`");
                    continue;
                }
                (Shape::ErrorRef, HandlerKind::Error) => Source::ErrorRef,
                (Shape::Error, HandlerKind::Error) => Source::Error,
                (Shape::CloseReason, HandlerKind::Close) => Source::CloseReason,
                (Shape::CloseReasonRef, HandlerKind::Close) => {
                    cx.error_spanned_by(&ty, "take the close reason by value: `CloseReason`");
                    continue;
                }
                (_, HandlerKind::Message) if only_in(shape).is_none() => {
                    let payload = match shape {
                        Shape::Str => Payload::Str,
                        Shape::Slice => Payload::Slice,
                        Shape::String => Payload::Decoded(Some(KnownKind::Text)),
                        Shape::VecU8 | Shape::Bytes => Payload::Decoded(Some(KnownKind::Binary)),
                        Shape::Pong => Payload::Decoded(Some(KnownKind::Pong)),
                        Shape::TextStream => Payload::Stream(KnownKind::Text),
                        Shape::BinaryStream => Payload::Stream(KnownKind::Binary),
                        Shape::Bool => {
                            params.push(Param {
                                ty,
                                source: Source::Last,
                            });
                            continue;
                        }
                        Shape::Other => Payload::Decoded(None),
                        _ => {
                            cx.error_spanned_by(
                                &ty,
                                format!(
                                    "`#[on_message]` cannot take this reference; it may take {}. \
                                     A decoded payload is taken by value",
                                    allowed(side, kind)
                                ),
                            );
                            continue;
                        }
                    };
                    Source::Payload(payload)
                }
                _ => {
                    let msg = match only_in(shape) {
                        Some((belongs, what)) => format!(
                            "{what} can only be taken by an `#[{}]` handler; `#[{name}]` may \
                             take {}",
                            belongs.name(),
                            allowed(side, kind)
                        ),
                        None => format!(
                            "`#[{name}]` cannot take this type; it may take {}{}",
                            allowed(side, kind),
                            if kind == HandlerKind::Message || side == Side::Client {
                                ""
                            } else {
                                ". Path variables need `#[path_param]`"
                            }
                        ),
                    };
                    cx.error_spanned_by(&ty, msg);
                    continue;
                }
            };
            params.push(Param { ty, source });
        }

        // A `bool` is `last` beside another payload; alone, it is the payload (a text parsed
        // as a `bool`, like any primitive).
        if kind == HandlerKind::Message
            && !params
                .iter()
                .any(|p| matches!(p.source, Source::Payload(_)))
        {
            if let Some(first) = params.iter_mut().find(|p| p.source == Source::Last) {
                first.source = Source::Payload(Payload::Decoded(None));
            }
        }

        Some(Handler {
            kind,
            attr: attr.clone(),
            ident: sig.ident.clone(),
            is_async: sig.asyncness.is_some(),
            max_message_size: handler_args.max_message_size,
            params,
            sig: sig.clone(),
        })
    }
}

fn endpoint_path_string(template: &PathTemplate) -> String {
    template.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn build(item: proc_macro2::TokenStream) -> (Option<Endpoint>, Vec<String>, ItemImpl) {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Server, quote!("/chat/{room}"));
        let mut item: ItemImpl = syn::parse2(item).unwrap();
        let endpoint = Endpoint::from_impl(&cx, args, &mut item);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (Some(endpoint), errors, item)
    }

    #[test]
    fn classifies_parameters() {
        let (endpoint, errors, stripped) = build(quote! {
            impl Chat {
                #[on_open]
                async fn open(&mut self, s: &Session, h: &endpoint::Handshake, #[path_param] room: String, st: State<Db>) {}
                #[on_message(max_message_size = 10)]
                fn text(&self, t: &str, s: Session) -> String { t.into() }
                #[on_message]
                fn bin(&mut self, b: &[u8]) {}
                #[on_message]
                fn v(&mut self, b: Vec<u8>) {}
                #[on_message]
                fn json(&mut self, j: Json<Point>) {}
                #[on_message]
                fn pong(&mut self, p: Pong) {}
                #[on_error]
                fn err(&mut self, e: &EndpointError, #[path_param("room")] r: u32) {}
                #[on_close]
                fn close(&mut self, reason: CloseReason) {}
                /// kept
                #[inline]
                fn helper(&self) {}
            }
        });
        assert!(errors.is_empty(), "{errors:#?}");
        let endpoint = endpoint.unwrap();
        let sources: Vec<Vec<Source>> = endpoint
            .handlers
            .iter()
            .map(|h| h.params.iter().map(|p| p.source.clone()).collect())
            .collect();
        use KnownKind::*;
        use Source::*;
        assert_eq!(
            sources,
            vec![
                vec![SessionRef, Handshake, PathParam("room".into()), State],
                vec![Payload(super::Payload::Str), Session],
                vec![Payload(super::Payload::Slice)],
                vec![Payload(super::Payload::Decoded(Some(Binary)))],
                vec![Payload(super::Payload::Decoded(None))],
                vec![Payload(super::Payload::Decoded(Some(Pong)))],
                vec![ErrorRef, PathParam("room".into())],
                vec![CloseReason],
            ]
        );
        assert!(endpoint.handlers[0].is_async);
        assert!(endpoint.handlers[1].max_message_size.is_some());
        // Our attributes are gone, the others stay.
        let printed = quote!(#stripped).to_string();
        assert!(!printed.contains("on_open") && !printed.contains("path_param"));
        assert!(printed.contains("inline") && printed.contains("kept"));
    }

    fn build_client(item: proc_macro2::TokenStream) -> (Endpoint, Vec<String>) {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Client, quote!());
        let mut item: ItemImpl = syn::parse2(item).unwrap();
        let endpoint = Endpoint::from_impl(&cx, args, &mut item);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (endpoint, errors)
    }

    #[test]
    fn client_parameters() {
        let (endpoint, errors) = build_client(quote! {
            impl Ticker {
                #[on_open]
                fn open(&mut self, s: &Session, h: &Handshake) {}
                #[on_message]
                fn text(&mut self, t: Json<Tick>, s: Session) {}
                #[on_close]
                fn close(&mut self, reason: CloseReason) {}
            }
        });
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(endpoint.template.is_none());
        use Source::*;
        let sources: Vec<Vec<Source>> = endpoint
            .handlers
            .iter()
            .map(|h| h.params.iter().map(|p| p.source.clone()).collect())
            .collect();
        assert_eq!(
            sources,
            vec![
                vec![SessionRef, Handshake],
                vec![Payload(super::Payload::Decoded(None)), Session],
                vec![CloseReason],
            ]
        );
    }

    #[test]
    fn client_refuses_path_params_and_state() {
        let (_, errors) = build_client(quote! {
            impl Ticker {
                #[on_open]
                fn open(&mut self, #[path_param] room: String, db: State<Db>, x: u32) {}
                fn helper(&self, #[path_param] room: String) {}
            }
        });
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("a client endpoint has no path parameters"));
        assert!(errors[1].starts_with("`State<T>` is the server's shared state"));
        assert_eq!(
            errors[2],
            "`#[on_open]` cannot take this type; it may take `&Session`, `Session`, or \
             `&Handshake`"
        );
        assert!(errors[3].starts_with("a client endpoint has no path parameters"));
    }

    #[test]
    fn rejects_misplaced_parameters() {
        let (_, errors, _) = build(quote! {
            impl Chat {
                #[on_open]
                fn open(&mut self, r: CloseReason, x: u32, #[path_param] user: String) {}
                #[on_close]
                fn close(reason: CloseReason) {}
                fn helper(&self, #[path_param] room: String) {}
            }
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("`CloseReason` can only be taken by an `#[on_close]` handler"));
        assert!(errors[1].contains("`#[on_open]` cannot take this type"));
        assert!(errors[2].contains("has no variable `user`; its variables: `room`"));
        assert!(errors[3].contains("must take `&mut self`"));
        assert!(errors[4].contains("only meaningful on a parameter"));
    }
}
