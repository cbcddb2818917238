//! The human report of `relayscan check`: the verdict first, then the
//! evidence, then every test. All server text is neutralised for the terminal.

use super::record::Record;
use super::sanitize::{terminal, truncate};
use crate::relay::{Outcome, TestFacts};
use crate::smtp::Reply;
use std::fmt::Write;

/// What the catcher saw of the canary: arrival and hops, or the wait.
fn delivery_lines(out: &mut String, d: &crate::relay::facts::Delivery) {
    let t = |s: &str| terminal(s).into_owned();
    let waited = d.waited_ms as f64 / 1000.0;
    match (d.status, &d.at) {
        (crate::relay::facts::DeliveryStatus::Delivered, at) => {
            let after = d
                .after_ms
                .map(|ms| format!(" ({:.1} s after the message)", ms as f64 / 1000.0))
                .unwrap_or_default();
            let peer = d
                .peer
                .as_deref()
                .map(|p| format!(" from {}", t(p)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  delivered   {}{after}{peer}",
                t(at.as_deref().unwrap_or("?"))
            );
            for hop in &d.hops {
                let _ = writeln!(out, "  hop         {}", t(hop));
            }
        }
        (crate::relay::facts::DeliveryStatus::NotDelivered, _) => {
            let _ = writeln!(out, "  delivered   no: not caught within {waited:.1} s");
        }
    }
}

pub fn render(r: &Record) -> String {
    let f = &r.facts;
    let v = &r.verdict;
    let t = |s: &str| terminal(s).into_owned();
    let mut out = String::new();
    let name = r
        .hostname()
        .filter(|_| !f.addr.ip().is_unspecified())
        .map(|h| format!(" ({})", t(h)))
        .unwrap_or_default();
    let _ = writeln!(out, "relayscan check {}{name}", t(&r.target_label()));
    let confidence = v
        .confidence
        .map(|c| format!("  (confidence: {})", c.as_str()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  verdict     {}{confidence}",
        v.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(out, "  why         {}", t(&v.reason));
    if let Some(reply) = &v.reply {
        let test = v
            .deciding_test
            .map(|id| format!("{id}: "))
            .unwrap_or_default();
        let _ = writeln!(out, "  reply       {test}{}", t(reply));
    }
    if !v.accepted.is_empty() {
        let _ = writeln!(out, "  accepted    {}", v.accepted.join(" "));
    }
    if let Some(banner) = r.banner() {
        let _ = writeln!(out, "  banner      {}", truncate(&t(&banner), 120));
    }
    if let (Some(cmd), Some(reply)) = (f.greeting.hello_command, &f.greeting.hello) {
        let exts = f.greeting.capabilities.keywords.join(" ");
        let _ = writeln!(
            out,
            "  {:<11} {} {}",
            cmd.as_str().to_lowercase(),
            reply.code,
            truncate(&t(&exts), 100)
        );
    }
    if let Some(fp) = &r.audit.software {
        let version = fp
            .version
            .as_deref()
            .map(|v| format!(" {}", t(v)))
            .unwrap_or_default();
        let _ = writeln!(out, "  software    {}{version}", fp.software.name());
    }
    dns_lines(&mut out, r);
    tls_lines(&mut out, r);
    auth_lines(&mut out, r);
    if let Some(c) = &r.facts.confirmation {
        let t = |s: &str| terminal(s).into_owned();
        let outcome = if c.accepted {
            format!("message accepted (token {})", c.token)
        } else {
            format!("not confirmed: {}", c.error.as_deref().unwrap_or("?"))
        };
        let last = c.replies.last().map(|r| r.one_line()).unwrap_or_default();
        let _ = writeln!(
            out,
            "  confirm     {}: {} → {}: {}",
            c.test,
            t(&c.rcpt_to),
            t(&outcome),
            t(&last)
        );
        if let Some(d) = &c.delivery {
            delivery_lines(&mut out, d);
        }
    }
    if let Some(src) = f.source {
        let _ = writeln!(out, "  source      {src}");
    }
    if let Some(e) = r.error() {
        let _ = writeln!(out, "  error       {}", t(&e));
    }
    let _ = writeln!(
        out,
        "  duration    {} ms, {} connection(s)",
        f.duration_ms, f.connections
    );
    if !f.tests.is_empty() {
        let _ = writeln!(
            out,
            "\n  test  outcome       sender → recipient                                   reply"
        );
        let auth_tests = f.auth.iter().flat_map(|a| {
            a.after_failed_auth
                .iter()
                .chain(a.authenticated_relay.iter())
        });
        for test in f.tests.iter().chain(f.controls.iter()).chain(auth_tests) {
            let _ = writeln!(out, "  {}", test_line(test));
        }
    }
    if !v.notes.is_empty() {
        let _ = writeln!(out, "\n  notes");
        for n in &v.notes {
            let _ = writeln!(out, "  - {}", t(n));
        }
    }
    if !r.audit.findings.is_empty() {
        let _ = writeln!(out, "\n  findings");
        for finding in &r.audit.findings {
            let _ = writeln!(
                out,
                "  - [{}] {}: {}",
                finding.severity.as_str(),
                finding.id.as_str(),
                t(&finding.summary)
            );
            if let Some(fix) = finding.remediation {
                let _ = writeln!(out, "    fix: {fix}");
            }
        }
    }
    if !r.audit.vantage.warnings.is_empty() {
        let _ = writeln!(out, "\n  vantage point");
        for w in &r.audit.vantage.warnings {
            let _ = writeln!(out, "  - {}", t(w));
        }
    }
    out
}

/// TLS: how it was used, what was negotiated, the certificate.
fn tls_lines(out: &mut String, r: &Record) {
    let t = |s: &str| terminal(s).into_owned();
    let Some(tls) = &r.facts.tls else {
        return;
    };
    match &tls.session {
        Some(session) => {
            let _ = writeln!(
                out,
                "  tls         {} ({}): {} {}",
                tls.mode,
                tls.reason,
                t(&session.version),
                t(&session.cipher)
            );
            if let Some(cert) = &session.certificate {
                let _ = writeln!(
                    out,
                    "  certificate {}{}",
                    t(cert.subject.as_deref().unwrap_or("(unreadable)")),
                    if cert.self_signed {
                        ", self-signed"
                    } else {
                        ""
                    }
                );
                if !cert.self_signed {
                    if let Some(issuer) = &cert.issuer {
                        let _ = writeln!(out, "  issuer      {}", t(issuer));
                    }
                }
                if !cert.sans.is_empty() {
                    let _ = writeln!(
                        out,
                        "  names       {}",
                        truncate(&t(&cert.sans.join(" ")), 100)
                    );
                }
                let _ = writeln!(
                    out,
                    "  valid       {} to {}",
                    cert.not_before.as_deref().unwrap_or("?"),
                    cert.not_after.as_deref().unwrap_or("?")
                );
                let _ = writeln!(out, "  sha256      {}", cert.sha256);
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  tls         {} ({}) failed: {}",
                tls.mode,
                tls.reason,
                t(tls.error.as_deref().unwrap_or("?"))
            );
        }
    }
}

/// AUTH: the mechanisms before and after TLS, and the `--auth` tests.
fn auth_lines(out: &mut String, r: &Record) {
    let t = |s: &str| terminal(s).into_owned();
    let (before, after) = crate::relay::auth::mechanisms(&r.facts);
    let implicit = r
        .facts
        .tls
        .as_ref()
        .is_some_and(|x| x.mode == crate::relay::facts::TlsMode::Implicit);
    match after {
        _ if implicit && !before.is_empty() => {
            let _ = writeln!(out, "  auth        {} (over TLS)", t(&before.join(" ")));
        }
        Some(after) if !implicit && (!before.is_empty() || !after.is_empty()) => {
            let show = |m: &[String]| {
                if m.is_empty() {
                    "none".to_string()
                } else {
                    t(&m.join(" "))
                }
            };
            let _ = writeln!(
                out,
                "  auth        {} before TLS, {} over TLS",
                show(&before),
                show(&after)
            );
        }
        None if !before.is_empty() && !implicit => {
            let _ = writeln!(out, "  auth        {} (no TLS)", t(&before.join(" ")));
        }
        _ => {}
    }
    let Some(a) = &r.facts.auth else {
        return;
    };
    let attempt =
        |label: &str, x: &Option<crate::relay::auth::AuthAttempt>, test: &Option<TestFacts>| {
            let Some(x) = x else {
                return None;
            };
            let reply = x
                .reply
                .as_ref()
                .map(Reply::one_line)
                .or_else(|| x.error.clone())
                .unwrap_or_default();
            let relay = test
                .as_ref()
                .map(|t| format!(" → {}: {}", t.id, Outcome::of(t).label()))
                .unwrap_or_default();
            let user = if x.user_name == "random" {
                "a random user".to_string()
            } else {
                t(&a.user)
            };
            Some(format!(
                "  {label:<11} AUTH {} as {}{}: {}{relay}",
                x.mechanism,
                user,
                if x.encrypted { " over TLS" } else { "" },
                truncate(&t(&reply), 60)
            ))
        };
    // A test that did not run says why, like the relay tests do.
    let not_run = |label: &str, test: &Option<TestFacts>| {
        let why = test.as_ref()?.skipped.as_ref()?;
        let id = test.as_ref().map_or("", |t| t.id);
        Some(format!("  {label:<11} {id} not run: {}", t(why)))
    };
    for line in [
        attempt("wrong pass", &a.wrong_password, &a.after_failed_auth),
        attempt("login", &a.login, &a.authenticated_relay)
            .or_else(|| not_run("login", &a.authenticated_relay)),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(out, "{line}");
    }
    if let Some(p) = &a.password {
        let line = match (p.sent, p.rule) {
            (true, Some(rule)) => format!(
                "sent to {} under the {rule} rule{}",
                t(&p.checked_for),
                p.waived
                    .as_ref()
                    .map(|w| format!(" (waived: {})", t(w)))
                    .unwrap_or_default()
            ),
            _ => format!("not sent to {}", t(&p.checked_for)),
        };
        let _ = writeln!(out, "  password    {line}");
    }
    for s in &a.skipped {
        let _ = writeln!(out, "  auth test   skipped: {}", t(s));
    }
}

fn test_line(test: &TestFacts) -> String {
    let outcome = Outcome::of(test);
    let paths = match (&test.mail_from, &test.rcpt_to) {
        (Some(m), Some(r)) => format!("{m} → {r}"),
        _ => String::new(),
    };
    let reply = match outcome {
        Outcome::Skipped => test.skipped.clone().unwrap_or_default(),
        Outcome::Aborted => test
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        Outcome::MailRefused(_) => test
            .mail_reply
            .as_ref()
            .map(Reply::one_line)
            .unwrap_or_default(),
        _ => test
            .rcpt_reply
            .as_ref()
            .map(Reply::one_line)
            .unwrap_or_default(),
    };
    format!(
        "{:<5} {:<13} {:<52} {}",
        test.id,
        outcome.label(),
        truncate(&terminal(&paths), 52),
        truncate(&terminal(&reply), 80)
    )
}

/// What DNS said about the target: the MX record that named it, its PTR
/// name, and the blocklists that list it.
fn dns_lines(out: &mut String, r: &Record) {
    let f = &r.facts;
    let t = |s: &str| terminal(s).into_owned();
    if let Some(mx) = &f.mx {
        let line = if mx.implicit {
            format!(
                "{}: no MX records, its own address receives its mail",
                t(&mx.domain)
            )
        } else {
            format!(
                "{} → {} (preference {})",
                t(&mx.domain),
                t(&mx.exchange),
                mx.preference
            )
        };
        let _ = writeln!(out, "  mx          {line}");
    }
    if let Some(ptr) = &f.ptr {
        let _ = writeln!(out, "  ptr         {}", t(ptr));
    }
    let Some(check) = &f.dnsbl else {
        return;
    };
    if let Some(why) = &check.skipped {
        let _ = writeln!(out, "  dnsbl       not checked: {}", t(why));
        return;
    }
    if check.listed.is_empty() {
        let _ = writeln!(
            out,
            "  dnsbl       not listed ({} zone(s) asked)",
            check.zones.len().saturating_sub(check.errors.len())
        );
    }
    for listing in &check.listed {
        let reason = listing
            .reason
            .as_deref()
            .map(|r| format!(": {}", truncate(&t(r), 100)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  dnsbl       LISTED on {} ({}){reason}",
            t(&listing.zone),
            listing.codes.join(" ")
        );
    }
    for e in &check.errors {
        let _ = writeln!(
            out,
            "  dnsbl       {} did not answer: {}",
            t(&e.zone),
            t(&e.error)
        );
    }
}
