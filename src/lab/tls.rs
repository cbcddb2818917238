//! TLS for the lab's simulated servers. Two identities, both embedded in the
//! binary and both for `lab.example` and `*.lab.example` (ECDSA P-256, valid
//! for a century); the keys protect nothing but loopback test traffic, so
//! they can be public.
//!
//! - [`Identity::SelfSigned`] (the default): one self-signed certificate, made with
//!   `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
//!   -subj "/O=relayscan lab/CN=lab.example" -addext "subjectAltName=DNS:lab.example,DNS:*.lab.example"`.
//!   Nobody vouches for it: `--auth` sends no password to it unless its
//!   fingerprint is pinned (`--auth-pin`) or `--auth-insecure` is given.
//! - [`Identity::CaSigned`]: a certificate issued by the lab's own CA
//!   (`tls/ca.pem`, `CN=relayscan lab CA`; basicConstraints CA:TRUE,
//!   keyCertSign), with `CA:FALSE`, `serverAuth` and the same names. It
//!   verifies with `--auth-ca src/lab/tls/ca.pem` for any name under
//!   `lab.example`, and for nothing else. Made with `openssl req -x509` for
//!   the CA and `openssl x509 -req -CA ca.pem` for the leaf; the CA's key
//!   was thrown away.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

const CERT_PEM: &str = include_str!("tls/cert.pem");
const KEY_PEM: &str = include_str!("tls/key.pem");
const SIGNED_CERT_PEM: &str = include_str!("tls/signed-cert.pem");
const SIGNED_KEY_PEM: &str = include_str!("tls/signed-key.pem");
/// The lab CA's certificate (PEM), for `--auth-ca`.
pub const CA_PEM: &str = include_str!("tls/ca.pem");

/// Which certificate a lab server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Identity {
    /// The self-signed certificate.
    #[default]
    SelfSigned,
    /// The certificate issued by the lab CA ([`CA_PEM`]).
    CaSigned,
}

/// The self-signed lab certificate, DER-encoded (empty if the embedded PEM were broken).
pub fn certificate_der() -> Vec<u8> {
    der_of(CERT_PEM)
}

/// The CA-signed lab certificate, DER-encoded.
pub fn signed_certificate_der() -> Vec<u8> {
    der_of(SIGNED_CERT_PEM)
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default()
}

/// The lab's TLS acceptor for `identity`, built on first use.
pub fn acceptor(identity: Identity) -> Result<TlsAcceptor, String> {
    static SELF_SIGNED: OnceLock<Result<TlsAcceptor, String>> = OnceLock::new();
    static CA_SIGNED: OnceLock<Result<TlsAcceptor, String>> = OnceLock::new();
    match identity {
        Identity::SelfSigned => SELF_SIGNED.get_or_init(|| build(CERT_PEM, KEY_PEM)),
        Identity::CaSigned => CA_SIGNED.get_or_init(|| build(SIGNED_CERT_PEM, SIGNED_KEY_PEM)),
    }
    .clone()
}

fn build(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let cert = CertificateDer::from_pem_slice(cert.as_bytes())
        .map_err(|e| format!("lab certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| format!("lab key: {e}"))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("lab certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_certificates_and_keys_load() {
        assert!(acceptor(Identity::SelfSigned).is_ok());
        assert!(acceptor(Identity::CaSigned).is_ok());
        assert!(!certificate_der().is_empty());
        assert!(!signed_certificate_der().is_empty());
        assert!(!der_of(CA_PEM).is_empty());
    }
}
