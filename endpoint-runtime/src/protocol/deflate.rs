//! permessage-deflate (RFC 7692), the protocol core: negotiating the extension's parameters.
//! No I/O, nothing of sessions: the upgrade (`server/upgrade.rs`) wires it in.
//!
//! | item | what it does |
//! |---|---|
//! | [`DeflateConfig`] | the server's settings; defaults below |
//! | [`negotiate`] | the first acceptable offer of the client's `Sec-WebSocket-Extensions`: the [`Agreement`] ([`DeflateParams`] and the response header value), or `None` to go on uncompressed |
//!
//! # Defaults ([`DeflateConfig::default`])
//!
//! | setting | default | why |
//! |---|---|---|
//! | `enabled` | `false` | compression costs CPU on every message, and a message mixing a secret with text an attacker chooses leaks the secret through its compressed length (the CRIME/BREACH kind): the application opts in, as with Node's `ws` and uWebSockets |
//! | `server_no_context_takeover` | `true` | no zlib state per connection for what the server sends (a compressor with its window is 371 KiB); what is compressed depends on the message only, so a broadcast is compressed once for all its recipients |
//! | `client_no_context_takeover` | `true` | no inflate state (46 KiB) held by an idle connection. RFC 7692 section 7.1.1.2 lets the server ask for it in answer to any offer, and browsers comply. The cost is the ratio of small client messages that resemble the previous ones |
//! | `server_max_window_bits` | 15 | the best ratio, and without context takeover the window is the thread's, not the connection's |
//! | `client_max_window_bits` | 15 | only the client's memory: we inflate with 32 KiB whatever is agreed (below) |
//! | `level` | 1 | measured (zlib-rs, JSON chat messages, `reset` + compress): 1 KiB in 9 µs to 48 % at level 1, in 22 µs to 36 % at 6; 4 KiB in 13 µs to 39 % against 42 µs to 26 %; levels 2 to 6 pay a fixed 10 µs or so per message |
//! | `min_size` | 1024 | smaller messages are sent uncompressed: a 64-byte message grew to 66 bytes, a 256-byte one shrank by 82 bytes for 6 µs of CPU |
//!
//! Browsers offer `permessage-deflate; client_max_window_bits` (Chrome) or plain
//! `permessage-deflate` (Firefox); with the defaults the answer is
//! `permessage-deflate; server_no_context_takeover; client_no_context_takeover` (plus
//! `client_max_window_bits=15` when the client offered that parameter).
//!
//! # Window bits 8
//!
//! zlib (since 1.2.9), and zlib-rs after it, refuse a raw deflate window of 8 bits (flate2
//! asserts 9 to 15). zlib's compressor at 9 bits happens never to emit a distance over 250 bytes
//! (its window minus the 262-byte lookahead), which is why Node quietly turns 8 into 9; that is
//! an internal constant of the backend, not a promise it keeps. So:
//!
//! * an offer asking `server_max_window_bits=8` is declined (RFC 7692 section 7.1.2.1: a server
//!   declines a parameter it does not support), and the next offer is tried; browsers never ask
//!   for it. A configured `server_max_window_bits` of 8 means 9, and the answer says 9;
//! * inflating, the server will keep a 32 KiB window whatever was agreed (zlib-rs allocates
//!   32 KiB for any window size), which decodes every window from 8 to 15 bits: a client's
//!   `client_max_window_bits=8` is accepted and echoed. The server never asks for 8 itself (a
//!   configured 8 means 9): zlib-based clients cannot compress with it (Bun's client, for one,
//!   closed with 1011 when told 8).

use std::fmt::Write as _;

use http::{header, HeaderMap};

/// The extension's token in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";
const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The smallest window zlib compresses with in raw deflate (see the module docs on 8).
const MIN_WINDOW_BITS: u8 = 9;
/// The largest window RFC 7692 allows, and deflate's.
const MAX_WINDOW_BITS: u8 = 15;

