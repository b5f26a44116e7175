//! TLS (`wss://`) with rustls, behind the `tls` cargo feature.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use endpoint_runtime::{tls::TlsConfig, Server};
//!
//! let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
//! let server = Server::new().tls(tls).bind("0.0.0.0:8443").await?;
//! server.run_until(endpoint_runtime::shutdown_signal()).await
//! # }
//! ```
//!
//! The server offers `h2` and `http/1.1` by ALPN (just `http/1.1` with
//! [`Server::http2(false)`](crate::Server::http2)); browsers then open their WebSockets over
//! HTTP/2 (RFC 8441).
//!
//! The TLS handshake counts against [`Limits::handshake_timeout`](crate::Limits::handshake_timeout)
//! like the HTTP request head: a client that stalls it is cut off.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// A server certificate chain and key, ready to serve `wss://`.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// Whether the ALPN list is ours (`from_pem`), to be completed with `h2` when the server
    /// serves HTTP/2; a configuration from [`TlsConfig::from_rustls`] is used as given.
    default_alpn: bool,
}

impl TlsConfig {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1)
    /// from files.
    ///
    /// # Errors
    /// `NotFound`/`InvalidData` when a file is missing, holds no certificate or key, or the key
    /// does not match the certificate.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        Self::from_pem(&read(cert.as_ref())?, &read(key.as_ref())?)
    }

    /// Builds the configuration from PEM text.
    ///
    /// # Errors
    /// `InvalidData` when the PEM holds no certificate or key, or they do not match.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Self> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("bad certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no certificate found in the PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| invalid(format!("bad private key PEM: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(format!("certificate and key do not fit: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
            default_alpn: true,
        })
    }

    /// The ALPN list for a server with or without HTTP/2: `h2` first when it has it.
    pub(crate) fn with_h2(self, http2: bool) -> Self {
        if !self.default_alpn || !http2 {
            return self;
        }
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsConfig {
            config: Arc::new(config),
            default_alpn: true,
        }
    }

    /// Uses a rustls configuration built by hand (client auth, several certificates, ...). Its
    /// ALPN list is used as it is: it should contain `http/1.1` if it is not empty, and `h2`
    /// for WebSockets over HTTP/2 (see [`Server::http2`](crate::Server::http2)).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig {
            config,
            default_alpn: false,
        }
    }
}
