//! The public types are `Send`/`Sync`/`Clone` where the contract says so, and the futures users
//! spawn are `Send`. A regression here is a compile error of this file.

#![allow(dead_code)]

use endpoint::prelude::*;
use endpoint::{
    BoundServer, DecodeError, Limits, PayloadKind, Properties, Rejection, SendError, SessionId,
};

fn send<T: Send>() {}
fn send_sync<T: Send + Sync>() {}
fn clone<T: Clone>() {}
fn copy<T: Copy>() {}
fn is_send<T: Send>(_: &T) {}

struct Db;

#[test]
fn session_is_clone_send_sync() {
    send_sync::<Session>();
    clone::<Session>();
    send_sync::<SessionId>();
    copy::<SessionId>();
    send_sync::<Properties>();
}

#[test]
fn handshake_is_clone_send_sync() {
    send_sync::<Handshake>();
    clone::<Handshake>();
}

#[test]
fn messages_and_close_reasons_are_clone_send_sync() {
    send_sync::<Message>();
    clone::<Message>();
    send_sync::<Pong>();
    clone::<Pong>();
    send_sync::<CloseReason>();
    clone::<CloseReason>();
    send_sync::<CloseCode>();
    copy::<CloseCode>();
    send_sync::<PayloadKind>();
    copy::<PayloadKind>();
}

#[test]
fn errors_are_send_sync() {
    send_sync::<EndpointError>();
    send_sync::<DecodeError>();
    clone::<DecodeError>();
    send_sync::<SendError>();
    clone::<SendError>();
    send_sync::<Rejection>();
    // Usable as boxed errors, e.g. with `?` into `Box<dyn Error + Send + Sync>`.
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(EndpointError::InvalidUtf8);
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(SendError::Closed);
}

#[test]
fn state_is_clone_send_sync() {
    send_sync::<State<Db>>();
    clone::<State<Db>>();
}

#[test]
fn server_types_are_send() {
    send::<Server>();
    send::<BoundServer>();
    send_sync::<Limits>();
    clone::<Limits>();
}

/// Never called: compiling it proves the futures are `Send` (spawnable on a multi-thread runtime).
async fn futures_are_send(session: Session, bound: BoundServer) {
    is_send(&session.send("x"));
    is_send(&Server::new().bind("127.0.0.1:0"));
    is_send(&bound.run_until(async {}));
    is_send(&endpoint::shutdown_signal());
}

#[tokio::test]
async fn a_bound_server_runs_on_a_spawned_task() {
    let bound = Server::new().bind("127.0.0.1:0").await.unwrap();
    let task = tokio::spawn(bound.run_until(async {}));
    task.await.unwrap().unwrap();
}