/// The server's permessage-deflate settings. See the [module docs](self) for the defaults and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)] // The upgrade (`server/upgrade.rs`) reads it when the driver wires compression in.
pub(crate) struct DeflateConfig {
    /// Accept the extension at all.
    pub(crate) enabled: bool,
    /// Compress each outgoing message on its own (a client's `server_no_context_takeover` is
    /// honoured whatever this says).
    pub(crate) server_no_context_takeover: bool,
    /// Ask the client to compress each message on its own (an offered
    /// `client_no_context_takeover` is taken up whatever this says: the client does so anyway).
    pub(crate) client_no_context_takeover: bool,
    /// The largest window the server compresses with, 8 to 15 (8 means 9); a client asking for
    /// less gets less.
    pub(crate) server_max_window_bits: u8,
    /// The largest window the server asks the client to compress with, 8 to 15 (8 means 9);
    /// only a client that offered `client_max_window_bits` can be asked (RFC 7692 7.1.2.2).
    pub(crate) client_max_window_bits: u8,
    /// zlib's compression level, 0 (stored) to 9 (more is 9).
    pub(crate) level: u32,
    /// Messages smaller than this many bytes are sent uncompressed.
    pub(crate) min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: false,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            level: 1,
            min_size: 1024,
        }
    }
}

/// What was agreed with one client: what each side compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // The compressor and the decompressor read it (next).
pub(crate) struct DeflateParams {
    /// The server compresses each message on its own.
    pub(crate) server_no_context_takeover: bool,
    /// The client compresses each message on its own, so the server inflates each afresh.
    pub(crate) client_no_context_takeover: bool,
    /// The window the server compresses with, 9 to 15.
    pub(crate) server_max_window_bits: u8,
    /// The largest window the client compresses with, 8 to 15 (the server inflates with 15).
    pub(crate) client_max_window_bits: u8,
    /// zlib's level, 0 to 9.
    pub(crate) level: u32,
    /// Messages smaller than this are sent uncompressed.
    pub(crate) min_size: usize,
}

impl DeflateParams {
    /// Whether an outgoing message of `len` bytes is compressed.
    #[allow(dead_code)] // The driver asks before each data message once it wires compression in.
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len >= self.min_size
    }
}

/// An accepted offer: the parameters, and the `Sec-WebSocket-Extensions` value of the `101`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)] // The upgrade answers with it when the driver wires compression in.
pub(crate) struct Agreement {
    pub(crate) params: DeflateParams,
    /// E.g. `permessage-deflate; server_no_context_takeover; client_no_context_takeover`.
    pub(crate) response: String,
}

