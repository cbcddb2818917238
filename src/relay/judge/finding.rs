//! The findings an audit can report: ids, severities, one finding.

use serde::Serialize;

/// What can be found. The kebab-case names are the `id` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum FindingId {
    /// A direct relay test was accepted.
    OpenRelay,
    /// Only an address trick was accepted.
    PossibleRelay,
    /// Relaying was accepted after a deliberately wrong password (A2).
    RelayAfterFailedAuth,
    /// AUTH PLAIN or LOGIN offered on an unencrypted connection.
    PlaintextAuth,
    /// Neither STARTTLS nor implicit TLS.
    NoTls,
    /// STARTTLS was refused or its handshake failed.
    TlsFailed,
    /// The server demands STARTTLS, and relaying could not be tested over TLS.
    TlsUntested,
    /// Plaintext after `220 Ready to start TLS`, before the handshake.
    #[serde(rename = "starttls-injection")]
    StartTlsInjection,
    CertificateExpired,
    SelfSignedCertificate,
    /// A1 refused: an authenticated user cannot relay.
    AuthenticatedRelayRefused,
    /// AUTH with the given credentials failed.
    AuthFailed,
    /// NTLM / GSSAPI (Integrated Windows Authentication) offered: noted, not a problem.
    WindowsIntegratedAuth,
}

impl FindingId {
    pub const ALL: [FindingId; 13] = [
        FindingId::OpenRelay,
        FindingId::PossibleRelay,
        FindingId::RelayAfterFailedAuth,
        FindingId::PlaintextAuth,
        FindingId::NoTls,
        FindingId::TlsFailed,
        FindingId::TlsUntested,
        FindingId::StartTlsInjection,
        FindingId::CertificateExpired,
        FindingId::SelfSignedCertificate,
        FindingId::AuthenticatedRelayRefused,
        FindingId::AuthFailed,
        FindingId::WindowsIntegratedAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingId::OpenRelay => "open-relay",
            FindingId::PossibleRelay => "possible-relay",
            FindingId::RelayAfterFailedAuth => "relay-after-failed-auth",
            FindingId::PlaintextAuth => "plaintext-auth",
            FindingId::NoTls => "no-tls",
            FindingId::TlsFailed => "tls-failed",
            FindingId::TlsUntested => "tls-untested",
            FindingId::StartTlsInjection => "starttls-injection",
            FindingId::CertificateExpired => "certificate-expired",
            FindingId::SelfSignedCertificate => "self-signed-certificate",
            FindingId::AuthenticatedRelayRefused => "authenticated-relay-refused",
            FindingId::AuthFailed => "auth-failed",
            FindingId::WindowsIntegratedAuth => "windows-integrated-auth",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    /// What was seen, in one sentence.
    pub summary: String,
    /// How to fix it on the detected software (none for informational findings).
    pub remediation: Option<&'static str>,
}
