//! The human report of `relayscan check`: the verdict first, then the
//! evidence, then every test. All server text is neutralised for the terminal.

use super::record::Record;
use super::sanitize::{terminal, truncate};
use super::style;
use crate::relay::{Kind, Outcome, Status, TestFacts};
use crate::smtp::Reply;
use std::fmt::Write;

/// The width of the report when neither `COLUMNS` nor the terminal says.
pub const DEFAULT_WIDTH: usize = 100;
/// Narrower than this, the columns would not be readable anyway.
const MIN_WIDTH: usize = 40;

/// How the report is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Columns to fill ([`width`]).
    pub width: usize,
    /// Colour the verdict ([`super::style`]).
    pub color: bool,
    /// Show the SMTP dialogue (`--transcript`).
    pub transcript: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            width: DEFAULT_WIDTH,
            color: false,
            transcript: false,
        }
    }
}

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

/// The width to lay the report out in: `COLUMNS` when set (as POSIX shells
/// export it), else the terminal's when writing to one, else
/// [`DEFAULT_WIDTH`].
pub fn width(columns: Option<&str>, terminal: Option<usize>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or(terminal)
        .unwrap_or(DEFAULT_WIDTH)
        .clamp(MIN_WIDTH, 1000)
}

/// The report with the default layout: 100 columns, no colour.
pub fn render(r: &Record) -> String {
    render_with(r, &Layout::default())
}

pub fn render_with(r: &Record, layout: &Layout) -> String {
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
        style::paint(
            &v.verdict.as_str().to_uppercase(),
            style::verdict(v.verdict),
            layout.color
        )
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
        let auth_tests = f.auth.iter().flat_map(|a| {
            a.after_failed_auth
                .iter()
                .chain(a.authenticated_relay.iter())
        });
        let tests: Vec<&TestFacts> = f
            .tests
            .iter()
            .chain(f.controls.iter())
            .chain(auth_tests)
            .collect();
        out.push('\n');
        out.push_str(&test_table(&tests, layout.width));
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
    if layout.transcript {
        out.push_str(&transcript(r, layout.width));
    }
    out
}

/// The SMTP dialogue as swaks shows it: `C:` what we sent, `S:` what the
/// server answered, `*` what happened (connect, TLS, close). Commands
/// carrying credentials were recorded redacted (`AUTH PLAIN <redacted>`),
/// and server text is neutralised for the terminal.
fn transcript(r: &Record, width: usize) -> String {
    let mut out = String::from("\n  transcript\n");
    if r.facts.transcript.is_empty() {
        out.push_str("  (no dialogue recorded)\n");
        return out;
    }
    for entry in &r.facts.transcript {
        let dir = match entry.dir {
            'C' => "C:",
            'S' => "S:",
            _ => " *",
        };
        let text = terminal(&entry.line);
        for (i, piece) in wrap(&text, width.saturating_sub(6).max(20))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 { dir } else { "  " };
            let _ = writeln!(out, "  {lead} {piece}");
        }
    }
    out
}

/// `text` cut into pieces of at most `width` characters, at spaces when
/// there is one (never inside a character).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        let cut = rest[..=width]
            .iter()
            .rposition(|&c| c == ' ')
            .filter(|&i| i > 0)
            .unwrap_or(width);
        lines.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        let skip = usize::from(rest.get(cut) == Some(&' '));
        rest.drain(..cut + skip);
    }
    if !rest.is_empty() || lines.is_empty() {
        lines.push(rest.into_iter().collect());
    }
    lines
}

/// Several servers (a domain's MX hosts): one line with the worst verdict
/// and the count of each.
pub fn overall(records: &[Record], color: bool) -> Option<String> {
    if records.len() < 2 {
        return None;
    }
    let worst = records
        .iter()
        .map(|r| r.verdict.verdict)
        .min_by_key(|&s| severity(s))?;
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for status in Status::ALL {
        let n = records
            .iter()
            .filter(|r| r.verdict.verdict == status)
            .count();
        if n > 0 {
            counts.push((status, n));
        }
    }
    let counts = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let relays = records
        .iter()
        .filter(|r| r.verdict.verdict.is_relay())
        .count();
    Some(format!(
        "\noverall       {} (worst of {} servers: {counts}; {relays} relay{})\n",
        style::paint(&worst.as_str().to_uppercase(), style::verdict(worst), color),
        records.len(),
        if relays == 1 { "" } else { "s" }
    ))
}

