//! One result record: the facts about a target and the verdict on them, in
//! the shapes the output contract fixes (README, "Output").

use super::sanitize::csv_cell;
use super::schema::{AuthAudit, Ehlo, FindingLine, Remediation, ResultLine, ResultTag, TestLine};
use crate::relay::facts::{Hello, TlsMode};
use crate::relay::{audit, Audit, Confidence, Connect, Facts, Outcome, TestFacts, Verdict};
use crate::smtp::Reply;
use serde_json::Value;
use std::time::SystemTime;

/// The CSV header. A contract: columns are only ever appended, never reordered.
pub const CSV_HEADER: [&str; 16] = [
    "ip",
    "port",
    "hostname",
    "verdict",
    "confidence",
    "accepted",
    "reply",
    "banner",
    "software",
    "starttls",
    "tls_version",
    "auth",
    "error",
    "duration_ms",
    "timestamp",
    "dnsbl",
];

#[derive(Debug, Clone)]
pub struct Record {
    pub facts: Facts,
    pub verdict: Verdict,
    /// Software, TLS/AUTH findings with remediation, vantage point: derived
    /// from the facts and the verdict when the record is made.
    pub audit: Audit,
    pub timestamp: SystemTime,
}

impl Record {
    pub fn new(facts: Facts, verdict: Verdict) -> Self {
        let timestamp = SystemTime::now();
        let now = timestamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Record {
            audit: audit(&facts, &verdict, now),
            facts,
            verdict,
            timestamp,
        }
    }

    /// The announced name, else the PTR name, else the name it was found by.
    pub fn hostname(&self) -> Option<&str> {
        self.facts
            .host
            .as_deref()
            .or(self.facts.ptr.as_deref())
            .or(self.facts.name.as_deref())
    }

    /// How a reader names the target: its address, or `name:port` for a
    /// name that led to no address (never `0.0.0.0:25`).
    pub fn target_label(&self) -> String {
        match (&self.facts.name, self.facts.addr.ip().is_unspecified()) {
            (Some(name), true) => format!("{name}:{}", self.facts.addr.port()),
            _ => self.facts.addr.to_string(),
        }
    }

    pub fn banner(&self) -> Option<String> {
        self.facts.greeting.banner.as_ref().map(Reply::one_line)
    }

