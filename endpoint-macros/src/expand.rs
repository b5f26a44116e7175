//! Code generation. Only ever sees a model that passed `check`.
//!
//! The generated shape (with `P` = `::endpoint::__private`, or `<crate>::__private` when the
//! attribute says `crate = <crate>`):
//!
//! ```text
//! impl Chat { /* the user's methods, minus our attributes */ }
//!
//! #[doc(hidden)]
//! const _: () = {
//!     // only when a decoded payload's kind is known to the type checker alone:
//!     const _: () = ::core::assert!(!<A as P::Decode>::KIND.same(<B as P::Decode>::KIND), "...");
//!
//!     #[automatically_derived]
//!     impl P::Endpoint for Chat {
//!         fn config() -> P::EndpointConfig { P::EndpointConfig::new("/chat/{room}")... }
//!         fn on_open<'a>(&'a mut self, __session: &'a P::Session, __handshake: &'a P::Handshake)
//!             -> impl Future<Output = P::HookResult> + Send + 'a
//!         {
//!             async move {
//!                 let __arg0: String = match P::path_param(__session, "room") { ... };
//!                 let __ret = Self::open(self, __session, __arg0).await;
//!                 P::IntoReply::into_reply(__ret)
//!             }
//!         }
//!         fn on_message<'a>(..., __message: P::Message) -> ... {
//!             async move {
//!                 let __kind = __message.kind();
//!                 if P::PayloadKind::Text.same(__kind) { /* size check, arguments, call */ }
//!                 if <Json<Point> as P::Decode>::KIND.same(__kind) { ... }
//!                 Err(P::EndpointError::Unsupported(__kind))
//!             }
//!         }
//!         // on_error, on_close likewise; hooks without a handler keep the trait default
//!         fn accepts(__kind: P::PayloadKind) -> bool { false || P::PayloadKind::Text.same(__kind) || ... }
//!     }
//! };
//! ```
//!
//! `#[client_endpoint(...)]` generates the same `impl P::Endpoint`, except that `config()`
//! starts from `P::EndpointConfig::client()` (no path) and `configurator()` is never generated;
//! beside it, in the same `const _`:
//!
//! ```text
//!     #[automatically_derived]
//!     impl P::ClientEndpoint for Ticker {
//!         // only with `configurator = C`:
//!         fn client_configurator() -> Option<Box<dyn P::ClientConfigurator>> {
//!             Some(Box::new(<C as Default>::default()))
//!         }
//!     }
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::ctxt::Ctxt;
use crate::model::{Endpoint, Handler, KnownKind, Mode, Param, Payload, Source};
use crate::parse::{self, EndpointArgs, HandlerKind, Side};

