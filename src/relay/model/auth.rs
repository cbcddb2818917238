//! AUTH as data: the authenticated relay tests (A1, A2), the SASL mechanism
//! lists, and the rules for where the `--auth` password may go. The facts
//! of the tests are in [`super::facts`]; what they mean is the judge's.
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
//!
//! The password goes only where the user sent it ([`PasswordRules`]): to a
//! host the user named for it (`check`'s one host, `scan --auth-host`), over
//! TLS whose certificate verifies for the name the user gave (or whose
//! SHA-256 fingerprint the user pinned). RFC 4954 §4 requires a client to
//! protect PLAIN and LOGIN with TLS; RFC 8314 §4.4 (with RFC 7817's name
//! rules) says a mail client must validate the server's certificate for
//! that protection to mean anything:
//! encrypted to an unverified peer is encrypted to whoever answered. Anything
//! else needs `--auth-insecure`, recorded in the result.
//!
//! A2 sends no secret, so it runs on every host that offers AUTH: its
//! password is random. Its *user name* is the user's only where the real
//! password may go too; elsewhere it is random as well, because an account
//! name sprayed over a range tells every host (and anyone in between) whom to
//! try passwords on, and counts failed logins against the account. A server
//! that relays after a failed AUTH does so whatever the name.

use super::catalogue::{Kind, RelayTest};
use crate::smtp::tls::{TlsInfo, Trust, Trusted};
use std::net::IpAddr;
use std::sync::Arc;

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

/// Why the real password may go to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Named host, certificate verified for the name.
    VerifiedCertificate,
    /// Named host, certificate fingerprint pinned.
    PinnedCertificate,
    /// `--auth-insecure`: the user waived a check.
    Insecure,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::VerifiedCertificate => "verified-certificate",
            Rule::PinnedCertificate => "pinned-certificate",
            Rule::Insecure => "insecure",
        }
    }
}

/// A host the user named for the password (`--auth-host`, or `check`'s target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthHost {
    /// A host name, lower case, without the final dot.
    Name(String),
    Addr(IpAddr),
}

impl AuthHost {
    /// `mail.example.org`, `192.0.2.1`, `[2001:db8::1]`; `None` for anything else.
    pub fn parse(s: &str) -> Option<AuthHost> {
        let bare = s.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(AuthHost::Addr(ip));
        }
        crate::smtp::hostname::fqdn(s.trim().trim_end_matches('.'))
            .map(|n| AuthHost::Name(n.trim_end_matches('.').to_ascii_lowercase()))
    }

    /// This is the target: the same name, or the same address.
    pub fn names(&self, name: Option<&str>, ip: IpAddr) -> bool {
        match self {
            AuthHost::Addr(a) => *a == ip,
            AuthHost::Name(n) => {
                name.is_some_and(|t| t.trim_end_matches('.').eq_ignore_ascii_case(n))
            }
        }
    }
}

impl std::fmt::Display for AuthHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthHost::Name(n) => f.write_str(n),
            AuthHost::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// Where the `--auth` password may go.
#[derive(Debug, Clone, Default)]
pub struct PasswordRules {
    /// The hosts named for it. Empty: none (a range scan without `--auth-host`).
    pub hosts: Vec<AuthHost>,
    /// The CAs and pins a certificate is judged by.
    pub trust: Option<Arc<Trust>>,
    /// `--auth-insecure`: send it to any host, verified or not, TLS or not.
    pub insecure: bool,
}

/// What one connection allows, for [`PasswordRules::clearance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearance {
    /// The password may go, under this rule; `waived` says what
    /// `--auth-insecure` let through.
    Allowed { rule: Rule, waived: Option<String> },
    /// It may not: why (the A1 "not run" reason).
    Refused(String),
}