/// Picks the first acceptable permessage-deflate offer among the request's
/// `Sec-WebSocket-Extensions` headers (RFC 7692 section 5: the client lists offers by
/// preference). `None` when compression is disabled or no offer is acceptable: the connection
/// goes on uncompressed, and the `101` names no extension.
#[allow(dead_code)] // `server/upgrade.rs` calls it when the driver wires compression in.
pub(crate) fn negotiate(config: &DeflateConfig, headers: &HeaderMap) -> Option<Agreement> {
    negotiate_values(
        config,
        headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// [`negotiate`] over the header values themselves, in order.
#[allow(dead_code)] // Through `negotiate`, wired in by the driver.
pub(crate) fn negotiate_values<'a>(
    config: &DeflateConfig,
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Agreement> {
    if !config.enabled {
        return None;
    }
    values
        .into_iter()
        .flat_map(|value| Elements { s: value, at: 0 })
        .find_map(|element| match element {
            Element::Deflate(Ok(offer)) => accept(config, &offer).ok(),
            Element::Deflate(Err(_)) | Element::Other => None,
        })
}

/// Why an offer was declined (RFC 7692 section 7: the server declines, and tries the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decline {
    /// Not `name *( ";" param [ "=" ( token / quoted-string ) ] )` (RFC 6455 section 9.1).
    Malformed,
    /// A parameter RFC 7692 does not define.
    Unknown,
    /// A parameter given twice.
    Duplicate(&'static str),
    /// A value where none belongs, none where one must be, or not a window size from 8 to 15.
    Invalid(&'static str),
    /// `server_max_window_bits=8`, which zlib cannot compress with.
    Unsupported,
}

/// One permessage-deflate offer's parameters, each checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// Present, with its value (it must have one).
    server_max_window_bits: Option<u8>,
    /// Present, with its value if it has one.
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// Records one parameter; the first unknown, duplicate or invalid one declines the offer.
    fn set(&mut self, name: &[u8], value: Option<&[u8]>) -> Result<(), Decline> {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        fn flag(seen: &mut bool, value: Option<&[u8]>, name: &'static str) -> Result<(), Decline> {
            if *seen {
                return Err(Decline::Duplicate(name));
            }
            if value.is_some() {
                return Err(Decline::Invalid(name));
            }
            *seen = true;
            Ok(())
        }
        if is(SERVER_NO_CONTEXT_TAKEOVER) {
            flag(
                &mut self.server_no_context_takeover,
                value,
                SERVER_NO_CONTEXT_TAKEOVER,
            )
        } else if is(CLIENT_NO_CONTEXT_TAKEOVER) {
            flag(
                &mut self.client_no_context_takeover,
                value,
                CLIENT_NO_CONTEXT_TAKEOVER,
            )
        } else if is(SERVER_MAX_WINDOW_BITS) {
            if self.server_max_window_bits.is_some() {
                return Err(Decline::Duplicate(SERVER_MAX_WINDOW_BITS));
            }
            let bits = value
                .and_then(window_bits)
                .ok_or(Decline::Invalid(SERVER_MAX_WINDOW_BITS))?;
            self.server_max_window_bits = Some(bits);
            Ok(())
        } else if is(CLIENT_MAX_WINDOW_BITS) {
            if self.client_max_window_bits.is_some() {
                return Err(Decline::Duplicate(CLIENT_MAX_WINDOW_BITS));
            }
            let bits = match value {
                None => None,
                Some(v) => Some(window_bits(v).ok_or(Decline::Invalid(CLIENT_MAX_WINDOW_BITS))?),
            };
            self.client_max_window_bits = Some(bits);
            Ok(())
        } else {
            Err(Decline::Unknown)
        }
    }
}

/// A window size: a decimal integer from 8 to 15 without leading zeroes (RFC 7692 7.1.2).
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// The answer to an acceptable offer (RFC 7692 section 7.1).
fn accept(config: &DeflateConfig, offer: &Offer) -> Result<Agreement, Decline> {
    let server_cap = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // 7.1.2.1: the server uses no more than the client asked for, and says so.
    let server_bits = match offer.server_max_window_bits {
        Some(asked) if asked < MIN_WINDOW_BITS => return Err(Decline::Unsupported),
        Some(asked) => server_cap.min(asked),
        None => server_cap,
    };
    let client_cap = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // 7.1.2.2: a client that did not offer the parameter may use any window and must not be
    // sent one; one that did may be told any window up to the value it gave.
    let client_bits = match offer.client_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(None) => client_cap,
        Some(Some(offered)) => client_cap.min(offered),
    };
    let params = DeflateParams {
        // 7.1.1.1: an offered server_no_context_takeover must be accepted; the server may
        // add it to any answer.
        server_no_context_takeover: config.server_no_context_takeover
            || offer.server_no_context_takeover,
        // 7.1.1.2: the server may add it to any answer; offered, it costs nothing to take up.
        client_no_context_takeover: config.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        level: config.level.min(9),
        min_size: config.min_size,
    };
    let mut response = String::from(NAME);
    if params.server_no_context_takeover {
        response.push_str("; ");
        response.push_str(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if params.client_no_context_takeover {
        response.push_str("; ");
        response.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    // 7.1.2.1: the server may name its window even when the client did not ask.
    if offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS {
        let _ = write!(response, "; {SERVER_MAX_WINDOW_BITS}={server_bits}");
    }
    if offer.client_max_window_bits.is_some() {
        let _ = write!(response, "; {CLIENT_MAX_WINDOW_BITS}={client_bits}");
    }
    Ok(Agreement { params, response })
}

/// One element of an extension list.
#[derive(Debug, PartialEq, Eq)]
enum Element {
    /// A permessage-deflate offer, or why it is declined.
    Deflate(Result<Offer, Decline>),
    /// Another extension, or an element without a name.
    Other,
}

/// The elements of one `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
/// `1#( name *( ";" param [ "=" ( token / quoted-string ) ] ) )`, with optional whitespace
/// around the separators. Commas inside quoted strings do not end an element; empty elements
/// are skipped; a malformed element runs to the next comma and is declined.
struct Elements<'a> {
    s: &'a [u8],
    at: usize,
}

impl Iterator for Elements<'_> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        loop {
            self.ows();
            match self.peek() {
                None => return None,
                Some(b',') => self.at += 1,
                Some(_) => break,
            }
        }
        let element = match self.element() {
            Ok(element) => element,
            Err(deflate) => {
                self.skip_element();
                if deflate {
                    Element::Deflate(Err(Decline::Malformed))
                } else {
                    Element::Other
                }
            }
        };
        Some(element)
    }
}

