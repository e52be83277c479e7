//! TLS for the AMQPS, MQTTS and HTTPS listeners: rustls with the ring provider, a server
//! certificate chain and private key read from PEM files.
//!
//! A handshake that fails (plain text sent to a TLS port, an unknown CA on the client side, a
//! client that never finishes) is logged and the socket closed; it never affects the listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the certificate and the key was given.
    #[error("TLS needs both --tls-cert and --tls-key (only {given} was given)")]
    Incomplete {
        /// The flag that was given.
        given: &'static str,
    },
    /// `--http-tls` without a certificate and key.
    #[error("--http-tls needs --tls-cert and --tls-key")]
    HttpWithoutCert,
    /// The certificate file could not be read or holds no PEM certificate.
    #[error("cannot read TLS certificate file {path}: {message}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key file could not be read or holds no PEM private key.
    #[error("cannot read TLS key file {path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (the key does not match the certificate, unsupported key type).
    #[error("invalid TLS certificate {cert} or key {key}: {message}")]
    Invalid {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        message: String,
    },
}

/// Server-side TLS configurations built from one certificate and key.
#[derive(Clone)]
pub struct TlsAcceptors {
    /// For AMQPS and MQTTS (no ALPN).
    pub stream: TlsAcceptor,
    /// For HTTPS (ALPN `http/1.1`).
    pub http: TlsAcceptor,
}

impl std::fmt::Debug for TlsAcceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptors").finish_non_exhaustive()
    }
}

impl TlsAcceptors {
    /// Reads the PEM certificate chain (server certificate first) and private key (PKCS#8,
    /// PKCS#1 or SEC1) and builds the acceptors.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptors, TlsError> {
        let cert_err = |message: String| TlsError::Cert {
            path: cert.to_path_buf(),
            message,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_err("no PEM certificate in the file".into()));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |e: rustls::Error| TlsError::Invalid {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: e.to_string(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(invalid)?;
        let mut http = config.clone();
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptors {
            stream: TlsAcceptor::from(Arc::new(config)),
            http: TlsAcceptor::from(Arc::new(http)),
        })
    }
}

/// Runs the server side of the handshake on an accepted socket. Failures and timeouts are
/// logged (with the listener's name) and give `None`; the socket is then dropped (closed).
pub async fn handshake(
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    peer: SocketAddr,
    listener: &'static str,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::info!(%peer, listener, error = %e, "TLS handshake failed; closing");
            None
        }
        Err(_) => {
            tracing::info!(%peer, listener, "TLS handshake timed out; closing");
            None
        }
    }
}

/// The HTTPS listener of the management API: a task accepts TCP connections and runs each
/// handshake in its own task (so a slow client does not hold up the others); axum takes the
/// finished TLS streams from here.
pub struct HttpsListener {
    streams: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    /// Starts accepting on `listener` (until the core shuts down) with `tls`.
    pub fn start(
        core: &Arc<crate::core::Core>,
        listener: tokio::net::TcpListener,
        tls: TlsAcceptor,
    ) -> std::io::Result<HttpsListener> {
        let local = listener.local_addr()?;
        let (tx, streams) = tokio::sync::mpsc::channel(64);
        core.tasks.spawn(crate::listener::accept_loop(
            core.clone(),
            listener,
            move |socket, peer| {
                let tls = tls.clone();
                let tx = tx.clone();
                async move {
                    if let Some(stream) = handshake(&tls, socket, peer, "https").await {
                        // Closed only when the server stopped: the stream is then dropped.
                        let _ = tx.send((stream, peer)).await;
                    }
                }
            },
        ));
        Ok(HttpsListener { streams, local })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.streams.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
