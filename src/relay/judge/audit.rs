//! The audit: what is wrong with a server beyond the relay verdict — TLS,
//! AUTH, the vantage point — each finding with the fix for the software that
//! was detected. A pure function of the facts, the verdict and the time the
//! record was made (for certificate validity); no I/O.

use super::auth;
use super::classify::{Status, Verdict};
pub use super::finding::{Finding, FindingId, Severity};
use super::fingerprint::{fingerprint, Fingerprint, Software};
use super::remediation::{advice, trick_advice};
use super::vantage::{vantage, Vantage};
use crate::relay::model::auth as auth_rules;
use crate::relay::model::facts::{Facts, Hello, TlsMode, TlsReason};
use crate::relay::model::outcome::Outcome;
use serde::Serialize;

/// Everything the audit says about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub software: Option<Fingerprint>,
    pub findings: Vec<Finding>,
    pub vantage: Vantage,
}

impl Audit {
    /// The software id for CSV (`postfix`, `iis-smtp`, `unknown`; empty when
    /// the server never greeted).
    pub fn software_id(&self) -> &'static str {
        self.software.as_ref().map_or("", |f| f.software.as_str())
    }
}

/// Audit one target. `now_unix` is when the record was made.
pub fn audit(facts: &Facts, verdict: &Verdict, now_unix: i64) -> Audit {
    let software = fingerprint(facts);
    let product = software.as_ref().map_or(Software::Unknown, |f| f.software);
    let mut findings = Vec::new();
    // An open relay proven through an address trick needs the trick's fix,
    // not the relay restrictions' (they refused every plain foreign recipient).
    let through_trick = verdict
        .deciding_test
        .and_then(crate::relay::model::catalogue::find)
        .is_some_and(|t| t.kind == crate::relay::model::catalogue::Kind::Trick);
    let mut add = |id: FindingId, severity: Severity, summary: String| {
        let remediation = match id {
            FindingId::OpenRelay if through_trick => trick_advice(product),
            _ => advice(id, product),
        };
        findings.push(Finding {
            id,
            severity,
            summary,
            remediation,
        });
    };

    // The relay verdict itself.
    let after_failed_auth = auth::relay_after_failed_auth(facts).is_some()
        && verdict.deciding_test.is_some_and(|t| t.starts_with('A'));
    match verdict.verdict {
        Status::OpenRelay if after_failed_auth => add(
            FindingId::RelayAfterFailedAuth,
            Severity::High,
            verdict.reason.clone(),
        ),
        Status::OpenRelay => add(
            FindingId::OpenRelay,
            Severity::High,
            format!("open relay: {}", verdict.reason),
        ),
        Status::PossibleRelay => add(
            FindingId::PossibleRelay,
            Severity::Medium,
            format!("possible relay: {}", verdict.reason),
        ),
        Status::TlsRequired => add(
            FindingId::TlsUntested,
            Severity::Medium,
            "the server demands STARTTLS, but relaying could not be tested over TLS".into(),
        ),
        _ => {}
    }
    let greeted = facts
        .greeting
        .hello
        .as_ref()
        .is_some_and(|h| h.is_positive());
    let tls = facts.tls.as_ref();
    let implicit = tls.is_some_and(|t| t.mode == TlsMode::Implicit);

    // AUTH offered in the clear: the EHLO before TLS (never for implicit TLS).
    let (before, after) = auth::mechanisms(facts);
    if greeted && !implicit {
        let plain = auth_rules::plaintext_mechanisms(&before);
        if !plain.is_empty() {
            add(
                FindingId::PlaintextAuth,
                Severity::High,
                format!(
                    "AUTH {} offered on an unencrypted connection: passwords cross the network readable",
                    plain.join(" ")
                ),
            );
        }
    }
    let all: Vec<String> = before
        .iter()
        .chain(after.iter().flatten())
        .cloned()
        .collect();
    let mut windows = auth_rules::windows_integrated(&all);
    windows.dedup();
    if !windows.is_empty() {
        add(
            FindingId::WindowsIntegratedAuth,
            Severity::Info,
            format!(
                "Integrated Windows Authentication offered ({})",
                windows.join(" ")
            ),
        );
    }

    // TLS.
    if greeted && tls.is_none() && facts.greeting.hello_command == Some(Hello::Ehlo) {
        add(
            FindingId::NoTls,
            Severity::Low,
            "no STARTTLS: mail and passwords to this server travel unencrypted".into(),
        );
    }
    if let Some(t) = tls {
        // `--tls` on a plaintext port is the user's mistake, not the
        // server's: the error says so, and there is nothing to fix there.
        let asked_wrongly = t.mode == TlsMode::Implicit
            && t.reason == TlsReason::Option
            && t.error
                .as_deref()
                .is_some_and(|e| e.starts_with(crate::smtp::tls::NOT_TLS));
        if let Some(error) = t.error.as_ref().filter(|_| !asked_wrongly) {
            add(
                FindingId::TlsFailed,
                Severity::Medium,
                format!("{} failed: {error}", t.mode.as_str().to_uppercase()),
            );
        }
        if t.injected_bytes > 0 {
            add(
                FindingId::StartTlsInjection,
                Severity::Medium,
                format!(
                    "{} byte(s) of plaintext after \"220 Ready to start TLS\", before the handshake (discarded)",
                    t.injected_bytes
                ),
            );
        }
        if let Some(cert) = t.session.as_ref().and_then(|s| s.certificate.as_ref()) {
            if cert.not_after_unix.is_some_and(|end| end < now_unix) {
                add(
                    FindingId::CertificateExpired,
                    Severity::Medium,
                    format!(
                        "the certificate expired on {}",
                        cert.not_after.as_deref().unwrap_or("?")
                    ),
                );
            }
            if cert.self_signed {
                add(
                    FindingId::SelfSignedCertificate,
                    Severity::Low,
                    format!(
                        "self-signed certificate ({})",
                        cert.subject.as_deref().unwrap_or("no subject")
                    ),
                );
            }
        }
    }

    // The authenticated relay tests.
    if let Some(a) = &facts.auth {
        if a.login
            .as_ref()
            .is_some_and(|l| l.reply.is_some() && !l.succeeded())
        {
            let reply = a
                .login
                .as_ref()
                .and_then(|l| l.reply.as_ref())
                .map(|r| r.one_line())
                .unwrap_or_default();
            add(
                FindingId::AuthFailed,
                Severity::Low,
                format!("AUTH as {} failed: {reply}", a.user),
            );
        }
        if let Some(t) = &a.authenticated_relay {
            if let Some(class) = Outcome::of(t).refusal() {
                let reply = t
                    .rcpt_reply
                    .as_ref()
                    .or(t.mail_reply.as_ref())
                    .map(|r| r.one_line())
                    .unwrap_or_default();
                add(
                    FindingId::AuthenticatedRelayRefused,
                    Severity::Low,
                    format!(
                        "relaying refused after a successful AUTH as {} ({}): {reply}",
                        a.user,
                        serde_json::to_value(class)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                );
            }
        }
    }

    findings.sort_by_key(|f| f.severity);
    Audit {
        software,
        findings,
        vantage: vantage(facts, verdict),
    }
}
