//! The client's TLS: whom it trusts for `wss://` (feature `tls`).

use std::sync::Arc;

use tokio_rustls::rustls::{self, RootCertStore};

/// The trust anchors and settings of a client's `wss://` connections
/// ([`Client::tls`](super::Client::tls)). By default, Mozilla's roots (`webpki-roots`).
///
/// ```
/// use endpoint_runtime::client::{Client, ClientTls};
///
/// // The platform's store (e.g. /etc/ssl/certs), falling back to Mozilla's roots:
/// let client = Client::new().tls(ClientTls::native_roots());
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Mozilla's trust anchors, compiled in (`webpki-roots`). The default.
    pub fn webpki_roots() -> Self {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(roots)
    }

    /// The platform's certificate store (`rustls-native-certs`); Mozilla's roots when it
    /// holds none that load.
    pub fn native_roots() -> Self {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Self::webpki_roots();
        }
        Self::with_roots(roots)
    }

    /// Exactly these roots: a test's own CA, a company's.
    ///
    /// ```
    /// # use endpoint_runtime::client::ClientTls;
    /// use endpoint_runtime::client::RootCertStore;
    /// let mut roots = RootCertStore::empty();
    /// // roots.add(ca_certificate_der)?;
    /// let tls = ClientTls::with_roots(roots);
    /// # drop(tls);
    /// ```
    pub fn with_roots(roots: RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ClientTls {
            config: Arc::new(config),
        }
    }

    /// A rustls configuration built by hand (client certificates, another provider). Its ALPN
    /// list should be empty or `http/1.1`: the client speaks HTTP/1.1.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> Self {
        ClientTls { config }
    }
}

impl Default for ClientTls {
    fn default() -> Self {
        Self::webpki_roots()
    }
}