    /// What went wrong at the connection or session level, if anything.
    pub fn error(&self) -> Option<String> {
        match &self.facts.connect {
            Connect::Connected => {
                self.facts
                    .error
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| {
                        self.facts
                            .deadline_cut
                            .map(|step| format!("host-deadline: cut during {}", step.describe()))
                    })
            }
            Connect::Refused => Some("connection-refused".into()),
            Connect::Timeout => Some("connect-timeout".into()),
            Connect::Error { message } => Some(format!("connect-error: {message}")),
            Connect::Unresolved { message }
            | Connect::OutOfScope { message }
            | Connect::Excluded { message } => Some(message.clone()),
        }
    }

    /// `starttls` column: `implicit` (TLS from the first byte), `yes` (STARTTLS
    /// done), `failed` (tried, refused or handshake failed), `advertised`
    /// (offered, not used: `--starttls never`), `no`, or empty when EHLO did
    /// not succeed.
    pub fn starttls(&self) -> &'static str {
        if let Some(tls) = &self.facts.tls {
            return match (tls.mode, tls.session.is_some()) {
                (TlsMode::Implicit, true) => "implicit",
                (_, true) => "yes",
                (_, false) => "failed",
            };
        }
        match &self.facts.greeting.hello_command {
            Some(Hello::Ehlo)
                if self
                    .facts
                    .greeting
                    .hello
                    .as_ref()
                    .is_some_and(Reply::is_positive) =>
            {
                if self.facts.greeting.capabilities.starttls {
                    "advertised"
                } else {
                    "no"
                }
            }
            _ => "",
        }
    }

    /// The negotiated TLS version (`TLSv1.3`), if TLS was up.
    pub fn tls_version(&self) -> Option<&str> {
        self.facts
            .tls
            .as_ref()
            .and_then(|t| t.session.as_ref())
            .map(|s| s.version.as_str())
    }

    fn timestamp(&self) -> String {
        humantime::format_rfc3339_millis(self.timestamp).to_string()
    }

    /// The CSV row, every text cell neutralised.
    pub fn csv_row(&self) -> Vec<String> {
        CsvFields::of_record(self).row()
    }

    /// The JSON Lines `result` line. Text is kept as the server sent it
    /// (JSON escapes control characters; invalid UTF-8 is `\xNN`).
    pub fn json(&self, transcript: bool) -> ResultLine {
        self.line(if transcript {
            Detail::Transcript
        } else {
            Detail::Tests
        })
    }

    fn line(&self, detail: Detail) -> ResultLine {
        let f = &self.facts;
        let v = &self.verdict;
        let tests = |list: &[TestFacts]| list.iter().map(test_line).collect::<Vec<_>>();
        ResultLine {
            accepted: v.accepted.iter().map(|s| s.to_string()).collect(),
            auth: f.greeting.capabilities.auth.clone(),
            auth_audit: f.auth.as_ref().map(auth_audit),
            auth_tls: f
                .tls
                .as_ref()
                .and_then(|t| t.capabilities.as_ref())
                .map(|c| c.auth.clone()),
            banner: self.banner(),
            confidence: v.confidence,
            confirmation: value(&f.confirmation),
            connections: f.connections,
            controls: Some(tests(&f.controls)),
            deadline_cut: f.deadline_cut,
            deciding_test: v.deciding_test.map(String::from),
            dnsbl: value(&f.dnsbl),
            duration_ms: f.duration_ms,
            ehlo: Ehlo {
                command: f.greeting.hello_command.map(|h| h.as_str().to_string()),
                extensions: f.greeting.capabilities.keywords.clone(),
                reply: f.greeting.hello.as_ref().map(|r| r.lines.to_vec()),
            },
            error: self.error(),
            findings: self
                .audit
                .findings
                .iter()
                .map(|x| FindingLine {
                    id: x.id,
                    remediation: x.remediation.map(String::from),
                    severity: x.severity,
                    summary: x.summary.clone(),
                })
                .collect(),
            hostname: self.hostname().map(String::from),
            // A name that did not resolve has no address.
            ip: (!f.addr.ip().is_unspecified()).then(|| f.addr.ip()),
            mx: value(&f.mx),
            name: f.name.clone(),
            notes: v
                .notes
                .iter()
                .cloned()
                .chain(f.replies_cut.map(|c| c.note()))
                .collect(),
            port: f.addr.port(),
            ptr: f.ptr.clone(),
            reason: v.reason.clone(),
            remediation: self
                .audit
                .findings
                .iter()
                .filter_map(|x| {
                    x.remediation.map(|r| Remediation {
                        finding: x.id,
                        fix: r.to_string(),
                    })
                })
                .collect(),
            reply: v.reply.clone(),
            software: self.audit.software.as_ref().map(|s| s.software),
            software_version: self.audit.software.as_ref().and_then(|s| s.version.clone()),
            source: f.source,
            starttls: Some(self.starttls())
                .filter(|s| !s.is_empty())
                .map(String::from),
            target_domain: f.target_domain.clone(),
            tests: Some(tests(&f.tests)),
            timestamp: self.timestamp(),
            tls: value(&f.tls),
            tls_version: self.tls_version().map(String::from),
            transcript: (detail == Detail::Transcript).then(|| value(&f.transcript)),
            kind: ResultTag::Tag,
            vantage: value(&self.audit.vantage),
            verdict: v.verdict,
        }
    }
}

/// How much of a record goes into its result line: the transcript only
/// with `--transcript`. (A CSV row is read from the record itself:
/// [`CsvFields::of_record`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Tests,
    Transcript,
}

/// AUTH mechanisms before TLS, and after it when they changed:
/// `LOGIN;tls:PLAIN;tls:LOGIN` reads "LOGIN in plaintext, PLAIN and LOGIN over TLS".
pub fn auth_cell<S: AsRef<str>>(before: &[S], after: Option<&[S]>, implicit: bool) -> String {
    let mut cells: Vec<String> = before.iter().map(|m| m.as_ref().to_string()).collect();
    if let Some(after) = after {
        let same = after.len() == before.len()
            && after
                .iter()
                .zip(before)
                .all(|(a, b)| a.as_ref() == b.as_ref());
        if !same && !implicit {
            cells.extend(after.iter().map(|m| format!("tls:{}", m.as_ref())));
        }
    }
    cells.join(";")
}

/// What a CSV row shows, borrowed from a record (the scan's own CSV) or
/// from a result line read back (`relayscan merge`): [`CsvFields::row`] is
/// the one definition of the row for both.
pub struct CsvFields<'a> {
    ip: Option<std::net::IpAddr>,
    port: u16,
    hostname: Option<&'a str>,
    verdict: crate::relay::Status,
    confidence: Option<Confidence>,
    accepted: Vec<&'a str>,
    reply: Option<&'a str>,
    banner: Option<String>,
    software: Option<crate::relay::fingerprint::Software>,
    starttls: &'a str,
    tls_version: Option<&'a str>,
    auth: &'a [String],
    auth_tls: Option<&'a [String]>,
    implicit: bool,
    error: Option<String>,
    duration_ms: u64,
    timestamp: String,
    zones: Vec<&'a str>,
}

