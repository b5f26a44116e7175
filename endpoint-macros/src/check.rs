//! Rules that span several handlers or parameters, run on a built model. Every violation is
//! recorded; nothing stops at the first one.

use quote::ToTokens;

use crate::ctxt::Ctxt;
use crate::model::{self, Endpoint, Handler, KnownKind, Payload, Source};
use crate::parse::{HandlerKind, Side};

/// Checks the whole endpoint.
pub(crate) fn check(cx: &Ctxt, endpoint: &Endpoint) {
    check_one_handler_per_kind(cx, endpoint);
    for handler in &endpoint.handlers {
        check_parameters(cx, endpoint.args.side, handler);
        check_parts(cx, handler);
    }
    check_one_message_handler_per_payload_kind(cx, endpoint);
}

fn type_string(ty: &syn::Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace("& ", "&")
        .replace(" ,", ",")
}

/// Two `#[on_open]` (or `#[on_error]`, `#[on_close]`) methods: the second is reported.
fn check_one_handler_per_kind(cx: &Ctxt, endpoint: &Endpoint) {
    for kind in [HandlerKind::Open, HandlerKind::Error, HandlerKind::Close] {
        let mut of_kind = endpoint.handlers.iter().filter(|h| h.kind == kind);
        let Some(first) = of_kind.next() else {
            continue;
        };
        for dup in of_kind {
            cx.error_spanned_by(
                &dup.attr,
                format!(
                    "duplicate `#[{0}]` handler: `{1}` is already the `#[{0}]` handler of this \
                     endpoint; an endpoint has at most one",
                    kind.name(),
                    first.ident
                ),
            );
        }
    }
}

/// Per handler: exactly one payload in `#[on_message]`, a required error in `#[on_error]`, and
/// values that can only be moved once taken once.
fn check_parameters(cx: &Ctxt, side: Side, handler: &Handler) {
    let name = handler.kind.name();
    if handler.kind == HandlerKind::Message {
        let mut payloads = handler
            .params
            .iter()
            .filter(|p| matches!(p.source, Source::Payload(_)));
        match payloads.next() {
            // `last: bool` without a part: `check_parts` says what the handler lacks.
            None if handler.params.iter().any(|p| p.source == Source::Last) => {}
            None => cx.error_spanned_by(
                &handler.sig,
                format!(
                    "`#[on_message]` handler `{}` has no payload parameter; take the message as \
                     `String`/`&str` (text), `Vec<u8>`/`Bytes`/`&[u8]` (binary), `Pong`, or a type \
                     implementing `Decode`",
                    handler.ident
                ),
            ),
            Some(first) => {
                for extra in payloads {
                    cx.error_spanned_by(
                        &extra.ty,
                        format!(
                            "`#[on_message]` handler `{}` takes a second payload; `{}` is already \
                             its payload. Besides the one payload a handler may take {}",
                            handler.ident,
                            type_string(&first.ty),
                            model::besides_payload(side)
                        ),
                    );
                }
            }
        }
    }
    if handler.kind == HandlerKind::Error
        && !handler
            .params
            .iter()
            .any(|p| matches!(p.source, Source::Error | Source::ErrorRef))
    {
        cx.error_spanned_by(
            &handler.sig,
            format!(
                "`#[on_error]` handler `{}` must take the error: add a parameter \
                 `error: &EndpointError` (or `EndpointError`)",
                handler.ident
            ),
        );
    }
    for (what, is) in [
        (
            "the error",
            (|s: &Source| matches!(s, Source::Error | Source::ErrorRef)) as fn(&Source) -> bool,
        ),
        ("the close reason", |s: &Source| {
            matches!(s, Source::CloseReason)
        }),
    ] {
        for extra in handler.params.iter().filter(|p| is(&p.source)).skip(1) {
            cx.error_spanned_by(
                &extra.ty,
                format!("`#[{name}]` handler `{}` takes {what} twice", handler.ident),
            );
        }
    }
}

