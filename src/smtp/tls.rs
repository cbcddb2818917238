//! TLS on the client side: STARTTLS (RFC 3207) and implicit TLS (RFC 8314,
//! "SMTPS" on port 465), with rustls and the ring provider.
//!
//! relayscan is a scanner, not a mail client: it must reach servers with
//! self-signed, expired or mismatched certificates to test them at all. So the
//! certificate *chain* is not verified; it is recorded (subject, issuer, SANs,
//! validity, fingerprint) for the audit to judge. The handshake signatures
//! *are* verified with the provider's algorithms: the server must prove it
//! holds the key of the certificate it showed, or the recorded certificate
//! would mean nothing.
//!
//! The one exception is the `--auth` password: [`Trust`] judges, after the
//! handshake, whether the certificate the server proved it holds verifies for
//! the name the user gave (a CA the user trusts, RFC 5280 paths, RFC 6125 /
//! RFC 7817 name matching, as rustls-webpki does them) or carries a fingerprint the user pinned. Only then may the
//! password go (see `relay::auth`).

use super::Stream;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    ring, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

/// When to use STARTTLS (`--starttls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartTlsMode {
    /// When the server advertises it, or demands it with a `530`.
    #[default]
    Auto,
    /// On every connection, advertised or not; a server that refuses it is not tested.
    Always,
    /// Never: test the plaintext session only.
    Never,
}

/// True when `bytes` look like the start of a TLS record (an alert or a
/// handshake, TLS 1.0-1.3): what a TLS-only service says to a plaintext client.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// What a TLS handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The server's (leaf) certificate, when it sent one.
    pub certificate: Option<Certificate>,
    /// The certificates the server sent, leaf first, for [`Trust::judge`].
    #[serde(skip)]
    pub chain: Vec<CertificateDer<'static>>,
}

/// The facts of a server certificate. Times are RFC 3339 (UTC) and Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// DNS names and addresses from the subjectAltName extension.
    pub sans: Vec<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub not_before_unix: Option<i64>,
    pub not_after_unix: Option<i64>,
    /// Subject and issuer are the same name: nobody vouches for this key.
    pub self_signed: bool,
    /// SHA-256 of the DER certificate, lower-case hex.
    pub sha256: String,
    /// Why the certificate could not be read, when it could not.
    pub parse_error: Option<String>,
}

/// A server certificate verifier that accepts every certificate (it is
/// recorded instead) but checks the handshake signatures.
#[derive(Debug)]
struct RecordEveryCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordEveryCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The one client configuration (TLS 1.2 and 1.3, ring), built on first use.
fn connector() -> Result<TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(ring::default_provider());
        let verifier = Arc::new(RecordEveryCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|builder| {
                Arc::new(
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(verifier)
                        .with_no_client_auth(),
                )
            })
            .map_err(|e| format!("TLS configuration: {e}"))
    });
    config.clone().map(TlsConnector::from)
}

/// The name sent as SNI: the target's host name when we have a valid one,
/// else its address (rustls sends no SNI for an address).
pub fn server_name(host: Option<&str>, ip: std::net::IpAddr) -> ServerName<'static> {
    host.and_then(|h| ServerName::try_from(h.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ip.into()))
}

/// Run the TLS handshake over `stream`. The error is a short description
/// (`tls-error: …`), never a panic, whatever the server sends.
pub async fn handshake(
    stream: Box<dyn Stream>,
    name: ServerName<'static>,
) -> Result<(Box<dyn Stream>, TlsInfo), String> {
    let connector = connector()?;
    let tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| describe_handshake_error(&e))?;
    let (_, session) = tls.get_ref();
    let version = session
        .protocol_version()
        .map(version_name)
        .unwrap_or_else(|| "unknown".into());
    let cipher = session
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    let chain: Vec<CertificateDer<'static>> = session
        .peer_certificates()
        .map(|chain| {
            chain
                .iter()
                .take(16)
                .map(|c| c.clone().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let certificate = chain.first().map(|der| Certificate::from_der(der.as_ref()));
    Ok((
        Box::new(tls),
        TlsInfo {
            version,
            cipher,
            certificate,
            chain,
        },
    ))
}

/// The start of the handshake error when the peer's first bytes were not a
/// TLS record: the service speaks plaintext (SMTP) on this port.
pub const NOT_TLS: &str = "the server did not answer in TLS";

/// A handshake error in words a user can act on. rustls says "received
/// corrupt message of type InvalidContentType" when the first bytes back
/// are not a TLS record (RFC 8446 §5.1): the service speaks plaintext.
fn describe_handshake_error(e: &std::io::Error) -> String {
    use rustls::{Error, InvalidMessage};
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            format!("{NOT_TLS} (it sent something that is not a TLS record)")
        }
        Some(Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion | rustls::AlertDescription::HandshakeFailure,
        )) => format!(
            "{e}: the server offers no TLS version or cipher suite relayscan speaks (TLS 1.2 and 1.3, modern suites)"
        ),
        _ => e.to_string(),
    }
}

/// Why a certificate may carry the `--auth` password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// It chains to a trusted root and is valid for the name.
    Verified,
    /// Its SHA-256 fingerprint was pinned by the user.
    Pinned,
}

/// What the user trusts for the `--auth` password: the Mozilla roots of the
/// `webpki-roots` crate plus the CAs of `--auth-ca`, and the pinned
/// fingerprints of `--auth-pin`.
#[derive(Debug, Clone)]
pub struct Trust {
    verifier: Arc<rustls::client::WebPkiServerVerifier>,
    /// Lower-case hex SHA-256 of pinned certificates.
    pins: Vec<String>,
}