impl PasswordRules {
    /// Whether the real password may go to the target known by `name` (the
    /// name the user gave, if any) at `ip`, over a session whose TLS is
    /// `tls` (`None`: plaintext). A pure function of its inputs: the probe
    /// asks it before every AUTH with the password.
    pub fn clearance(&self, name: Option<&str>, ip: IpAddr, tls: Option<&TlsInfo>) -> Clearance {
        let mut waived = Vec::new();
        if !self.hosts.iter().any(|h| h.names(name, ip)) {
            let why = match name {
                Some(n) if self.hosts.is_empty() => format!(
                    "host not named in --auth-host (name it to send the password: --auth-host {n})"
                ),
                Some(n) => format!("host {n} ({ip}) not named in --auth-host"),
                None => format!("host not named in --auth-host (name it to send the password: --auth-host {ip})"),
            };
            if !self.insecure {
                return Clearance::Refused(why);
            }
            waived.push(why);
        }
        let checked_for = checked_for(name, ip);
        let verdict = match tls {
            None => Err("no TLS".to_string()),
            Some(info) => {
                let server_name = crate::smtp::tls::server_name(name, ip);
                match &self.trust {
                    Some(trust) => trust.judge(info, &server_name).map_err(|why| {
                        format!("certificate not verified for {checked_for}: {why}")
                    }),
                    None => Err(format!(
                        "certificate not verified for {checked_for}: no trust configured"
                    )),
                }
            }
        };
        match verdict {
            Ok(trusted) if waived.is_empty() => Clearance::Allowed {
                rule: match trusted {
                    Trusted::Verified => Rule::VerifiedCertificate,
                    Trusted::Pinned => Rule::PinnedCertificate,
                },
                waived: None,
            },
            Ok(_) => Clearance::Allowed {
                rule: Rule::Insecure,
                waived: Some(waived.join("; ")),
            },
            Err(why) if self.insecure => {
                waived.push(why);
                Clearance::Allowed {
                    rule: Rule::Insecure,
                    waived: Some(waived.join("; ")),
                }
            }
            Err(why) => Clearance::Refused(why),
        }
    }
}

