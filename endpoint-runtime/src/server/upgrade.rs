//! The upgrade of one request to an endpoint, in two steps: [`negotiate`] decides (validation,
//! shutdown, origins, the configurator, the subprotocol, a connection slot) and may refuse;
//! [`accept`] creates the session, starts its connection task and answers `101` (over HTTP/2,
//! an extended CONNECT, `200`: the same checks, the same session). Every refusal
//! goes through [`reject`]: counted, logged, answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::Request;
use tracing::debug;

use super::mount::Route;
use super::state::{HttpResponse, ServerState};
use crate::configurator::HandshakeRequest;
use crate::connection::ConnectionSlot;
use crate::protocol::deflate::{self, Agreement, Sharing};
use crate::protocol::handshake::{self, Rejection};
use crate::router::Match;
use crate::session::{Properties, RequestInfo, Session};

/// Upgrades `req` to the endpoint the router found, or refuses it.
pub(crate) fn upgrade<B>(
    server: &Arc<ServerState>,
    req: Request<B>,
    found: Match<'_, Route>,
    remote: Option<SocketAddr>,
    secure: bool,
) -> HttpResponse {
    match negotiate(server, req, found, remote) {
        Ok(negotiated) => accept(server, negotiated, remote, secure),
        Err(refusal) => reject(server, refusal.rejection, &refusal.path, remote),
    }
}

/// An upgrade that passed every check, holding its connection slot.
pub(crate) struct Negotiated<'a> {
    route: &'a Route,
    request: HandshakeRequest,
    on_upgrade: hyper::upgrade::OnUpgrade,
    /// `None` over HTTP/2 (answered `200`, RFC 8441).
    accept_key: Option<String>,
    protocol: Option<String>,
    /// permessage-deflate, when an offer was accepted.
    deflate: Option<Agreement>,
    slot: ConnectionSlot,
}

/// Why `negotiate` refused, and the request's path (for the log). Boxed where returned: the
/// refusal is the cold path.
struct Refusal {
    rejection: Rejection,
    path: String,
}

/// Every check an upgrade passes before the `101`, in order: the handshake itself (RFC 6455
/// 4.2.1), the server not shutting down, the allowed origins, the configurator's origin check
/// and `modify_handshake`, the subprotocol, permessage-deflate, and a free connection slot.
fn negotiate<'a, B>(
    server: &Arc<ServerState>,
    mut req: Request<B>,
    found: Match<'a, Route>,
    remote: Option<SocketAddr>,
) -> Result<Negotiated<'a>, Box<Refusal>> {
    let refuse = |rejection: Rejection, path: &str| {
        Box::new(Refusal {
            rejection,
            path: path.to_owned(),
        })
    };
    let upgrade = match handshake::validate(&req) {
        Ok(u) => u,
        Err(r) => return Err(refuse(r, req.uri().path())),
    };
    if server.is_shutting_down() {
        return Err(refuse(Rejection::Overloaded, req.uri().path()));
    }
    let route = found.value;
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if let (Some(allowed), Some(origin)) = (&server.allowed_origins, origin) {
        let origin = origin.trim_end_matches('/');
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            let why = format!("origin `{origin}` is not allowed\n");
            let rejection = Rejection::Status(http::StatusCode::FORBIDDEN, why);
            return Err(refuse(rejection, req.uri().path()));
        }
    }
    let configurator = route.mount.configurator();
    if let Some(c) = configurator {
        if !c.check_origin(origin) {
            let why = "origin refused by the endpoint's configurator\n".to_owned();
            let rejection = Rejection::Status(http::StatusCode::FORBIDDEN, why);
            return Err(refuse(rejection, req.uri().path()));
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    let mut request = HandshakeRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        path_params: found.params,
        remote_addr: remote,
        requested_protocols: upgrade.client_protocols,
        properties: Properties::default(),
        response_headers: http::HeaderMap::new(),
        state: server.state.clone(),
    };
    let supported = route.mount.config().subprotocols;
    let protocol = match configurator {
        Some(c) => {
            if let Err(rejection) = c.modify_handshake(&mut request) {
                return Err(refuse(rejection, request.uri.path()));
            }
            c.select_subprotocol(&request.requested_protocols, supported)
        }
        None => handshake::choose_subprotocol(&request.requested_protocols, supported),
    };
    let compression = route
        .mount
        .config()
        .resolve_compression(&server.limits().compression);
    let deflate = deflate::negotiate(&compression, &request.headers);
    let Some(slot) = ConnectionSlot::acquire(&server.connections) else {
        return Err(refuse(Rejection::Overloaded, request.uri.path()));
    };
    Ok(Negotiated {
        route,
        request,
        on_upgrade,
        accept_key: upgrade.accept,
        protocol,
        deflate,
        slot,
    })
}

/// Creates the session, starts its connection task and answers `101 Switching Protocols`.
fn accept(
    server: &Arc<ServerState>,
    negotiated: Negotiated<'_>,
    remote: Option<SocketAddr>,
    secure: bool,
) -> HttpResponse {
    let Negotiated {
        route,
        request,
        on_upgrade,
        accept_key,
        protocol,
        deflate,
        slot,
    } = negotiated;
    // Copied into one compact block: hyper's parsed URI and header values point into its 8 KiB
    // read buffer, which would stay allocated for as long as the session kept them.
    let info = RequestInfo::new(
        &request.uri,
        &request.headers,
        &request.path_params,
        remote,
        protocol.as_deref(),
        deflate.as_ref().map(|a| a.packed),
        secure,
    );
    let limits = server.limits();
    let params = deflate.as_ref().map(|a| a.params);
    let session = Session::new(
        info,
        request.properties,
        route.registry.clone(),
        limits.outbound_queue_bytes,
        limits.idle_timeout,
        Sharing::of(params.as_ref()),
    );
    server.counters().accepted.fetch_add(1, Ordering::Relaxed);
    // A WebSocket task is tracked for the drain but not wrapped in a cancellation check: that
    // would cost a lock on a shared `Notify` at every poll of every session. It is aborted
    // through its handle when the drain ends instead.
    let connections = server.connections.clone();
    let handle = route.mount.start(
        &server.tracker,
        on_upgrade,
        session.clone(),
        slot,
        connections,
        params,
    );
    session.set_task(handle);
    let mut response = handshake::switching_protocols(accept_key.as_deref(), protocol.as_deref());
    if let Some(agreement) = deflate {
        if let Ok(value) = http::HeaderValue::from_str(&agreement.response) {
            response
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    response.headers_mut().extend(request.response_headers);
    response
}

/// Refuses a request: counted in [`Stats::rejected`](crate::Stats::rejected), logged at
/// `debug`, answered with the rejection's status and reason.
pub(crate) fn reject(
    server: &ServerState,
    rejection: Rejection,
    path: &str,
    remote: Option<SocketAddr>,
) -> HttpResponse {
    server.counters().reject(rejection.reason());
    debug!(
        ?remote,
        path,
        status = rejection.status().as_u16(),
        reason = rejection.reason(),
        "handshake refused"
    );
    rejection.into_response()
}