/// Lower is worse: a relay, then a server that could not be tested (a CI
/// gate fails on both), then one that refuses to relay.
fn severity(s: Status) -> usize {
    match s {
        Status::OpenRelay => 0,
        Status::PossibleRelay => 1,
        s if s.is_untested() => 2 + Status::ALL.iter().position(|&x| x == s).unwrap_or(0),
        Status::Excluded => 100,
        _ => 50 + Status::ALL.iter().position(|&x| x == s).unwrap_or(0),
    }
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

/// Columns a reply gets at least before it moves to a line of its own.
const MIN_REPLY: usize = 24;

/// The tests as a table in `width` columns. Addresses are never cut: the
/// sender → recipient column is as wide as the widest, and the reply takes
/// what is left, wrapped; when too little is left, each reply goes on the
/// line under its test. A C3 control names the tricks it controls.
fn test_table(tests: &[&TestFacts], width: usize) -> String {
    let rows: Vec<(String, &str, String, String)> = tests
        .iter()
        .map(|t| {
            let (outcome, paths, reply) = test_cells(t);
            (t.id.to_string(), outcome, paths, reply)
        })
        .collect();
    let id_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let out_w = 12;
    let path_w = rows
        .iter()
        .map(|r| r.2.chars().count())
        .max()
        .unwrap_or(0)
        .max("sender → recipient".chars().count());
    let lead = 2 + id_w + 1 + out_w + 1 + path_w + 1;
    let reply_w = width.saturating_sub(lead);
    let stacked = reply_w < MIN_REPLY;
    let mut out = String::new();
    let header = format!(
        "  {:<id_w$} {:<out_w$} {:<path_w$} {}",
        "test",
        "outcome",
        "sender → recipient",
        if stacked { "(reply below)" } else { "reply" }
    );
    let _ = writeln!(out, "{}", header.trim_end());
    for (row, test) in rows.iter().zip(tests) {
        let (id, outcome, paths, reply) = row;
        let head = format!("  {id:<id_w$} {outcome:<out_w$} {paths:<path_w$}");
        if stacked {
            let _ = writeln!(out, "{}", head.trim_end());
            let indent = 2 + id_w + 1;
            for piece in wrap(reply, width.saturating_sub(indent).max(MIN_REPLY)) {
                if !piece.is_empty() {
                    let _ = writeln!(out, "{:indent$}{piece}", "");
                }
            }
        } else {
            let pieces = wrap(reply, reply_w);
            for (i, piece) in pieces.iter().enumerate() {
                if i == 0 {
                    let _ = writeln!(out, "{}", format!("{head} {piece}").trim_end());
                } else {
                    let _ = writeln!(out, "{:lead$}{piece}", "");
                }
            }
        }
        if crate::relay::catalogue::is_local_part_control(test.id) {
            let controlled = controlled_tricks(test, tests);
            if !controlled.is_empty() {
                let _ = writeln!(
                    out,
                    "{:w$}controls {}: any local part there?",
                    "",
                    controlled.join(" "),
                    w = 2 + id_w + 1
                );
            }
        }
    }
    out
}

/// The tricks a C3 control controls: the accepted ones whose recipient
/// names the same place (the domain after the last `@`, or none).
fn controlled_tricks(control: &TestFacts, tests: &[&TestFacts]) -> Vec<&'static str> {
    let place = |t: &TestFacts| {
        t.rcpt_to.as_deref().map(|r| {
            crate::relay::address::domain(r)
                .unwrap_or("")
                .to_ascii_lowercase()
        })
    };
    let Some(here) = place(control) else {
        return Vec::new();
    };
    tests
        .iter()
        .filter(|t| t.kind == Kind::Trick && Outcome::of(t) == Outcome::Accepted)
        .filter(|t| place(t).as_deref() == Some(here.as_str()))
        .map(|t| t.id)
        .collect()
}

