//! TLS test support: a throw-away CA and a server certificate for `127.0.0.1` and
//! `localhost`, made with rcgen when a test runs, and rustls client configurations trusting
//! that CA.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tempfile::TempDir;
use tokio_rustls::rustls;

/// A CA and a server certificate signed by it, written as PEM files into a temp directory.
pub struct TestCerts {
    /// The CA certificate in PEM (what clients trust).
    pub ca_pem: String,
    /// Server certificate chain file (PEM).
    pub cert_path: PathBuf,
    /// Server private key file (PEM, PKCS#8).
    pub key_path: PathBuf,
    dir: TempDir,
}

impl TestCerts {
    /// Generates a fresh CA and a server certificate for `127.0.0.1` and `localhost`.
    pub fn generate() -> TestCerts {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "broker test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let key = rcgen::KeyPair::generate().expect("server key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign server");
        let dir = tempfile::Builder::new()
            .prefix("broker-tls-")
            .tempdir()
            .expect("temp dir");
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        TestCerts {
            ca_pem: ca.pem(),
            cert_path,
            key_path,
            dir,
        }
    }

    /// A path inside the certificates' temp directory (for bad-input files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets `config` to use these files for TLS.
    pub fn configure(&self, config: &mut broker::Config) {
        config.tls_cert = Some(self.cert_path.clone());
        config.tls_key = Some(self.key_path.clone());
    }

    /// A rustls client configuration (ring provider) trusting only the test CA, offering
    /// `alpn` protocols.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM");
        roots.add(ca).expect("add CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection to `addr` (server name `127.0.0.1`) trusting the test CA.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
        alpn: &[&[u8]],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let connector = tokio_rustls::TlsConnector::from(self.client_config(alpn));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        connector.connect(name, tcp).await
    }
}