impl<'a> Elements<'a> {
    /// One element, up to and including its comma; `Err(is permessage-deflate)` when
    /// malformed.
    fn element(&mut self) -> Result<Element, bool> {
        let name = self.token().ok_or(false)?;
        let deflate = name.eq_ignore_ascii_case(NAME.as_bytes());
        let mut offer = Ok(Offer::default());
        loop {
            self.ows();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.at += 1;
                    break;
                }
                Some(b';') => self.at += 1,
                Some(_) => return Err(deflate),
            }
            self.ows();
            let param = self.token().ok_or(deflate)?;
            self.ows();
            let value = if self.peek() == Some(b'=') {
                self.at += 1;
                self.ows();
                Some(if self.peek() == Some(b'"') {
                    let unquoted = self.quoted().ok_or(deflate)?;
                    // RFC 6455 9.1: once unescaped, a quoted value must be a token.
                    if !is_token(&unquoted) {
                        return Err(deflate);
                    }
                    unquoted
                } else {
                    self.token().ok_or(deflate)?.to_vec()
                })
            } else {
                None
            };
            if let (true, Ok(o)) = (deflate, &mut offer) {
                if let Err(why) = o.set(param, value.as_deref()) {
                    offer = Err(why);
                }
            }
        }
        Ok(if deflate {
            Element::Deflate(offer)
        } else {
            Element::Other
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| &self.s[start..self.at])
    }

    /// A quoted string, unescaped; `None` when it does not end.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    out.push(self.peek()?);
                    self.at += 1;
                }
                c => out.push(c),
            }
        }
    }

    /// Skips past the next comma outside a quoted string (or to the end).
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                b'\\' if quoted => self.at += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => return,
                _ => {}
            }
        }
    }
}

