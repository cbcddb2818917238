//! TLS for the lab's simulated servers: one fixed, self-signed certificate
//! for `lab.example` and `*.lab.example` (ECDSA P-256, valid for a century),
//! embedded in the binary. It was made once with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
//! -subj "/O=relayscan lab/CN=lab.example" -addext "subjectAltName=DNS:lab.example,DNS:*.lab.example"`;
//! the key protects nothing but loopback test traffic, so it can be public.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

const CERT_PEM: &str = include_str!("tls/cert.pem");
const KEY_PEM: &str = include_str!("tls/key.pem");

/// The lab certificate, DER-encoded (empty if the embedded PEM were broken).
pub fn certificate_der() -> Vec<u8> {
    CertificateDer::from_pem_slice(CERT_PEM.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default()
}

/// The lab's TLS acceptor, built on first use.
pub fn acceptor() -> Result<TlsAcceptor, String> {
    static ACCEPTOR: OnceLock<Result<TlsAcceptor, String>> = OnceLock::new();
    ACCEPTOR
        .get_or_init(|| {
            let cert = CertificateDer::from_pem_slice(CERT_PEM.as_bytes())
                .map_err(|e| format!("lab certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes())
                .map_err(|e| format!("lab key: {e}"))?;
            let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .map_err(|e| format!("lab certificate: {e}"))?;
            Ok(TlsAcceptor::from(Arc::new(config)))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_certificate_and_key_load() {
        assert!(super::acceptor().is_ok());
        assert!(!super::certificate_der().is_empty());
    }
}
