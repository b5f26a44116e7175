//! A panicking handler harms only its own session: other sessions keep echoing during and after,
//! the panic reaches that session's `on_error`, and new connections are served.
//!
//! Uses `endpoint::test` (the framework's own `TestServer` and `TestClient`); `common/` only
//! for its lifecycle recorder, fast limits and `bounded`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, fast_limits, Recorder};
use endpoint::prelude::*;
use endpoint::test::{TestClient, TestServer};

struct Fragile {
    rec: Recorder,
}

#[server_endpoint("/fragile")]
impl Fragile {
    #[on_message]
    async fn text(&mut self, text: String) -> String {
        match text.as_str() {
            "panic now" => panic!("sync-looking panic"),
            "panic later" => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                panic!("panic after an await");
            }
            _ => text,
        }
    }

    #[on_error]
    fn error(&mut self, error: &EndpointError) {
        if matches!(error, EndpointError::Panic(_)) {
            self.rec.push(format!("panic:{error}"));
        }
    }

    #[on_close]
    fn close(&mut self, reason: CloseReason) {
        self.rec.push(format!("close:{}", reason.code().as_u16()));
    }
}

/// Sends `text` and returns the text answer.
async fn roundtrip(client: &mut TestClient, text: impl Into<String>) -> String {
    client.send(text.into()).await.unwrap();
    client.recv_text().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_handler_does_not_disturb_other_sessions() {
    let rec = Recorder::new();
    let r = rec.clone();
    let server = TestServer::start(
        Server::new()
            .limits(fast_limits())
            .endpoint_with(move |_| Fragile { rec: r.clone() }),
    )
    .await;

    // A bystander echoes without pause during the whole test.
    let mut bystander = server.connect("/fragile").await;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let echoing = tokio::spawn(async move {
        let mut n = 0u32;
        while !stop2.load(Ordering::SeqCst) {
            let text = format!("echo {n}");
            assert_eq!(roundtrip(&mut bystander, text.clone()).await, text);
            n += 1;
        }
        (bystander, n)
    });

    for i in 0..6 {
        let mut victim = server.connect("/fragile").await;
        assert_eq!(roundtrip(&mut victim, "hello").await, "hello");
        victim
            .send(if i % 2 == 0 {
                "panic now"
            } else {
                "panic later"
            })
            .await
            .unwrap();
        // The server's close frame, and the connection's end.
        victim.expect_close_code(CloseCode::INTERNAL_ERROR).await;
    }
    rec.wait_count("close:1011", 6).await;
    assert_eq!(rec.count("panic:handler panicked: sync-looking panic"), 3);
    assert_eq!(rec.count("panic:handler panicked: panic after an await"), 3);

    stop.store(true, Ordering::SeqCst);
    let (mut bystander, n) = bounded("bystander", echoing)
        .await
        .expect("bystander kept echoing");
    assert!(n > 0);
    // After the panics: the bystander and a newcomer are served.
    assert_eq!(roundtrip(&mut bystander, "after").await, "after");
    let mut newcomer = server.connect("/fragile").await;
    assert_eq!(roundtrip(&mut newcomer, "new").await, "new");
    assert_eq!(rec.count("close:"), 6, "only the victims closed");
}