/// The whole `#[server_endpoint]` / `#[client_endpoint]` expansion: parse, build the model,
/// check, generate.
pub(crate) fn endpoint(side: Side, args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let attr = side.attr();
    let example = side.example();
    let args = EndpointArgs::parse(&cx, side, args);
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(err) => {
            cx.syn_error(err);
            return with_errors(cx, input);
        }
    };
    let mut item = match item {
        syn::Item::Impl(item) => item,
        other => {
            let the_struct = match side {
                Side::Server => "the struct itself only needs `#[derive(Default)]`",
                Side::Client => "the struct itself needs no attribute",
            };
            cx.error_spanned_by(
                item_name(&other),
                format!(
                    "#[{attr}] must be placed on an inherent impl block: \
                     `{example} impl MyEndpoint {{ ... }}`; {the_struct}"
                ),
            );
            return with_errors(cx, other.into_token_stream());
        }
    };
    if let Some((bang, trait_path, for_token)) = &item.trait_ {
        let traits = match side {
            Side::Server => "the `Endpoint` trait",
            Side::Client => "the `Endpoint` and `ClientEndpoint` traits",
        };
        cx.error_spanned_by(
            quote!(#bang #trait_path #for_token),
            format!(
                "#[{attr}] must be placed on an inherent impl block (`impl MyEndpoint {{ ... }}`), \
                 not on a trait implementation: the macro implements {traits} itself"
            ),
        );
        strip_all(&mut item);
        return with_errors(cx, item.into_token_stream());
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        let why = match side {
            Side::Server => "the runtime creates endpoints by type, so ",
            Side::Client => "",
        };
        cx.error_spanned_by(
            &item.generics,
            format!(
                "#[{attr}] does not support generic impls: {why}the endpoint must be a concrete \
                 `'static` type (wrap generic logic in a field, or write one impl per concrete \
                 type)"
            ),
        );
    }
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(
            unsafety,
            format!("#[{attr}] cannot be placed on an `unsafe impl`"),
        );
    }

    let endpoint = Endpoint::from_impl(&cx, args, &mut item);
    crate::check::check(&cx, &endpoint);
    if cx.has_errors() || (side == Side::Server && endpoint.template.is_none()) {
        return with_errors(cx, item.into_token_stream());
    }
    cx.check().expect("no errors were recorded");
    let generated = expand(&endpoint);
    let out = quote! {
        #item
        #generated
    };
    if std::env::var_os("ENDPOINT_MACROS_DEBUG").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!(
            "// #[{attr}] expansion for `{}`\n{}",
            endpoint.self_ty.to_token_stream(),
            pretty(&generated)
        );
    }
    out
}

/// Formats generated code with `rustfmt` when it is installed (debug output only), else prints
/// the raw tokens.
fn pretty(tokens: &TokenStream) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let raw = tokens.to_string();
    let formatted = (|| {
        let mut child = Command::new("rustfmt")
            .args(["--edition", "2021", "--emit", "stdout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(raw.as_bytes()).ok()?;
        let output = child.wait_with_output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).ok())
            .flatten()
    })();
    formatted.unwrap_or(raw)
}

