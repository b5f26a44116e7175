//! Parsing of attribute arguments only: `#[server_endpoint(...)]`, `#[client_endpoint(...)]`,
//! `#[on_message(...)]`, `#[path_param(...)]`. No rule that spans several items lives here (see
//! `check.rs`).

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, Ident, LitBool, LitStr, Token};

use crate::ctxt::Ctxt;

/// Which attribute declares the endpoint: the side of the connection it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `#[server_endpoint("/path", ...)]`: served at a path.
    Server,
    /// `#[client_endpoint(...)]`: connected to a URL given at `connect`.
    Client,
}

impl Side {
    /// The attribute's name, `server_endpoint` or `client_endpoint`.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Side::Server => "server_endpoint",
            Side::Client => "client_endpoint",
        }
    }

    /// The attribute as written on an impl, for messages: `#[server_endpoint("/path")]`.
    pub(crate) fn example(self) -> &'static str {
        match self {
            Side::Server => "#[server_endpoint(\"/path\")]",
            Side::Client => "#[client_endpoint]",
        }
    }

    /// The arguments this side accepts, for messages.
    fn args(self) -> &'static str {
        match self {
            Side::Server => SERVER_ARGS,
            Side::Client => CLIENT_ARGS,
        }
    }
}

/// The arguments of `#[server_endpoint("/path", ...)]` or `#[client_endpoint(...)]`.
#[derive(Debug)]
pub(crate) struct EndpointArgs {
    /// Which attribute these are the arguments of.
    pub(crate) side: Side,
    /// The URI template literal (kept for spans); `None` when missing (already reported), and
    /// always for a client endpoint (a path given to one is reported).
    pub(crate) path: Option<LitStr>,
    /// `subprotocols = ["v2", "v1"]`.
    pub(crate) subprotocols: Vec<LitStr>,
    /// `max_message_size = 65536` (any constant `usize` expression).
    pub(crate) max_message_size: Option<Expr>,
    /// `compression = true | false`: permessage-deflate for this endpoint; `None` leaves it to
    /// the server's `Limits::compression`.
    pub(crate) compression: Option<LitBool>,
    /// `crate = ::some::path`: where `__private` lives; `::endpoint` by default.
    pub(crate) crate_path: Option<syn::Path>,
    /// `configurator = MyConfigurator`: a `Default + Configurator` type.
    pub(crate) configurator: Option<syn::Type>,
    /// `unhandled = ignore | close`: messages of a kind without a handler.
    pub(crate) unhandled: Option<Ident>,
    /// `slow_consumer = close | wait | drop`: broadcasts to a session whose queue is full.
    pub(crate) slow_consumer: Option<Ident>,
}

/// The values of `unhandled`.
pub(crate) const UNHANDLED_VALUES: &[&str] = &["ignore", "close"];
/// The values of `slow_consumer`.
pub(crate) const SLOW_CONSUMER_VALUES: &[&str] = &["close", "wait", "drop"];

const SERVER_ARGS: &str = "`subprotocols = [\"..\"]`, `max_message_size = N`, \
     `compression = true|false`, `unhandled = ignore|close`, `slow_consumer = close|wait|drop`, \
     `configurator = Type`, `crate = path`";

const CLIENT_ARGS: &str = "`subprotocols = [\"..\"]`, `max_message_size = N`, \
     `compression = true|false`, `unhandled = ignore|close`, `configurator = Type`, \
     `crate = path`";

/// A path given to `#[client_endpoint]`, positionally or as Java's `value = "..."`.
fn client_path_message(path: Option<&LitStr>) -> String {
    let shown = path
        .map(LitStr::value)
        .filter(|p| p.starts_with('/') && !p.contains(['{', '"', '\\']))
        .unwrap_or_else(|| "/chat".to_owned());
    format!(
        "a client endpoint has no path: the URL is given when connecting, \
         `Client::new().connect(\"ws://host{shown}\", endpoint)` \
         (Java: `container.connectToServer(endpoint, URI)`)"
    )
}