impl<'a> CsvFields<'a> {
    /// A record's fields, read straight from its facts: no result line is
    /// built (its tests, TLS and blocklist objects cost a few dozen
    /// allocations, and a row needs none of them).
    pub fn of_record(r: &'a Record) -> CsvFields<'a> {
        let f = &r.facts;
        let v = &r.verdict;
        CsvFields {
            ip: (!f.addr.ip().is_unspecified()).then(|| f.addr.ip()),
            port: f.addr.port(),
            hostname: r.hostname(),
            verdict: v.verdict,
            confidence: v.confidence,
            accepted: v.accepted.clone(),
            reply: v.reply.as_deref(),
            banner: r.banner(),
            software: r.audit.software.as_ref().map(|s| s.software),
            starttls: r.starttls(),
            tls_version: r.tls_version(),
            auth: &f.greeting.capabilities.auth,
            auth_tls: f
                .tls
                .as_ref()
                .and_then(|t| t.capabilities.as_ref())
                .map(|c| c.auth.as_slice()),
            implicit: f.tls.as_ref().is_some_and(|t| t.mode == TlsMode::Implicit),
            error: r.error(),
            duration_ms: f.duration_ms,
            timestamp: r.timestamp(),
            zones: f
                .dnsbl
                .as_ref()
                .map(|d| d.listed.iter().map(|l| l.zone.as_str()).collect())
                .unwrap_or_default(),
        }
    }

    /// A result line's fields, as `merge` reads them back.
    pub fn of_line(r: &'a ResultLine) -> CsvFields<'a> {
        CsvFields {
            ip: r.ip,
            port: r.port,
            hostname: r.hostname.as_deref(),
            verdict: r.verdict,
            confidence: r.confidence,
            accepted: r.accepted.iter().map(String::as_str).collect(),
            reply: r.reply.as_deref(),
            banner: r.banner.clone(),
            software: r.software,
            starttls: r.starttls.as_deref().unwrap_or(""),
            tls_version: r.tls_version.as_deref(),
            auth: &r.auth,
            auth_tls: r.auth_tls.as_deref(),
            implicit: r.tls["mode"] == "implicit",
            error: r.error.clone(),
            duration_ms: r.duration_ms,
            timestamp: r.timestamp.clone(),
            zones: r.dnsbl["listed"]
                .as_array()
                .map(|a| a.iter().filter_map(|l| l["zone"].as_str()).collect())
                .unwrap_or_default(),
        }
    }

    /// The row, every text cell neutralised.
    pub fn row(&self) -> Vec<String> {
        let text = |s: Option<&str>| csv_cell(s.unwrap_or("")).into_owned();
        vec![
            self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            self.port.to_string(),
            text(self.hostname),
            self.verdict.as_str().to_string(),
            text(self.confidence.map(Confidence::as_str)),
            csv_cell(&self.accepted.join(";")).into_owned(),
            text(self.reply),
            text(self.banner.as_deref()),
            text(self.software.map(|s| s.as_str())),
            text(Some(self.starttls)),
            text(self.tls_version),
            csv_cell(&auth_cell(self.auth, self.auth_tls, self.implicit)).into_owned(),
            text(self.error.as_deref()),
            self.duration_ms.to_string(),
            text(Some(&self.timestamp)),
            csv_cell(&self.zones.join(";")).into_owned(),
        ]
    }
}

/// The CSV row of a result line, every text cell neutralised (`merge`).
pub fn csv_row(r: &ResultLine) -> Vec<String> {
    CsvFields::of_line(r).row()
}

/// The `--auth` tests. The password is not in the facts, so it cannot be here.
fn auth_audit(a: &crate::relay::auth::AuthFacts) -> AuthAudit {
    AuthAudit {
        after_failed_auth: a.after_failed_auth.as_ref().map(test_line),
        authenticated_relay: a.authenticated_relay.as_ref().map(test_line),
        login: value(&a.login),
        password: value(&a.password),
        skipped: a.skipped.clone(),
        user: a.user.clone(),
        wrong_password: value(&a.wrong_password),
    }
}

/// A sub-object another module defines, as JSON. Serialising these facts
/// cannot fail (every map key is a string); `null` would be the fallback.
fn value<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

fn test_line(t: &TestFacts) -> TestLine {
    let outcome = Outcome::of(t);
    TestLine {
        class: outcome.refusal(),
        connection: t.connection,
        error: t.error.as_ref().map(ToString::to_string),
        id: t.id.to_string(),
        kind: t.kind,
        mail_from: t.mail_from.as_deref().map(str::to_string),
        outcome: outcome.label().to_string(),
        rcpt_to: t.rcpt_to.as_deref().map(str::to_string),
        replies: t
            .mail_reply
            .iter()
            .chain(t.rcpt_reply.iter())
            .map(Reply::one_line)
            .collect(),
        skipped: t.skipped.as_deref().map(String::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::dnsbl::Listing;
    use crate::dns::BlocklistCheck;
    use crate::relay::facts::{Greeting, TlsFacts};
    use crate::relay::{classify, Status};
    use crate::smtp::Capabilities;
    use std::net::SocketAddr;

    /// Records whose every CSV cell has something to show, in variants.
    fn records() -> Vec<Record> {
        let mut out = Vec::new();
        for i in 0..8u8 {
            let addr = SocketAddr::from(([127, 0, 0, i], 25));
            let mut facts = Facts::new(addr, (i % 2 == 0).then(|| "mx.example.test".into()));
            facts.greeting = Greeting {
                banner: Some(Reply::new(220, "=mx.example.test ESMTP \u{1b}[31mred")),
                hello_command: (i % 4 != 3).then_some(Hello::Ehlo),
                hello: Some(Reply::new(250, "mx.example.test")),
                capabilities: Capabilities {
                    starttls: i % 3 == 0,
                    auth: vec!["LOGIN".into(), "PLAIN".into()],
                    ..Capabilities::default()
                },
                ..Greeting::default()
            };
            if i % 2 == 1 {
                facts.tls = Some(TlsFacts {
                    mode: if i % 4 == 1 {
                        TlsMode::Implicit
                    } else {
                        TlsMode::StartTls
                    },
                    capabilities: Some(Capabilities {
                        auth: vec!["PLAIN".into(), "CRAM-MD5".into()],
                        ..Capabilities::default()
                    }),
                    ..TlsFacts::default()
                });
            }
            if i >= 4 {
                facts.dnsbl = Some(BlocklistCheck {
                    listed: vec![
                        Listing {
                            zone: "zen.example".into(),
                            codes: vec!["127.0.0.2".into()],
                            reason: None,
                        },
                        Listing {
                            zone: "@bl.example".into(),
                            codes: Vec::new(),
                            reason: Some("listed".into()),
                        },
                    ],
                    ..BlocklistCheck::default()
                });
                facts.connect = Connect::Error {
                    message: "+reset by peer".into(),
                };
            }
            facts.duration_ms = 1000 + u64::from(i);
            let mut verdict = classify(&facts);
            if i % 3 == 1 {
                verdict.verdict = Status::OpenRelay;
                verdict.accepted = vec!["S1", "R4"];
                verdict.confidence = Some(Confidence::Delivered);
                verdict.reply = Some("-250 2.1.5 ok".into());
            }
            out.push(Record::new(facts, verdict));
        }
        out
    }

    /// The scan writes a record's row from its facts; `merge` writes it
    /// from the result line read back: the two rows are the same.
    #[test]
    fn a_records_csv_row_is_the_row_merge_writes_from_its_result_line() {
        let records = records();
        for r in &records {
            let line: ResultLine =
                serde_json::from_value(serde_json::to_value(r.json(false)).unwrap()).unwrap();
            assert_eq!(r.csv_row(), csv_row(&line), "{:?}", r.facts.addr);
        }
        // The variants reach every kind of cell.
        let rows: Vec<Vec<String>> = records.iter().map(Record::csv_row).collect();
        let column = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
        let cells = |name: &str| -> Vec<&str> {
            rows.iter().map(|row| row[column(name)].as_str()).collect()
        };
        assert!(cells("auth").contains(&"LOGIN;PLAIN;tls:PLAIN;tls:CRAM-MD5"));
        assert!(cells("auth").contains(&"LOGIN;PLAIN"));
        assert!(cells("dnsbl").contains(&"zen.example;@bl.example"));
        assert!(cells("starttls").contains(&"advertised"));
        assert!(cells("starttls").contains(&"failed"));
        assert!(cells("accepted").contains(&"S1;R4"));
        assert!(cells("reply").contains(&"'-250 2.1.5 ok"));
        assert!(cells("error").contains(&"connect-error: +reset by peer"));
        // The server's escape sequence is shown, never sent to a terminal.
        let banner = "220 =mx.example.test ESMTP \\x1B[31mred";
        assert!(cells("banner").iter().all(|b| *b == banner), "{rows:?}");
        assert!(cells("hostname").contains(&"mx.example.test"));
    }
}