/// The standalone `#[on_open]` (etc.): only valid inside a `#[server_endpoint]` or
/// `#[client_endpoint]` impl, which strips it before it can expand.
pub(crate) fn misplaced_handler(kind: HandlerKind, input: TokenStream) -> TokenStream {
    let msg = format!(
        "`#[{}]` must be used on a method inside an `impl` annotated with \
         `#[server_endpoint(...)]` or `#[client_endpoint]`",
        kind.name()
    );
    let err = syn::Error::new(Span::call_site(), msg).to_compile_error();
    quote!(#err #input)
}

/// The user's tokens (so that their items still exist and no follow-up errors appear) plus
/// every recorded error.
fn with_errors(cx: Ctxt, tokens: TokenStream) -> TokenStream {
    let errors = match cx.check() {
        Ok(()) => TokenStream::new(),
        Err(err) => err.to_compile_error(),
    };
    quote!(#tokens #errors)
}

/// Removes our attributes from every method of `item` (when it will not be expanded).
fn strip_all(item: &mut syn::ItemImpl) {
    for impl_item in &mut item.items {
        let syn::ImplItem::Fn(method) = impl_item else {
            continue;
        };
        method.attrs.retain(|a| HandlerKind::of(a).is_none());
        for input in &mut method.sig.inputs {
            if let syn::FnArg::Typed(t) = input {
                t.attrs.retain(|a| !parse::is_path_param(a));
            }
        }
    }
}

/// The tokens naming an item, for spans (`struct Chat`, `fn main`, ...).
fn item_name(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Struct(s) => {
            let (t, i) = (&s.struct_token, &s.ident);
            quote!(#t #i)
        }
        syn::Item::Enum(e) => {
            let (t, i) = (&e.enum_token, &e.ident);
            quote!(#t #i)
        }
        syn::Item::Fn(f) => {
            let (t, i) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#t #i)
        }
        syn::Item::Trait(tr) => {
            let (t, i) = (&tr.trait_token, &tr.ident);
            quote!(#t #i)
        }
        syn::Item::Mod(m) => {
            let (t, i) = (&m.mod_token, &m.ident);
            quote!(#t #i)
        }
        other => other.to_token_stream(),
    }
}

/// Generates the `Endpoint` implementation for a checked model (and, for a client endpoint, the
/// `ClientEndpoint` one).
pub(crate) fn expand(endpoint: &Endpoint) -> TokenStream {
    let krate = match &endpoint.args.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote!(::endpoint),
    };
    let p = quote!(#krate::__private);
    let self_ty = &endpoint.self_ty;

    let side = endpoint.args.side;
    let new_config = match side {
        Side::Server => {
            let path = endpoint.args.path.as_ref().expect("checked");
            quote!(#p::EndpointConfig::new(#path))
        }
        Side::Client => quote!(#p::EndpointConfig::client()),
    };
    let subprotocols = (!endpoint.args.subprotocols.is_empty()).then(|| {
        let protos = &endpoint.args.subprotocols;
        quote!(.subprotocols(&[#(#protos),*]))
    });
    let max_size = endpoint
        .args
        .max_message_size
        .as_ref()
        .map(|expr| quote_spanned!(expr.span()=> .max_message_size(#expr)));
    let compression = endpoint
        .args
        .compression
        .as_ref()
        .map(|enabled| quote_spanned!(enabled.span()=> .compression(#enabled)));

    let unhandled = endpoint.args.unhandled.as_ref().map(|word| {
        let variant = match word.to_string().as_str() {
            "ignore" => quote_spanned!(word.span()=> Ignore),
            _ => quote_spanned!(word.span()=> Close),
        };
        quote_spanned!(word.span()=> .unhandled(#p::Unhandled::#variant))
    });
    let slow_consumer = endpoint.args.slow_consumer.as_ref().map(|word| {
        let variant = match word.to_string().as_str() {
            "wait" => quote_spanned!(word.span()=> Wait),
            "drop" => quote_spanned!(word.span()=> Drop),
            _ => quote_spanned!(word.span()=> Close),
        };
        quote_spanned!(word.span()=> .slow_consumer(#p::SlowConsumer::#variant))
    });

    let configurator = endpoint.args.configurator.as_ref().map(|ty| {
        let boxed = quote_spanned! {ty.span()=>
            ::std::boxed::Box::new(<#ty as ::core::default::Default>::default())
        };
        match side {
            Side::Server => quote! {
                fn configurator() -> ::core::option::Option<::std::boxed::Box<dyn #p::Configurator>> {
                    ::core::option::Option::Some(#boxed)
                }
            },
            Side::Client => quote! {
                fn client_configurator(
                ) -> ::core::option::Option<::std::boxed::Box<dyn #p::ClientConfigurator>> {
                    ::core::option::Option::Some(#boxed)
                }
            },
        }
    });
    // A client endpoint's configurator belongs to `ClientEndpoint`, which it implements beside
    // `Endpoint`; a server endpoint's to `Endpoint`.
    let (server_configurator, client_endpoint) = match side {
        Side::Server => (configurator, None),
        Side::Client => (
            None,
            Some(quote! {
                #[automatically_derived]
                impl #p::ClientEndpoint for #self_ty {
                    #configurator
                }
            }),
        ),
    };

    let handler = |kind| endpoint.handlers.iter().find(|h| h.kind == kind);
    let on_open = handler(HandlerKind::Open).map(|h| {
        let body = call_handler(&p, h, &Fail::Return);
        quote! {
            fn on_open<'__a>(
                &'__a mut self,
                __session: &'__a #p::Session,
                __handshake: &'__a #p::Handshake,
            ) -> impl ::core::future::Future<Output = #p::HookResult> + ::core::marker::Send + '__a {
                async move { #body }
            }
        }
    });
    let on_error = handler(HandlerKind::Error).map(|h| {
        let body = call_handler(&p, h, &Fail::Return);
        quote! {
            fn on_error<'__a>(
                &'__a mut self,
                __session: &'__a #p::Session,
                __error: #p::EndpointError,
            ) -> impl ::core::future::Future<Output = #p::HookResult> + ::core::marker::Send + '__a {
                async move { #body }
            }
        }
    });
    let on_close = handler(HandlerKind::Close).map(|h| {
        let body = call_handler(&p, h, &Fail::Skip);
        quote! {
            fn on_close<'__a>(
                &'__a mut self,
                __session: &'__a #p::Session,
                __reason: #p::CloseReason,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send + '__a {
                async move { #body }
            }
        }
    });

    let message_handlers: Vec<&Handler> = endpoint
        .handlers
        .iter()
        .filter(|h| h.kind == HandlerKind::Message)
        .collect();
    let conditions: Vec<TokenStream> = message_handlers
        .iter()
        .map(|h| kind_condition(&p, h))
        .collect();
    // Per-handler limits go into the config: the runtime reads messages of that kind up to the
    // handler's limit (even above the endpoint's) and closes with 1009 beyond it.
    let kind_limits: Vec<TokenStream> = message_handlers
        .iter()
        .filter_map(|h| {
            let expr = h.max_message_size.as_ref()?;
            let kind = kind_expr(&p, h);
            Some(quote_spanned! {expr.span()=> .message_limit(#kind, #expr)})
        })
        .collect();
    let branches = |mode: Mode| {
        message_handlers
            .iter()
            .zip(&conditions)
            .filter(move |(h, _)| h.mode() == mode)
            .map(|(h, cond)| {
                let body = call_handler(&p, h, &Fail::Return);
                quote! {
                    if #cond {
                        return { #body };
                    }
                }
            })
            .collect::<Vec<_>>()
    };
    let (parts, streams) = (branches(Mode::Parts), branches(Mode::Stream));
    let branches = branches(Mode::Whole);
    // Messages in parts or as a stream: their own hooks, and the kinds they take.
    let on_part = (!parts.is_empty()).then(|| {
        quote! {
            fn on_part<'__a>(
                &'__a mut self,
                __session: &'__a #p::Session,
                __message: #p::Message,
                __last: bool,
            ) -> impl ::core::future::Future<Output = #p::HookResult> + ::core::marker::Send + '__a {
                async move {
                    let __kind = __message.kind();
                    #(#parts)*
                    ::core::result::Result::Err(#p::EndpointError::Unsupported(__kind))
                }
            }
        }
    });
    let on_stream = (!streams.is_empty()).then(|| {
        quote! {
            fn on_stream<'__a>(
                &'__a mut self,
                __session: &'__a #p::Session,
                __stream: #p::MessageStream,
            ) -> impl ::core::future::Future<Output = #p::HookResult> + ::core::marker::Send + '__a {
                async move {
                    let __kind = __stream.kind();
                    #(#streams)*
                    ::core::result::Result::Err(#p::EndpointError::Unsupported(__kind))
                }
            }
        }
    });
    let modes: Vec<TokenStream> = message_handlers
        .iter()
        .zip(&conditions)
        .filter_map(|(h, cond)| {
            let mode = match h.mode() {
                Mode::Whole => return None,
                Mode::Parts => quote!(#p::MessageMode::Parts),
                Mode::Stream => quote!(#p::MessageMode::Stream),
            };
            Some(quote!(if #cond { return #mode; }))
        })
        .collect();
    let message_mode = (!modes.is_empty()).then(|| {
        quote! {
            fn message_mode(__kind: #p::PayloadKind) -> #p::MessageMode {
                #(#modes)*
                #p::MessageMode::Whole
            }
        }
    });
    let kind_asserts = kind_asserts(&p, &message_handlers);
    let required_state = required_state(&p, endpoint);

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #(#kind_asserts)*

            #[automatically_derived]
            #[allow(unused_variables, unreachable_code)]
            impl #p::Endpoint for #self_ty {
                fn config() -> #p::EndpointConfig {
                    #new_config #subprotocols #max_size #compression #unhandled #slow_consumer #(#kind_limits)*
                }

                #server_configurator

                #on_open

                fn on_message<'__a>(
                    &'__a mut self,
                    __session: &'__a #p::Session,
                    __message: #p::Message,
                ) -> impl ::core::future::Future<Output = #p::HookResult> + ::core::marker::Send + '__a {
                    async move {
                        let __kind = __message.kind();
                        #(#branches)*
                        ::core::result::Result::Err(#p::EndpointError::Unsupported(__kind))
                    }
                }

                #on_part
                #on_stream
                #message_mode

                #on_error
                #on_close
                #required_state

                fn accepts(__kind: #p::PayloadKind) -> bool {
                    false #(|| #conditions)*
                }
            }

            #client_endpoint
        };
    }
}

/// `Endpoint::required_state`: every `State<T>` parameter of every hook, so that the server
/// refuses at `bind` a state that was never registered (`None`: the endpoint takes none).
fn required_state(p: &TokenStream, endpoint: &Endpoint) -> Option<TokenStream> {
    let needs: Vec<TokenStream> = endpoint
        .handlers
        .iter()
        .flat_map(|h| {
            h.params
                .iter()
                .filter(|param| matches!(param.source, Source::State))
                .map(move |param| {
                    let ty = &param.ty;
                    let taken_by = format!("#[{}] fn {}", h.kind.name(), h.ident);
                    quote_spanned!(ty.span()=> <#ty as #p::StateParam>::required(#taken_by))
                })
        })
        .collect();
    (!needs.is_empty()).then(|| {
        quote! {
            fn required_state() -> ::std::vec::Vec<#p::RequiredState> {
                ::std::vec![#(#needs),*]
            }
        }
    })
}

/// What a failed argument extraction does.
enum Fail {
    /// `return Err(e)` (hooks returning `HookResult`).
    Return,
    /// Skip the handler (`on_close`, which has nowhere to report to).
    Skip,
}

/// The `if` condition selecting a message handler: its payload's kind equals the message's.
fn kind_condition(p: &TokenStream, handler: &Handler) -> TokenStream {
    let kind = kind_expr(p, handler);
    quote!(#kind.same(__kind))
}

/// The payload kind a message handler receives, as an expression (a decoded type's kind
/// spanned on the type, so that a missing `Decode` is reported there).
fn kind_expr(p: &TokenStream, handler: &Handler) -> TokenStream {
    let (param, payload) = handler
        .payload()
        .expect("checked: every message handler has a payload");
    payload_kind(p, param, payload, true)
}

/// The one spelling of a payload's kind: `PayloadKind::Text` / `Binary`, or the decoded type's
/// `Decode::KIND` (spanned on the type when `spanned`).
fn payload_kind(p: &TokenStream, param: &Param, payload: &Payload, spanned: bool) -> TokenStream {
    match payload {
        Payload::Str => quote!(#p::PayloadKind::Text),
        Payload::Slice | Payload::Stream(KnownKind::Binary) => quote!(#p::PayloadKind::Binary),
        Payload::Stream(_) => quote!(#p::PayloadKind::Text),
        Payload::Decoded(_) if spanned => {
            let ty = &param.ty;
            quote_spanned!(ty.span()=> <#ty as #p::Decode>::KIND)
        }
        Payload::Decoded(_) => {
            let ty = &param.ty;
            quote!(<#ty as #p::Decode>::KIND)
        }
    }
}

/// Type-level "one handler per kind" checks for pairs the macro could not decide itself.
fn kind_asserts(p: &TokenStream, handlers: &[&Handler]) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let kind_expr = |param: &Param, payload: &Payload| payload_kind(p, param, payload, false);
    for (i, a) in handlers.iter().enumerate() {
        let Some((pa, ka)) = a.payload() else {
            continue;
        };
        for b in &handlers[i + 1..] {
            let Some((pb, kb)) = b.payload() else {
                continue;
            };
            if ka.known_kind().is_some() && kb.known_kind().is_some() {
                continue; // decided by `check`
            }
            let (ea, eb) = (kind_expr(pa, ka), kind_expr(pb, kb));
            let msg = format!(
                "`#[on_message]` handlers `{}` and `{}` receive the same kind of message; an \
                 endpoint has at most one handler per kind (text, binary, pong)",
                a.ident, b.ident
            );
            out.push(quote_spanned! {pb.ty.span()=>
                const _: () = ::core::assert!(!#ea.same(#eb), #msg);
            });
        }
    }
    out
}

/// The body of a hook: extract every argument, call the handler, convert its return value.
fn call_handler(p: &TokenStream, handler: &Handler, fail: &Fail) -> TokenStream {
    let bail = |err: TokenStream| match fail {
        Fail::Return => quote!(return ::core::result::Result::Err(#err)),
        Fail::Skip => quote!({ #p::report_close_error(__session, #err); return; }),
    };
    let mut bindings = Vec::new();
    let mut args = Vec::new();
    for (i, param) in handler.params.iter().enumerate() {
        let name = format_ident!("__arg{}", i);
        let ty = &param.ty;
        let span = ty.span();
        let value = match &param.source {
            Source::SessionRef => quote!(__session),
            Source::Session => quote!(::core::clone::Clone::clone(__session)),
            Source::Handshake => quote!(__handshake),
            Source::ErrorRef => quote!(&__error),
            Source::Error => quote!(__error),
            Source::CloseReason => quote!(__reason),
            Source::State => {
                let bail = bail(quote!(__e));
                quote_spanned! {span=>
                    match #p::state(__session) {
                        ::core::result::Result::Ok(__v) => __v,
                        ::core::result::Result::Err(__e) => #bail,
                    }
                }
            }
            Source::PathParam(var) => {
                let bail = bail(quote!(__e));
                quote_spanned! {span=>
                    match #p::path_param(__session, #var) {
                        ::core::result::Result::Ok(__v) => __v,
                        ::core::result::Result::Err(__e) => #bail,
                    }
                }
            }
            Source::Payload(Payload::Str) => quote! {
                match __message.as_text() {
                    ::core::option::Option::Some(__t) => __t,
                    ::core::option::Option::None => {
                        return ::core::result::Result::Err(#p::EndpointError::Unsupported(__kind))
                    }
                }
            },
            Source::Payload(Payload::Slice) => quote!(__message.as_bytes()),
            Source::Last => quote!(__last),
            Source::Payload(Payload::Stream(_)) => quote_spanned! {span=>
                <#ty as ::core::convert::From<#p::MessageStream>>::from(__stream)
            },
            Source::Payload(Payload::Decoded(_)) => quote_spanned! {span=>
                match <#ty as #p::Decode>::decode(__message) {
                    ::core::result::Result::Ok(__v) => __v,
                    ::core::result::Result::Err(__e) => {
                        return ::core::result::Result::Err(#p::EndpointError::Decode(__e))
                    }
                }
            },
        };
        bindings.push(quote_spanned!(span=> let #name: #ty = #value;));
        args.push(name);
    }
    let ident = &handler.ident;
    let call = quote_spanned!(handler.ident.span()=> Self::#ident(self, #(#args),*));
    let call = if handler.is_async {
        quote!(#call.await)
    } else {
        call
    };
    let ret_span = match &handler.sig.output {
        syn::ReturnType::Default => handler.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let finish = match fail {
        Fail::Return => quote_spanned!(ret_span=> #p::IntoReply::into_reply(__ret)),
        Fail::Skip => quote_spanned!(ret_span=> #p::report_close_error_of(
            __session,
            #p::IntoReply::into_reply(__ret),
        );),
    };
    quote! {
        #(#bindings)*
        let __ret = #call;
        #finish
    }
}