/// A message in parts (`last: bool`) or as a stream: text or binary, with the payload types
/// that fit; a `bool` anywhere else points at the partial-message form.
fn check_parts(cx: &Ctxt, handler: &Handler) {
    let lasts: Vec<_> = handler
        .params
        .iter()
        .filter(|p| p.source == Source::Last)
        .collect();
    let Some(last) = lasts.first() else {
        return;
    };
    for extra in &lasts[1..] {
        cx.error_spanned_by(
            &extra.ty,
            format!(
                "`#[on_message]` handler `{}` takes `last: bool` twice; a handler of a message in \
                 parts takes one part and one `last: bool`",
                handler.ident
            ),
        );
    }
    let Some((param, payload)) = handler.payload() else {
        cx.error_spanned_by(
            &last.ty,
            format!(
                "`#[on_message]` handler `{}` takes `last: bool` but no part: a handler of a \
                 message in parts takes the part (`String`/`&str` for text, `Bytes`/`Vec<u8>`/\
                 `&[u8]` for binary) and `last: bool`, like Jakarta's \
                 `@OnMessage (String part, boolean last)`",
                handler.ident
            ),
        );
        return;
    };
    let why = match payload {
        Payload::Stream(_) => Some(
            "a stream needs no `last`: it ends after the message's last part. Take either \
             `TextStream`/`BinaryStream` alone, or a part (`String`, `Bytes`, ...) with \
             `last: bool`",
        ),
        Payload::Decoded(Some(KnownKind::Pong)) => {
            Some("a pong is never in parts (control frames are not fragmented); take `Pong` alone")
        }
        Payload::Decoded(None) => Some(
            "only text and binary messages come in parts, and a part is not a whole message a \
             `Decode` type could read: take the part as `String`/`&str` (text) or \
             `Bytes`/`Vec<u8>`/`&[u8]` (binary), or take the whole message without `last: bool`",
        ),
        _ => None,
    };
    if let Some(why) = why {
        cx.error_spanned_by(
            &last.ty,
            format!(
                "`#[on_message]` handler `{}` cannot take `{}` in parts: {why}",
                handler.ident,
                type_string(&param.ty)
            ),
        );
    }
}

/// At most one `#[on_message]` handler per kind the macro can see (text, binary, pong). Kinds
/// of other decoded types are checked at type level by `expand`.
fn check_one_message_handler_per_payload_kind(cx: &Ctxt, endpoint: &Endpoint) {
    let mut seen: Vec<(KnownKind, &Handler, &syn::Type)> = Vec::new();
    for handler in endpoint
        .handlers
        .iter()
        .filter(|h| h.kind == HandlerKind::Message)
    {
        let Some((param, payload)) = handler.payload() else {
            continue;
        };
        let Some(kind) = payload.known_kind() else {
            continue;
        };
        if let Some((_, first, first_ty)) = seen.iter().find(|(k, _, _)| *k == kind) {
            cx.error_spanned_by(
                &param.ty,
                format!(
                    "a second {0} message handler: `{1}` already receives {0} messages (as `{2}`); \
                     an endpoint has at most one `#[on_message]` handler per kind (text, binary, \
                     pong)",
                    kind.name(),
                    first.ident,
                    type_string(first_ty)
                ),
            );
        } else {
            seen.push((kind, handler, &param.ty));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{EndpointArgs, Side};
    use quote::quote;

    fn errors(item: proc_macro2::TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Server, quote!("/x/{room}"));
        let mut item: syn::ItemImpl = syn::parse2(item).unwrap();
        let endpoint = Endpoint::from_impl(&cx, args, &mut item);
        check(&cx, &endpoint);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn duplicate_handlers() {
        let errs = errors(quote! {
            impl E {
                #[on_open] fn a(&mut self) {}
                #[on_open] fn b(&mut self) {}
                #[on_message] fn t1(&mut self, t: String) {}
                #[on_message] fn t2(&mut self, t: &str) {}
                #[on_message] fn b1(&mut self, t: Bytes) {}
                #[on_message] fn b2(&mut self, t: &[u8]) {}
                #[on_message] fn p1(&mut self, t: Pong) {}
                #[on_message] fn p2(&mut self, t: endpoint::Pong) {}
                #[on_message] fn d1(&mut self, t: Json<X>) {}
                #[on_message] fn d2(&mut self, t: Json<Y>) {}
            }
        });
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].contains("duplicate `#[on_open]` handler: `a`"));
        assert!(errs[1].contains("a second text message handler: `t1`"));
        assert!(errs[2].contains(
            "a second binary message handler: `b1` already receives binary messages (as `Bytes`)"
        ));
        assert!(errs[3].contains("a second pong message handler"));
    }

    /// `bool` alone is a payload (a text parsed as a bool); beside a part it is `last`.
    #[test]
    fn a_bool_is_last_beside_a_part_and_a_payload_alone() {
        let errs = errors(quote! {
            impl E {
                #[on_message] fn flag(&mut self, b: bool, s: &Session) {}
                #[on_message] fn part(&mut self, p: Bytes, last: bool) {}
                #[on_message] fn bad(&mut self, p: Json<X>, last: bool) {}
            }
        });
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("cannot take `Json<X>` in parts"));
    }

    #[test]
    fn payload_and_error_parameters() {
        let errs = errors(quote! {
            impl E {
                #[on_message] fn none(&mut self, s: &Session) {}
                #[on_message] fn two(&mut self, a: String, b: MyType) {}
                #[on_error] fn e(&mut self, s: &Session) {}
                #[on_close] fn c(&mut self, a: CloseReason, b: CloseReason) {}
            }
        });
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].contains("has no payload parameter"));
        assert!(errs[1].contains("takes a second payload; `String` is already its payload"));
        assert!(errs[2].contains("must take the error"));
        assert!(errs[3].contains("takes the close reason twice"));
    }
}