/// RFC 7230's `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().copied().all(is_tchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: DeflateConfig = DeflateConfig {
        enabled: true,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        level: 1,
        min_size: 1024,
    };

    fn answer(config: &DeflateConfig, values: &[&str]) -> Option<String> {
        negotiate_values(config, values.iter().map(|v| v.as_bytes())).map(|a| a.response)
    }

    fn offers(value: &str) -> Vec<Element> {
        Elements {
            s: value.as_bytes(),
            at: 0,
        }
        .collect()
    }

    #[test]
    fn the_default_is_off_and_its_settings_are_the_documented_ones() {
        let d = DeflateConfig::default();
        assert!(!d.enabled);
        assert_eq!(
            DeflateConfig {
                enabled: true,
                ..d.clone()
            },
            ON
        );
        assert_eq!(answer(&d, &["permessage-deflate"]), None);
    }

    #[test]
    fn negotiation_table() {
        let no_takeover = DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            ..ON
        };
        let small = DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 11,
            ..ON
        };
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        #[rustfmt::skip]
        let table: &[(&DeflateConfig, &[&str], Option<&str>)] = &[
            // Firefox.
            (&ON, &["permessage-deflate"], Some(both)),
            // Chrome.
            (&ON, &["permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // Node's ws client.
            (&ON, &["permessage-deflate; client_max_window_bits=15"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // RFC 7692's example (7.1.3): two offers, the first is acceptable.
            (&ON, &["permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; server_max_window_bits=10; client_max_window_bits=15"))),
            // A server allowing context takeover gives what is asked.
            (&no_takeover, &["permessage-deflate; server_no_context_takeover"],
                Some("permessage-deflate; server_no_context_takeover")),
            (&no_takeover, &["permessage-deflate; client_no_context_takeover"],
                Some("permessage-deflate; client_no_context_takeover")),
            (&no_takeover, &["permessage-deflate"], Some("permessage-deflate")),
            (&no_takeover, &["permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"],
                Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10")),
            // The server's own windows.
            (&small, &["permessage-deflate"], Some(&format!("{both}; server_max_window_bits=10"))),
            (&small, &["permessage-deflate; server_max_window_bits=12; client_max_window_bits"],
                Some(&format!("{both}; server_max_window_bits=10; client_max_window_bits=11"))),
            (&small, &["permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"],
                Some(&format!("{both}; server_max_window_bits=9; client_max_window_bits=9"))),
            // A client may promise a window of 8: we inflate with 15 anyway.
            (&ON, &["permessage-deflate; client_max_window_bits=8"],
                Some(&format!("{both}; client_max_window_bits=8"))),
            // zlib cannot compress with 8 bits: declined, the next offer is taken.
            (&ON, &["permessage-deflate; server_max_window_bits=8"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            // Unknown, duplicate and invalid parameters decline their offer only.
            (&ON, &["permessage-deflate; foo"], None),
            (&ON, &["permessage-deflate; foo=1, permessage-deflate"], Some(both)),
            (&ON, &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], None),
            (&ON, &["permessage-deflate; client_max_window_bits; client_max_window_bits=10"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"], None),
            (&ON, &["permessage-deflate; client_no_context_takeover=1"], None),
            (&ON, &["permessage-deflate; server_no_context_takeover=\"\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=16"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=7"], None),
            (&ON, &["permessage-deflate; server_max_window_bits=010"], None),
            (&ON, &["permessage-deflate; client_max_window_bits=08"], None),
            (&ON, &["permessage-deflate; client_max_window_bits=abc"], None),
            (&ON, &["permessage-deflate; client_max_window_bits="], None),
            (&ON, &["permessage-deflate; client_max_window_bits=-9"], None),
            // Quoted values: allowed, unescaped, and then a token.
            (&ON, &["permessage-deflate; server_max_window_bits=\"10\""],
                Some(&format!("{both}; server_max_window_bits=10"))),
            (&ON, &["permessage-deflate; server_max_window_bits=\"1\\0\""],
                Some(&format!("{both}; server_max_window_bits=10"))),
            (&ON, &["permessage-deflate; server_max_window_bits=\"1 0\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits=\"10"], None),
            // Other extensions are skipped, quoted commas and all.
            (&ON, &["x-webkit-deflate-frame"], None),
            (&ON, &["x-webkit-deflate-frame, permessage-deflate"], Some(both)),
            (&ON, &["foo; bar=\"a,b;c\", permessage-deflate"], Some(both)),
            (&ON, &["foo; bar=\"a,\\\"b\", permessage-deflate; client_max_window_bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            (&ON, &["permessage-foo, deflate-frame"], None),
            // Several header lines, in order; case and whitespace.
            (&ON, &["foo", "permessage-deflate; server_max_window_bits=11"],
                Some(&format!("{both}; server_max_window_bits=11"))),
            (&ON, &["Permessage-Deflate;Client_Max_Window_Bits"],
                Some(&format!("{both}; client_max_window_bits=15"))),
            (&ON, &["  permessage-deflate \t;  server_max_window_bits = 12 ,"],
                Some(&format!("{both}; server_max_window_bits=12"))),
            (&ON, &[",, ,permessage-deflate"], Some(both)),
            // Malformed elements.
            (&ON, &["permessage-deflate;"], None),
            (&ON, &["permessage-deflate; ;server_no_context_takeover"], None),
            (&ON, &["permessage-deflate server_no_context_takeover"], None),
            (&ON, &["permessage-deflate; \"x\""], None),
            (&ON, &["permessage-deflate; server_max_window_bits==10"], None),
            (&ON, &["permessage-deflate; x=\"a, permessage-deflate"], None),
            (&ON, &["permessage-deflate; x=y z, permessage-deflate"], Some(both)),
            (&ON, &["; permessage-deflate"], None),
            (&ON, &["=, permessage-deflate"], Some(both)),
            (&ON, &[""], None),
            (&ON, &[], None),
        ];
        for (config, values, expected) in table {
            assert_eq!(
                answer(config, values).as_deref(),
                *expected,
                "offer {values:?}"
            );
        }
    }

    #[test]
    fn declines_say_why() {
        let declined = |v: &str| match &offers(v)[..] {
            [Element::Deflate(Err(why))] => *why,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(declined("permessage-deflate; foo"), Decline::Unknown);
        assert_eq!(
            declined("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            Decline::Duplicate(CLIENT_NO_CONTEXT_TAKEOVER)
        );
        assert_eq!(
            declined("permessage-deflate; server_max_window_bits"),
            Decline::Invalid(SERVER_MAX_WINDOW_BITS)
        );
        assert_eq!(
            declined("permessage-deflate; server_no_context_takeover=x"),
            Decline::Invalid(SERVER_NO_CONTEXT_TAKEOVER)
        );
        assert_eq!(declined("permessage-deflate; a b"), Decline::Malformed);
        let eight = match &offers("permessage-deflate; server_max_window_bits=8")[..] {
            [Element::Deflate(Ok(offer))] => *offer,
            other => panic!("{other:?}"),
        };
        assert_eq!(accept(&ON, &eight), Err(Decline::Unsupported));
    }

    #[test]
    fn agreed_parameters_follow_the_answer() {
        let a = negotiate_values(
            &DeflateConfig {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 8,
                client_max_window_bits: 8,
                level: 42,
                ..ON
            },
            [b"permessage-deflate; client_max_window_bits".as_slice()],
        )
        .unwrap();
        assert_eq!(
            a.response,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"
        );
        assert_eq!(
            a.params,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 9,
                client_max_window_bits: 9,
                level: 9,
                min_size: 1024,
            }
        );
        assert!(!a.params.compresses(1023) && a.params.compresses(1024));
        // From an `http::HeaderMap`, several lines.
        let mut h = HeaderMap::new();
        h.append(header::SEC_WEBSOCKET_EXTENSIONS, "foo".parse().unwrap());
        h.append(
            header::SEC_WEBSOCKET_EXTENSIONS,
            "permessage-deflate; server_max_window_bits=12"
                .parse()
                .unwrap(),
        );
        let a = negotiate(&ON, &h).unwrap();
        assert_eq!(a.params.server_max_window_bits, 12);
    }

    #[test]
    fn garbage_headers_never_panic() {
        let alphabet = b"permessage-deflate;,=\"\\ \t_client_max_window_bits0123456789\xff";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (x % 48) as usize;
            let value: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Some(a) = negotiate_values(&ON, [value.as_slice()]) {
                // Whatever is accepted answers with a well-formed, acceptable offer.
                let back = offers(&a.response);
                assert!(matches!(&back[..], [Element::Deflate(Ok(_))]), "{value:?}");
            }
        }
    }
}