/// A test's outcome, its whole sender → recipient, and its reply (or why
/// it did not run), neutralised for the terminal.
fn test_cells(test: &TestFacts) -> (&'static str, String, String) {
    let outcome = Outcome::of(test);
    let paths = match (&test.mail_from, &test.rcpt_to) {
        (Some(m), Some(r)) => format!("{m} → {r}"),
        _ => String::new(),
    };
    let reply = match outcome {
        Outcome::Skipped => test.skipped.as_deref().unwrap_or_default().to_string(),
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
    (
        outcome.label(),
        // A path is at most 256 octets (RFC 5321 §4.5.3.1.3); a hostile
        // server's reply is capped so one row cannot fill the screen.
        terminal(&paths).into_owned(),
        truncate(&terminal(&reply), 400).into_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn test(id: &'static str, kind: Kind, rcpt: &str, code: u16, text: &str) -> TestFacts {
        TestFacts {
            mail_from: Some("<relayscan@lab.example>".into()),
            rcpt_to: Some(rcpt.into()),
            skipped: None,
            mail_reply: Some(Reply::new(250, "2.1.0 Ok")),
            rcpt_reply: Some(Reply::new(code, text)),
            connection: 1,
            ..TestFacts::skipped(id, kind, "")
        }
    }

    #[test]
    fn the_width_comes_from_columns_then_the_terminal() {
        assert_eq!(width(Some("160"), Some(80)), 160);
        assert_eq!(width(None, Some(80)), 80);
        assert_eq!(width(None, None), DEFAULT_WIDTH);
        assert_eq!(width(Some("wide"), None), DEFAULT_WIDTH);
        assert_eq!(width(Some("0"), Some(120)), 120);
        assert_eq!(width(Some("5"), None), MIN_WIDTH);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_keeps_every_character() {
        assert_eq!(wrap("250 2.1.5 Ok", 40), ["250 2.1.5 Ok"]);
        assert_eq!(
            wrap("550 5.1.1 Recipient address rejected", 16),
            ["550 5.1.1", "Recipient", "address rejected"]
        );
        // No space to break at: cut at the width, nothing lost.
        let long = "x".repeat(25);
        assert_eq!(wrap(&long, 10).concat(), long);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("→→→→", 2), ["→→", "→→"]);
    }

    #[test]
    fn the_table_keeps_addresses_whole_and_names_what_c3_controls() {
        let r1 = test(
            "R1",
            Kind::Trick,
            "<relaytest%example.net@[192.0.2.1]>",
            250,
            "2.1.5 Ok",
        );
        let r2 = test(
            "R2",
            Kind::Trick,
            "<relaytest%example.net@mx.example.org>",
            250,
            "2.1.5 Ok",
        );
        let r3 = test(
            "R3",
            Kind::Trick,
            "<relaytest%example.net@example.org>",
            550,
            "5.1.1 no such user here",
        );
        let c3 = test(
            "C3-ip",
            Kind::Control,
            "<rs0123@[192.0.2.1]>",
            550,
            "5.1.1 no such user",
        );
        let tests = [&r1, &r2, &r3, &c3];
        for width in [40, 100, 200] {
            let table = test_table(&tests, width);
            for t in &tests {
                let rcpt = t.rcpt_to.as_deref().unwrap_or_default();
                assert!(table.contains(rcpt), "{width}: {rcpt} cut\n{table}");
            }
            // C3-ip controls the accepted trick at the same place only.
            assert!(
                table.contains("controls R1: any local part there?"),
                "{table}"
            );
            assert!(!table.contains("controls R1 R2"), "{table}");
        }
        // Wide: one line per test; narrow: the reply under its test.
        let wide = test_table(&tests, 200);
        assert!(
            wide.lines()
                .any(|l| l.starts_with("  R1 ") && l.ends_with("250 2.1.5 Ok")),
            "{wide}"
        );
        let narrow = test_table(&tests, 60);
        assert!(narrow
            .lines()
            .next()
            .unwrap_or_default()
            .ends_with("(reply below)"));
        assert!(
            narrow.lines().any(|l| l.trim() == "250 2.1.5 Ok"),
            "{narrow}"
        );
    }

    #[test]
    fn the_worst_verdict_is_a_relay_then_untested_then_refusing() {
        let mut by = Status::ALL.to_vec();
        by.sort_by_key(|&s| severity(s));
        assert_eq!(&by[..2], &[Status::OpenRelay, Status::PossibleRelay]);
        let first_clean = by
            .iter()
            .position(|s| matches!(s, Status::Closed | Status::AuthRequired))
            .unwrap_or(0);
        assert!(by[2..first_clean].iter().all(|s| s.is_untested()), "{by:?}");
        assert_eq!(by.last(), Some(&Status::Excluded));
    }
}