impl Trust {
    /// The public roots, the CA certificates in `ca_pem` (PEM text, each
    /// named by its source for errors), and the pins (hex; `:` allowed).
    pub fn new(ca_pem: &[(String, String)], pins: &[String]) -> Result<Trust, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (source, pem) in ca_pem {
            use rustls_pki_types::pem::PemObject;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("{source}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{source}: not a usable CA certificate: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{source}: no PEM certificate in it"));
            }
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(ring::default_provider()),
        )
        .build()
        .map_err(|e| format!("certificate verifier: {e}"))?;
        let pins = pins
            .iter()
            .map(|p| parse_pin(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Trust { verifier, pins })
    }

    /// Whether the certificate `info` shows may carry the password to `name`
    /// (the name the user gave, or the address when none was), and if not, why.
    pub fn judge(&self, info: &TlsInfo, name: &ServerName<'_>) -> Result<Trusted, String> {
        let Some((leaf, intermediates)) = info.chain.split_first() else {
            return Err("the server sent no certificate".into());
        };
        let fingerprint = hex(&Sha256::digest(leaf.as_ref()));
        if self.pins.contains(&fingerprint) {
            return Ok(Trusted::Pinned);
        }
        match self
            .verifier
            .verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
        {
            Ok(_) => Ok(Trusted::Verified),
            Err(e) => Err(describe_certificate_error(&e)),
        }
    }
}

/// `--auth-pin`: 64 hex digits (colons allowed, as `openssl x509 -fingerprint
/// -sha256` prints them), lower-cased.
pub fn parse_pin(pin: &str) -> Result<String, String> {
    let hex: String = pin.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--auth-pin {pin:?} is not a SHA-256 fingerprint (64 hex digits, like the tls.session.certificate.sha256 of a JSON result)"
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

/// rustls's certificate errors in plain words.
fn describe_certificate_error(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "issued by a CA that is not trusted (a self-signed or private-CA certificate: --auth-ca FILE or --auth-pin SHA256)".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => "not valid for this name".into(),
            C::Expired | C::ExpiredContext { .. } => "expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
            C::Revoked => "revoked".into(),
            C::BadSignature => "bad signature".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// `TLSv1_3` → `TLSv1.3`.
fn version_name(v: rustls::ProtocolVersion) -> String {
    format!("{v:?}").replace('_', ".")
}

impl Certificate {
    /// Read a DER certificate. Unreadable input still yields the fingerprint
    /// and the reason it could not be read.
    pub fn from_der(der: &[u8]) -> Certificate {
        let sha256 = hex(&Sha256::digest(der));
        let mut cert = Certificate {
            subject: None,
            issuer: None,
            sans: Vec::new(),
            not_before: None,
            not_after: None,
            not_before_unix: None,
            not_after_unix: None,
            self_signed: false,
            sha256,
            parse_error: None,
        };
        let parsed = match x509_parser::parse_x509_certificate(der) {
            Ok((_, parsed)) => parsed,
            Err(e) => {
                cert.parse_error = Some(e.to_string());
                return cert;
            }
        };
        cert.subject = Some(parsed.subject().to_string());
        cert.issuer = Some(parsed.issuer().to_string());
        cert.self_signed = parsed.subject().as_raw() == parsed.issuer().as_raw();
        let validity = parsed.validity();
        cert.not_before_unix = Some(validity.not_before.timestamp());
        cert.not_after_unix = Some(validity.not_after.timestamp());
        cert.not_before = cert.not_before_unix.and_then(rfc3339);
        cert.not_after = cert.not_after_unix.and_then(rfc3339);
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            use x509_parser::extensions::GeneralName;
            for name in san.value.general_names.iter().take(64) {
                match name {
                    GeneralName::DNSName(d) => cert.sans.push(format!("DNS:{d}")),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            cert.sans.push(format!("IP:{ip}"));
                        }
                    }
                    GeneralName::RFC822Name(m) => cert.sans.push(format!("email:{m}")),
                    _ => {}
                }
            }
        }
        cert
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Unix seconds as RFC 3339 UTC; `None` before 1970 or beyond what the
/// platform's clock can hold.
fn rfc3339(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok()?;
    let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lab_certificate() {
        let der = crate::lab::tls::certificate_der();
        let cert = Certificate::from_der(&der);
        assert_eq!(cert.parse_error, None);
        assert!(cert.subject.as_deref().unwrap().contains("CN=lab.example"));
        assert!(cert.self_signed);
        assert!(cert.sans.contains(&"DNS:*.lab.example".to_string()));
        assert_eq!(cert.sha256.len(), 64);
        assert!(cert.not_after_unix > cert.not_before_unix);
        assert!(cert.not_after.as_deref().unwrap().starts_with("21"));
    }

    #[test]
    fn garbage_is_a_parse_error_with_a_fingerprint() {
        let cert = Certificate::from_der(b"\x30\x03\x02\x01");
        assert!(cert.parse_error.is_some());
        assert_eq!(
            cert.sha256,
            hex(&Sha256::digest(b"\x30\x03\x02\x01")),
            "the fingerprint is still recorded"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_hostile_der(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let cert = Certificate::from_der(&bytes);
            proptest::prop_assert_eq!(cert.sha256.len(), 64);
        }
    }

    #[test]
    fn names_for_sni() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(matches!(
            server_name(Some("mx.example.org"), ip),
            ServerName::DnsName(_)
        ));
        assert!(matches!(server_name(None, ip), ServerName::IpAddress(_)));
    }
}