/// `slow_consumer` on a client endpoint.
const CLIENT_SLOW_CONSUMER: &str = "`slow_consumer` is a `#[server_endpoint]` option: it decides \
     what a server's broadcasts do to a session whose outbound queue is full (the broadcast \
     policy of rooms), and a client endpoint is not broadcast to; remove it";

/// Jakarta's `decoders = {..}` / `encoders = {..}`: types do that here.
fn jakarta_coders(key: &str) -> Option<&'static str> {
    match key {
        "decoders" => Some(
            "`decoders` is Jakarta's; here the `#[on_message]` handler's payload type decodes \
             the message: take a type implementing `Decode` (e.g. `Json<T>`) as its parameter",
        ),
        "encoders" => Some(
            "`encoders` is Jakarta's; here a value is encoded by its type: return (or \
             `session.send`) a type implementing `Encode` (e.g. `Json<T>`)",
        ),
        _ => None,
    }
}

/// The only values `compression` takes.
const COMPRESSION_VALUE: &str = "`compression` takes `true` or `false`";

impl EndpointArgs {
    /// Parses the attribute's arguments, recording every problem in `cx` and skipping past it.
    pub(crate) fn parse(cx: &Ctxt, side: Side, args: TokenStream) -> EndpointArgs {
        let attr = side.attr();
        let expected = side.args();
        let mut out = EndpointArgs {
            side,
            path: None,
            subprotocols: Vec::new(),
            max_message_size: None,
            compression: None,
            crate_path: None,
            configurator: None,
            unhandled: None,
            slow_consumer: None,
        };
        let parser = |input: ParseStream| -> syn::Result<()> {
            // Whether an argument was read (a comma comes before the next).
            let mut any = false;
            match side {
                Side::Server if input.peek(LitStr) => {
                    out.path = Some(input.parse()?);
                    any = true;
                }
                Side::Server => cx.error_at(
                    if input.is_empty() {
                        Span::call_site()
                    } else {
                        input.span()
                    },
                    "expected the endpoint path first: #[server_endpoint(\"/chat/{room}\")]",
                ),
                Side::Client if input.peek(LitStr) => {
                    let path: LitStr = input.parse()?;
                    cx.error_spanned_by(&path, client_path_message(Some(&path)));
                    any = true;
                }
                Side::Client => {}
            }
            let mut seen: Vec<String> = Vec::new();
            while !input.is_empty() {
                if any {
                    input.parse::<Token![,]>()?;
                    if input.is_empty() {
                        break;
                    }
                }
                any = true;
                if !(input.peek(Ident::peek_any)) {
                    // Something else where a `name = value` argument was expected.
                    cx.error_at(input.span(), format!("expected one of {expected}"));
                    skip_argument(input)?;
                    seen.push(String::new());
                    continue;
                }
                let name = Ident::parse_any(input)?;
                let key = name.to_string();
                if seen.contains(&key) {
                    cx.error_spanned_by(&name, format!("duplicate argument `{key}`"));
                }
                seen.push(key.clone());
                match key.as_str() {
                    "subprotocols" => {
                        input.parse::<Token![=]>()?;
                        let content;
                        syn::bracketed!(content in input);
                        let list = content
                            .parse_terminated(|p: ParseStream| p.parse::<LitStr>(), Token![,])?;
                        for proto in &list {
                            check_subprotocol(cx, proto);
                        }
                        out.subprotocols = list.into_iter().collect();
                    }
                    "max_message_size" => {
                        input.parse::<Token![=]>()?;
                        let expr: Expr = input.parse()?;
                        check_size(cx, &expr);
                        out.max_message_size = Some(expr);
                    }
                    "compression" => {
                        if let Some(enabled) = parse_compression(cx, &name, input)? {
                            out.compression = Some(enabled);
                        }
                    }
                    "unhandled" => {
                        out.unhandled = parse_choice(cx, &name, input, UNHANDLED_VALUES)?;
                    }
                    "slow_consumer" if side == Side::Client => {
                        let value = take_argument(input)?;
                        cx.error_spanned_by(quote::quote!(#name #value), CLIENT_SLOW_CONSUMER);
                    }
                    "slow_consumer" => {
                        out.slow_consumer = parse_choice(cx, &name, input, SLOW_CONSUMER_VALUES)?;
                    }
                    // Java's `@ServerEndpoint(value = "/chat")`, or a guess at a URL option.
                    "value" | "path" | "uri" | "url" if side == Side::Client => {
                        let value = take_argument(input)?;
                        let lit = value.clone().into_iter().skip(1).collect::<TokenStream>();
                        let lit = syn::parse2::<LitStr>(lit).ok();
                        cx.error_spanned_by(
                            quote::quote!(#name #value),
                            client_path_message(lit.as_ref()),
                        );
                    }
                    "crate" => {
                        input.parse::<Token![=]>()?;
                        // Accept both `crate = ::path` and serde's `crate = "path"`.
                        if input.peek(LitStr) {
                            let lit: LitStr = input.parse()?;
                            out.crate_path = Some(lit.parse()?);
                        } else {
                            out.crate_path = Some(input.call(syn::Path::parse_mod_style)?);
                        }
                    }
                    "configurator" => {
                        input.parse::<Token![=]>()?;
                        out.configurator = Some(input.parse::<syn::Type>()?);
                    }
                    _ => {
                        let hint = jakarta_coders(&key)
                            .map(|hint| format!(". {hint}"))
                            .unwrap_or_default();
                        cx.error_spanned_by(
                            &name,
                            format!(
                                "unknown #[{attr}] argument `{key}`; expected one of \
                                 {expected}{hint}"
                            ),
                        );
                        skip_argument(input)?;
                    }
                }
            }
            Ok(())
        };
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        out
    }
}

/// Skips tokens up to the next top-level `,`.
fn skip_argument(input: ParseStream) -> syn::Result<()> {
    take_argument(input).map(drop)
}

/// The tokens up to the next top-level `,`.
fn take_argument(input: ParseStream) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<proc_macro2::TokenTree>()?]);
    }
    Ok(tokens)
}

