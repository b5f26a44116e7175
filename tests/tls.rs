//! `wss://`: a TLS server with a self-signed certificate made in the test, and a real client.
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use endpoint::prelude::*;
use endpoint::tls::TlsConfig;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Default)]
struct SecureEcho;

#[server_endpoint("/echo.do")]
impl SecureEcho {
    #[on_message]
    fn text(&mut self, session: &Session, text: String) -> String {
        format!("{text} secure={}", session.is_secure())
    }
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key_pem = cert.signing_key.serialize_pem();
    let dir = std::env::temp_dir().join(format!("endpoint-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &key_pem).unwrap();
    let tls = TlsConfig::from_pem_files(dir.join("cert.pem"), dir.join("key.pem")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let server = Server::new()
        .endpoint::<SecureEcho>()
        .tls(tls)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = tokio::spawn(server.run());

    // A client that trusts exactly this certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls_stream = connector.connect(name, tcp).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async("wss://localhost/echo.do", tls_stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);

    ws.send(WsMessage::text("hello")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, WsMessage::text("hello secure=true"));

    // A plain-text client cannot talk to the TLS port.
    let plain = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(format!("ws://{addr}/echo.do")),
    )
    .await
    .unwrap();
    assert!(
        plain.is_err(),
        "plain ws:// must fail against a wss:// server"
    );

    handle.shutdown();
    ws.close(None).await.ok();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn bad_pem_is_a_clear_error() {
    let err = TlsConfig::from_pem(b"not a certificate", b"not a key").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("certificate"), "{err}");
    let missing =
        TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/cert.pem"),
        "{missing}"
    );
}
