//! The AUTH audit: what the advertised SASL mechanisms mean, and the facts of
//! the authenticated relay tests run with `--auth`.
//!
//! Microsoft's guide to closing an IIS SMTP relay comes down to: require
//! authentication, clear anonymous access, and relay only for listed hosts
//! plus "all computers which successfully authenticate". Two tests check the
//! last point from outside, each on a fresh connection:
//!
//! - `A2`: AUTH with the user's name and a deliberately wrong password, then
//!   a relay attempt. It must be refused: a server that relays after a
//!   *failed* AUTH is open to anyone who types any password.
//! - `A1`: AUTH with the right password, then the same relay attempt. It is
//!   expected to be accepted; when it is not, authenticated users cannot send.

use super::catalogue::{Kind, RelayTest};
use super::classify::Outcome;
use super::facts::{Facts, TestFacts};
use crate::smtp::Reply;
use serde::Serialize;

/// A1: relay after a successful AUTH (expected to be accepted).
pub const AUTHENTICATED_RELAY: RelayTest = RelayTest {
    id: "A1",
    kind: Kind::Auth,
    sender: &["<{s}@{D}>"],
    recipient: "<{u}@{D}>",
};

/// A2: relay after AUTH with a wrong password (must be refused).
pub const RELAY_AFTER_FAILED_AUTH: RelayTest = RelayTest {
    id: "A2",
    kind: Kind::Auth,
    sender: &["<{s}@{D}>"],
    recipient: "<{u}@{D}>",
};

/// One AUTH attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthAttempt {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: &'static str,
    /// The connection was encrypted (STARTTLS or implicit TLS).
    pub encrypted: bool,
    /// The server's final reply (`235` success, `535` bad credentials).
    pub reply: Option<Reply>,
    /// The session error that cut the exchange short.
    pub error: Option<String>,
}

impl AuthAttempt {
    pub fn succeeded(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.code == 235)
    }
}

/// What the authenticated relay tests saw. The password is never here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthFacts {
    /// The user name given with `--auth`.
    pub user: String,
    /// AUTH with a deliberately wrong password.
    pub wrong_password: Option<AuthAttempt>,
    /// A2: the relay attempt after it.
    pub after_failed_auth: Option<TestFacts>,
    /// AUTH with the right password.
    pub login: Option<AuthAttempt>,
    /// A1: the relay attempt after it.
    pub authenticated_relay: Option<TestFacts>,
    /// Why a test did not run.
    pub skipped: Vec<String>,
}

/// SASL mechanisms that carry the password in the clear (base64 is no
/// encryption): offered without TLS, a password can be sniffed.
pub const PLAINTEXT_MECHANISMS: &[&str] = &["PLAIN", "LOGIN"];

/// Windows Integrated authentication: NTLM and Kerberos (GSSAPI), what IIS
/// and Exchange call "Integrated Windows Authentication".
pub const WINDOWS_INTEGRATED: &[&str] = &["NTLM", "GSSAPI"];

/// The mechanisms of `advertised` that send the password in the clear.
pub fn plaintext_mechanisms(advertised: &[String]) -> Vec<String> {
    advertised
        .iter()
        .filter(|m| PLAINTEXT_MECHANISMS.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// The mechanisms of `advertised` that are Windows Integrated authentication.
pub fn windows_integrated(advertised: &[String]) -> Vec<String> {
    advertised
        .iter()
        .filter(|m| WINDOWS_INTEGRATED.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// A2 accepted: the server relays after a failed AUTH.
pub fn relay_after_failed_auth(facts: &Facts) -> Option<&TestFacts> {
    facts
        .auth
        .as_ref()
        .and_then(|a| a.after_failed_auth.as_ref())
        .filter(|t| Outcome::of(t) == Outcome::Accepted)
}

/// The AUTH mechanisms advertised before TLS and, when TLS was used, after it.
pub fn mechanisms(facts: &Facts) -> (Vec<String>, Option<Vec<String>>) {
    let before = facts.greeting.capabilities.auth.clone();
    let after = facts
        .tls
        .as_ref()
        .and_then(|t| t.capabilities.as_ref())
        .map(|c| c.auth.clone());
    (before, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_kinds() {
        let iis: Vec<String> = ["GSSAPI", "NTLM", "LOGIN"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(plaintext_mechanisms(&iis), vec!["LOGIN"]);
        assert_eq!(windows_integrated(&iis), vec!["GSSAPI", "NTLM"]);
        assert!(plaintext_mechanisms(&["CRAM-MD5".to_string()]).is_empty());
    }
}
