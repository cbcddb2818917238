//! The human report of `relayscan check`: the verdict first, then the
//! evidence, then every test. All server text is neutralised for the terminal.

use super::record::Record;
use super::sanitize::{terminal, truncate};
use crate::relay::{Outcome, TestFacts};
use crate::smtp::Reply;
use std::fmt::Write;

pub fn render(r: &Record) -> String {
    let f = &r.facts;
    let v = &r.verdict;
    let t = |s: &str| terminal(s).into_owned();
    let mut out = String::new();
    let name = r
        .hostname()
        .map(|h| format!(" ({})", t(h)))
        .unwrap_or_default();
    let _ = writeln!(out, "relayscan check {}{name}", f.addr);
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
            cmd.to_lowercase(),
            reply.code,
            truncate(&t(&exts), 100)
        );
    }
    if !f.greeting.capabilities.auth.is_empty() {
        let _ = writeln!(
            out,
            "  auth        {}",
            t(&f.greeting.capabilities.auth.join(" "))
        );
    }
    dns_lines(&mut out, r);
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
        for test in f.tests.iter().chain(f.controls.iter()) {
            let _ = writeln!(out, "  {}", test_line(test));
        }
    }
    if !v.notes.is_empty() {
        let _ = writeln!(out, "\n  notes");
        for n in &v.notes {
            let _ = writeln!(out, "  - {}", t(n));
        }
    }
    out
}

fn test_line(test: &TestFacts) -> String {
    let outcome = Outcome::of(test);
    let paths = match (&test.mail_from, &test.rcpt_to) {
        (Some(m), Some(r)) => format!("{m} → {r}"),
        _ => String::new(),
    };
    let reply = match outcome {
        Outcome::Skipped => test.skipped.clone().unwrap_or_default(),
        Outcome::Aborted => test.error.clone().unwrap_or_default(),
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