/// `compression = true` or `compression = false`, after the name. Anything else is reported on
/// its tokens and skipped: `None`.
fn parse_compression(cx: &Ctxt, name: &Ident, input: ParseStream) -> syn::Result<Option<LitBool>> {
    if !input.peek(Token![=]) {
        // `compression` alone, as a flag, or `compression(true)`: Jakarta has no such switch
        // (Tomcat offers permessage-deflate container-wide), so a porter guesses the syntax.
        cx.error_spanned_by(
            name,
            "`compression` takes a value; write `compression = true` (or `false`)",
        );
        skip_argument(input)?;
        return Ok(None);
    }
    let eq: Token![=] = input.parse()?;
    let value = take_argument(input)?;
    if value.is_empty() {
        cx.error_spanned_by(eq, COMPRESSION_VALUE);
        return Ok(None);
    }
    match syn::parse2::<LitBool>(value.clone()) {
        Ok(enabled) => Ok(Some(enabled)),
        Err(_) => {
            cx.error_spanned_by(value, COMPRESSION_VALUE);
            Ok(None)
        }
    }
}

/// `name = value` where the value is one of `values`, written as a bare word. Anything else
/// (no value, a string, another word) is reported on its tokens and skipped: `None`.
fn parse_choice(
    cx: &Ctxt,
    name: &Ident,
    input: ParseStream,
    values: &[&str],
) -> syn::Result<Option<Ident>> {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{name} = {v}`")).collect();
    let choices = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    if !input.peek(Token![=]) {
        cx.error_spanned_by(name, format!("`{name}` takes a value; write {choices}"));
        skip_argument(input)?;
        return Ok(None);
    }
    let eq: Token![=] = input.parse()?;
    let value = take_argument(input)?;
    if value.is_empty() {
        cx.error_spanned_by(eq, format!("`{name}` takes a value; write {choices}"));
        return Ok(None);
    }
    let mut hint = String::new();
    if let Ok(word) = syn::parse2::<Ident>(value.clone()) {
        let text = word.to_string();
        if values.contains(&text.as_str()) {
            return Ok(Some(word));
        }
        // Spring's `OverflowStrategy.DROP`, a Java enum constant.
        let lower = text.to_ascii_lowercase();
        if values.contains(&lower.as_str()) {
            hint = format!("; write `{name} = {lower}`, in lower case");
        }
    } else if let Ok(lit) = syn::parse2::<LitStr>(value.clone()) {
        if values.contains(&lit.value().as_str()) {
            hint = format!("; write `{name} = {}`, without quotes", lit.value());
        }
    }
    cx.error_spanned_by(value, format!("`{name}` takes {choices}{hint}"));
    Ok(None)
}

/// RFC 6455: a subprotocol is a non-empty token (no separators, no spaces).
fn check_subprotocol(cx: &Ctxt, proto: &LitStr) {
    let value = proto.value();
    let separator = |c: char| "()<>@,;:\\\"/[]?={} \t".contains(c) || !c.is_ascii_graphic();
    if value.is_empty() {
        cx.error_spanned_by(proto, "a subprotocol name cannot be empty");
    } else if let Some(c) = value.chars().find(|&c| separator(c)) {
        cx.error_spanned_by(
            proto,
            format!("invalid subprotocol `{value}`: {c:?} is not allowed in a token (RFC 6455)"),
        );
    }
}

fn check_size(cx: &Ctxt, expr: &Expr) {
    if let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(int),
        ..
    }) = expr
    {
        match int.base10_parse::<u64>() {
            Ok(0) => cx.error_spanned_by(int, "`max_message_size` must be greater than 0"),
            Ok(_) => {}
            Err(err) => cx.syn_error(err),
        }
    }
}

/// Which handler attribute a method carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    /// `#[on_open]`
    Open,
    /// `#[on_message]`
    Message,
    /// `#[on_error]`
    Error,
    /// `#[on_close]`
    Close,
}