/// The name (or address) a certificate is checked for.
pub fn checked_for(name: Option<&str>, ip: IpAddr) -> String {
    match name {
        Some(n) => n.trim_end_matches('.').to_string(),
        None => ip.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    /// What a handshake with a lab server presenting `der` established.
    fn session(der: Vec<u8>) -> TlsInfo {
        TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            certificate: None,
            chain: vec![CertificateDer::from(der)],
        }
    }

    fn rules(hosts: &[&str], ca: bool, pins: &[String], insecure: bool) -> PasswordRules {
        let cas = if ca {
            vec![("lab CA".to_string(), crate::lab::tls::CA_PEM.to_string())]
        } else {
            Vec::new()
        };
        PasswordRules {
            hosts: hosts.iter().filter_map(|h| AuthHost::parse(h)).collect(),
            trust: Some(Arc::new(Trust::new(&cas, pins).unwrap())),
            insecure,
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));

    fn refused(c: Clearance) -> String {
        match c {
            Clearance::Refused(why) => why,
            other => panic!("allowed: {other:?}"),
        }
    }

    #[test]
    fn a_verified_certificate_for_a_named_host_is_the_only_default_way() {
        let signed = session(crate::lab::tls::signed_certificate_der());
        let name = Some("mail.lab.example");
        let r = rules(&["mail.lab.example"], true, &[], false);
        assert_eq!(
            r.clearance(name, IP, Some(&signed)),
            Clearance::Allowed {
                rule: Rule::VerifiedCertificate,
                waived: None
            }
        );
        // The same certificate, but the CA is not trusted.
        let why = refused(rules(&["mail.lab.example"], false, &[], false).clearance(
            name,
            IP,
            Some(&signed),
        ));
        assert!(
            why.starts_with("certificate not verified for mail.lab.example: issued by a CA"),
            "{why}"
        );
        // A name the certificate does not cover.
        let other = rules(&["mail.other.test"], true, &[], false);
        let why = refused(other.clearance(Some("mail.other.test"), IP, Some(&signed)));
        assert_eq!(
            why,
            "certificate not verified for mail.other.test: not valid for this name"
        );
        // An address target: the certificate names no address.
        let by_addr = rules(&["127.0.0.11"], true, &[], false);
        let why = refused(by_addr.clearance(None, IP, Some(&signed)));
        assert!(
            why.starts_with("certificate not verified for 127.0.0.11"),
            "{why}"
        );
        // The self-signed lab certificate verifies for nothing.
        let self_signed = session(crate::lab::tls::certificate_der());
        assert!(matches!(
            r.clearance(name, IP, Some(&self_signed)),
            Clearance::Refused(_)
        ));
        // No TLS.
        assert_eq!(refused(r.clearance(name, IP, None)), "no TLS");
    }

    #[test]
    fn hosts_not_named_get_nothing() {
        let signed = session(crate::lab::tls::signed_certificate_der());
        let none = rules(&[], true, &[], false);
        let why = refused(none.clearance(Some("mail.lab.example"), IP, Some(&signed)));
        assert!(why.starts_with("host not named in --auth-host"), "{why}");
        let other = rules(&["mx.lab.example", "127.0.0.12"], true, &[], false);
        assert!(
            refused(other.clearance(Some("mail.lab.example"), IP, Some(&signed)))
                .contains("not named in --auth-host")
        );
        // Named by address, reached by name: the certificate is checked for the name.
        let by_addr = rules(&["127.0.0.11"], true, &[], false);
        assert!(matches!(
            by_addr.clearance(Some("MAIL.lab.example."), IP, Some(&signed)),
            Clearance::Allowed {
                rule: Rule::VerifiedCertificate,
                ..
            }
        ));
    }

    #[test]
    fn pins() {
        let self_signed = session(crate::lab::tls::certificate_der());
        let cert = crate::smtp::tls::Certificate::from_der(&crate::lab::tls::certificate_der());
        let right = rules(&["127.0.0.11"], false, &[cert.sha256.to_uppercase()], false);
        assert_eq!(
            right.clearance(None, IP, Some(&self_signed)),
            Clearance::Allowed {
                rule: Rule::PinnedCertificate,
                waived: None
            }
        );
        let wrong_pin = "00".repeat(32);
        let wrong = rules(&["127.0.0.11"], false, &[wrong_pin], false);
        assert!(matches!(
            wrong.clearance(None, IP, Some(&self_signed)),
            Clearance::Refused(_)
        ));
        // A pin does not name the host.
        let unnamed = rules(&[], false, std::slice::from_ref(&cert.sha256), false);
        assert!(refused(unnamed.clearance(None, IP, Some(&self_signed))).contains("not named"));
        assert!(crate::smtp::tls::parse_pin("ab:cd").is_err());
        // As `openssl x509 -fingerprint -sha256` prints it.
        let colons = format!("{}AB", "AB:".repeat(31));
        assert_eq!(crate::smtp::tls::parse_pin(&colons), Ok("ab".repeat(32)));
    }

    #[test]
    fn insecure_waives_everything_and_says_what() {
        let self_signed = session(crate::lab::tls::certificate_der());
        let r = rules(&[], false, &[], true);
        match r.clearance(None, IP, Some(&self_signed)) {
            Clearance::Allowed {
                rule: Rule::Insecure,
                waived: Some(w),
            } => {
                assert!(w.contains("not named in --auth-host"), "{w}");
                assert!(w.contains("certificate not verified for 127.0.0.11"), "{w}");
            }
            other => panic!("{other:?}"),
        }
        match r.clearance(None, IP, None) {
            Clearance::Allowed {
                waived: Some(w), ..
            } => assert!(w.ends_with("no TLS"), "{w}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_hosts_parse() {
        assert_eq!(
            AuthHost::parse("Mail.Example.ORG."),
            Some(AuthHost::Name("mail.example.org".into()))
        );
        assert_eq!(
            AuthHost::parse("[::1]"),
            Some(AuthHost::Addr("::1".parse().unwrap()))
        );
        assert_eq!(AuthHost::parse("not a host"), None);
        let _ = CertificateDer::from_pem_slice(crate::lab::tls::CA_PEM.as_bytes()).unwrap();
    }

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