impl HandlerKind {
    /// Every kind, in lifecycle order.
    pub(crate) const ALL: [HandlerKind; 4] = [
        HandlerKind::Open,
        HandlerKind::Message,
        HandlerKind::Error,
        HandlerKind::Close,
    ];

    /// The attribute name, e.g. `on_open`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HandlerKind::Open => "on_open",
            HandlerKind::Message => "on_message",
            HandlerKind::Error => "on_error",
            HandlerKind::Close => "on_close",
        }
    }

    /// Recognizes `#[on_open]` or `#[endpoint::on_open]` (by the last path segment).
    pub(crate) fn of(attr: &Attribute) -> Option<HandlerKind> {
        let last = attr.path().segments.last()?;
        HandlerKind::ALL
            .into_iter()
            .find(|k| last.ident == k.name())
    }
}

/// The arguments of a handler attribute.
#[derive(Debug, Default)]
pub(crate) struct HandlerArgs {
    /// `#[on_message(max_message_size = N)]`.
    pub(crate) max_message_size: Option<Expr>,
}

impl HandlerArgs {
    /// Parses `attr`, a handler attribute of kind `kind`.
    pub(crate) fn parse(cx: &Ctxt, kind: HandlerKind, attr: &Attribute) -> HandlerArgs {
        let mut out = HandlerArgs::default();
        match &attr.meta {
            syn::Meta::Path(_) => {}
            syn::Meta::NameValue(nv) => cx.error_spanned_by(
                nv,
                format!("expected `#[{0}]` or `#[{0}(...)]`", kind.name()),
            ),
            syn::Meta::List(list) if kind != HandlerKind::Message => {
                if !list.tokens.is_empty() {
                    cx.error_spanned_by(
                        &list.tokens,
                        format!("`#[{}]` takes no arguments", kind.name()),
                    );
                }
            }
            syn::Meta::List(list) => {
                let res = list.parse_nested_meta(|meta| {
                    if meta.path.is_ident("max_message_size") {
                        let expr: Expr = meta.value()?.parse()?;
                        check_size(cx, &expr);
                        if out.max_message_size.replace(expr).is_some() {
                            cx.error_spanned_by(
                                &meta.path,
                                "duplicate argument `max_message_size`",
                            );
                        }
                        Ok(())
                    } else {
                        let name = meta.path.to_token_stream_string();
                        cx.error_spanned_by(
                            &meta.path,
                            format!(
                                "unknown #[on_message] argument `{name}`; expected \
                                 `max_message_size = N`"
                            ),
                        );
                        // Skip a value if there is one.
                        if meta.input.peek(Token![=]) {
                            meta.value()?.parse::<Expr>()?;
                        } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                            skip_argument(meta.input)?;
                        }
                        Ok(())
                    }
                });
                if let Err(err) = res {
                    cx.syn_error(err);
                }
            }
        }
        out
    }
}

trait PathString {
    fn to_token_stream_string(&self) -> String;
}

impl PathString for syn::Path {
    fn to_token_stream_string(&self) -> String {
        quote::ToTokens::to_token_stream(self)
            .to_string()
            .replace(' ', "")
    }
}

/// Whether `attr` is `#[path_param]` / `#[path_param(..)]`.
pub(crate) fn is_path_param(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "path_param")
}

/// The explicit variable name of `#[path_param("room")]` (or `#[path_param(room)]`), with its
/// span; `None` for a bare `#[path_param]`.
pub(crate) fn path_param_name(cx: &Ctxt, attr: &Attribute) -> Option<(String, Span)> {
    match &attr.meta {
        syn::Meta::Path(_) => None,
        syn::Meta::NameValue(nv) => {
            cx.error_spanned_by(nv, "expected `#[path_param]` or `#[path_param(\"name\")]`");
            None
        }
        syn::Meta::List(list) => {
            let parsed = list.parse_args_with(|input: ParseStream| {
                if input.peek(LitStr) {
                    let lit: LitStr = input.parse()?;
                    Ok((lit.value(), lit.span()))
                } else {
                    let ident = Ident::parse_any(input)?;
                    Ok((ident.unraw().to_string(), ident.span()))
                }
            });
            match parsed {
                Ok(name) => Some(name),
                Err(_) => {
                    cx.error_spanned_by(
                        &list.tokens,
                        "expected a path variable name: #[path_param(\"room\")]",
                    );
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors(cx: Ctxt) -> Vec<String> {
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn endpoint_args() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(
            &cx,
            Side::Server,
            quote!(
                "/chat/{room}",
                subprotocols = ["v2", "v1"],
                max_message_size = 64 * 1024,
                compression = true,
                crate = ::my::endpoint,
            ),
        );
        assert!(errors(cx).is_empty());
        assert_eq!(args.path.unwrap().value(), "/chat/{room}");
        assert_eq!(args.subprotocols.len(), 2);
        assert!(args.max_message_size.is_some());
        assert!(args.compression.unwrap().value);
        assert!(args.crate_path.is_some());
    }

    #[test]
    fn endpoint_args_accumulate_errors() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(
            &cx,
            Side::Server,
            quote!(
                "/x",
                foo = 1,
                max_message_size = 0,
                subprotocols = ["a b"],
                bar,
                foo = [1, 2]
            ),
        );
        assert_eq!(args.path.unwrap().value(), "/x");
        let errs = errors(cx);
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].contains("unknown #[server_endpoint] argument `foo`"));
        assert!(errs[1].contains("greater than 0"));
        assert!(errs[2].contains("invalid subprotocol"));
        assert!(errs[3].contains("unknown #[server_endpoint] argument `bar`"));
        assert!(errs[4].contains("duplicate argument `foo`"));
    }

    #[test]
    fn endpoint_compression() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Server, quote!("/x", compression = false));
        assert!(errors(cx).is_empty());
        assert!(!args.compression.unwrap().value);

        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Server, quote!("/x"));
        assert!(errors(cx).is_empty());
        assert!(args.compression.is_none());

        // Every mistake is reported and skipped, and the arguments after it are still read.
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(
            &cx,
            Side::Server,
            quote!(
                "/x",
                compression = "yes",
                compression = 1,
                compression,
                compression(true),
                compression = true false,
                compression = ,
                compression = true,
                max_message_size = 10,
            ),
        );
        assert!(args.compression.unwrap().value);
        assert!(args.max_message_size.is_some());
        let errs = errors(cx);
        let value = "`compression` takes `true` or `false`";
        let bare = "`compression` takes a value; write `compression = true` (or `false`)";
        let dup = "duplicate argument `compression`";
        assert_eq!(
            errs,
            [value, dup, value, dup, bare, dup, bare, dup, value, dup, value, dup],
            "{errs:#?}"
        );
    }

    #[test]
    fn client_args() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(
            &cx,
            Side::Client,
            quote!(
                subprotocols = ["a", "b"],
                max_message_size = 1000,
                compression = true,
                unhandled = ignore,
                configurator = Bearer,
                crate = ::my::endpoint,
            ),
        );
        assert!(errors(cx).is_empty());
        assert_eq!(args.side, Side::Client);
        assert!(args.path.is_none());
        assert_eq!(args.subprotocols.len(), 2);
        assert!(args.max_message_size.is_some() && args.compression.is_some());
        assert!(args.unhandled.is_some() && args.configurator.is_some());

        // No arguments at all: no "expected the endpoint path".
        let cx = Ctxt::new();
        EndpointArgs::parse(&cx, Side::Client, quote!());
        assert!(errors(cx).is_empty());
    }

    #[test]
    fn client_args_refuse_a_path_and_server_options() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(
            &cx,
            Side::Client,
            quote!(
                "/chat",
                slow_consumer = drop,
                value = "/x",
                decoders = [A],
                max_message_size = 10
            ),
        );
        assert!(args.path.is_none() && args.slow_consumer.is_none());
        assert!(args.max_message_size.is_some());
        let errs = errors(cx);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with(
            "a client endpoint has no path: the URL is given when connecting, \
             `Client::new().connect(\"ws://host/chat\", endpoint)`"
        ));
        assert!(errs[1].starts_with("`slow_consumer` is a `#[server_endpoint]` option"));
        assert!(errs[2].contains("`Client::new().connect(\"ws://host/x\", endpoint)`"));
        assert!(errs[3].starts_with("unknown #[client_endpoint] argument `decoders`"));
        assert!(errs[3].contains("take a type implementing `Decode`"));
        assert!(!errs[3].contains("slow_consumer"));
    }

    #[test]
    fn endpoint_args_need_a_path() {
        let cx = Ctxt::new();
        let args = EndpointArgs::parse(&cx, Side::Server, quote!());
        assert!(args.path.is_none());
        assert!(errors(cx)[0].contains("expected the endpoint path"));
    }

    #[test]
    fn handler_args() {
        let attr: Attribute = syn::parse_quote!(#[on_message(max_message_size = 1024)]);
        let cx = Ctxt::new();
        assert_eq!(HandlerKind::of(&attr), Some(HandlerKind::Message));
        assert!(HandlerArgs::parse(&cx, HandlerKind::Message, &attr)
            .max_message_size
            .is_some());
        assert!(errors(cx).is_empty());

        let attr: Attribute = syn::parse_quote!(#[on_open(x)]);
        let cx = Ctxt::new();
        HandlerArgs::parse(&cx, HandlerKind::Open, &attr);
        assert_eq!(errors(cx), ["`#[on_open]` takes no arguments"]);

        let attr: Attribute = syn::parse_quote!(#[on_message(size = 3)]);
        let cx = Ctxt::new();
        HandlerArgs::parse(&cx, HandlerKind::Message, &attr);
        assert!(errors(cx)[0].contains("unknown #[on_message] argument `size`"));
    }

    #[test]
    fn path_param_names() {
        let cx = Ctxt::new();
        let a: Attribute = syn::parse_quote!(#[path_param("room")]);
        let b: Attribute = syn::parse_quote!(#[path_param(r#type)]);
        let c: Attribute = syn::parse_quote!(#[endpoint::path_param]);
        assert!(is_path_param(&a) && is_path_param(&c));
        assert_eq!(path_param_name(&cx, &a).unwrap().0, "room");
        assert_eq!(path_param_name(&cx, &b).unwrap().0, "type");
        assert!(path_param_name(&cx, &c).is_none());
        assert!(errors(cx).is_empty());
    }
}
