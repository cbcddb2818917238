//! One result record: the facts about a target and the verdict on them, in
//! the shapes the output contract fixes (README, "Output").

use super::sanitize::csv_cell;
use crate::relay::facts::{Hello, TlsMode};
use crate::relay::{audit, Audit, Connect, Facts, Outcome, TestFacts, Verdict};
use crate::smtp::Reply;
use serde_json::{json, Value};
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
            Connect::Connected => self.facts.error.clone().or_else(|| {
                self.facts
                    .deadline_cut
                    .map(|step| format!("host-deadline: cut during {}", step.describe()))
            }),
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

    /// AUTH mechanisms as advertised, for the CSV `auth` column (see [`auth_cell`]).
    pub fn auth_mechanisms(&self) -> String {
        let (before, after) = crate::relay::auth::mechanisms(&self.facts);
        let implicit = self
            .facts
            .tls
            .as_ref()
            .is_some_and(|t| t.mode == TlsMode::Implicit);
        auth_cell(&before, after.as_deref(), implicit)
    }

    fn timestamp(&self) -> String {
        humantime::format_rfc3339_millis(self.timestamp).to_string()
    }

    /// The CSV row, every text cell neutralised.
    pub fn csv_row(&self) -> Vec<String> {
        csv_row(&self.object(Detail::Summary))
    }

    /// The JSON Lines `result` object. Text is kept as the server sent it
    /// (JSON escapes control characters; invalid UTF-8 is `\xNN`).
    pub fn json(&self, transcript: bool) -> Value {
        self.object(if transcript {
            Detail::Transcript
        } else {
            Detail::Tests
        })
    }

    fn object(&self, detail: Detail) -> Value {
        let f = &self.facts;
        let v = &self.verdict;
        let mut obj = json!({
            "type": "result",
            // A name that did not resolve has no address.
            "ip": (!f.addr.ip().is_unspecified()).then(|| f.addr.ip().to_string()),
            "port": f.addr.port(),
            "hostname": self.hostname(),
            "name": f.name,
            "source": f.source.map(|s| s.to_string()),
            "verdict": v.verdict,
            "confidence": v.confidence,
            "accepted": v.accepted,
            "deciding_test": v.deciding_test,
            "reply": v.reply,
            "reason": v.reason,
            "notes": v.notes,
            "banner": self.banner(),
            "software": self.audit.software.as_ref().map(|s| s.software),
            "software_version": self.audit.software.as_ref().and_then(|s| s.version.as_deref()),
            "starttls": Some(self.starttls()).filter(|s| !s.is_empty()),
            "tls_version": self.tls_version(),
            "tls": f.tls,
            "auth": f.greeting.capabilities.auth,
            "auth_tls": f.tls.as_ref().and_then(|t| t.capabilities.as_ref()).map(|c| &c.auth),
            "auth_audit": f.auth.as_ref().map(auth_json),
            "confirmation": f.confirmation,
            "findings": self.audit.findings,
            "remediation": self.audit.findings.iter().filter_map(|x| x.remediation.map(|r| json!({"finding": x.id, "fix": r}))).collect::<Vec<_>>(),
            "vantage": self.audit.vantage,
            "ehlo": {
                "command": f.greeting.hello_command,
                "reply": f.greeting.hello.as_ref().map(|r| &r.lines),
                "extensions": f.greeting.capabilities.keywords,
            },
            "target_domain": f.target_domain,
            "mx": f.mx,
            "ptr": f.ptr,
            "dnsbl": f.dnsbl,
            "connections": f.connections,
            "deadline_cut": f.deadline_cut,
            "error": self.error(),
            "duration_ms": f.duration_ms,
            "timestamp": self.timestamp(),
        });
        if detail != Detail::Summary {
            obj["tests"] = f.tests.iter().map(test_json).collect();
            obj["controls"] = f.controls.iter().map(test_json).collect();
        }
        if detail == Detail::Transcript {
            obj["transcript"] = json!(f.transcript);
        }
        obj
    }
}

/// How much of a record goes into its JSON object: a CSV row needs only
/// the top-level fields, so it skips building every test's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Summary,
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

/// The CSV row of a JSON `result` object, every text cell neutralised. One
/// definition serves the scan's own CSV and `relayscan merge`.
pub fn csv_row(result: &Value) -> Vec<String> {
    let text = |k: &str| csv_cell(result[k].as_str().unwrap_or("")).into_owned();
    let list = |k: &str| {
        let items: Vec<&str> = result[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        csv_cell(&items.join(";")).into_owned()
    };
    let number = |k: &str| {
        result[k]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    vec![
        text("ip"),
        number("port"),
        text("hostname"),
        text("verdict"),
        text("confidence"),
        list("accepted"),
        text("reply"),
        text("banner"),
        text("software"),
        text("starttls"),
        text("tls_version"),
        {
            let strings = |v: &Value| -> Option<Vec<String>> {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
            };
            let before = strings(&result["auth"]).unwrap_or_default();
            let after = strings(&result["auth_tls"]);
            let implicit = result["tls"]["mode"] == "implicit";
            csv_cell(&auth_cell(&before, after.as_deref(), implicit)).into_owned()
        },
        text("error"),
        number("duration_ms"),
        text("timestamp"),
        {
            let zones: Vec<&str> = result["dnsbl"]["listed"]
                .as_array()
                .map(|a| a.iter().filter_map(|l| l["zone"].as_str()).collect())
                .unwrap_or_default();
            csv_cell(&zones.join(";")).into_owned()
        },
    ]
}

/// The `--auth` tests. The password is not in the facts, so it cannot be here.
fn auth_json(a: &crate::relay::auth::AuthFacts) -> Value {
    json!({
        "user": a.user,
        "wrong_password": a.wrong_password,
        "after_failed_auth": a.after_failed_auth.as_ref().map(test_json),
        "login": a.login,
        "authenticated_relay": a.authenticated_relay.as_ref().map(test_json),
        "password": a.password,
        "skipped": a.skipped,
    })
}

fn test_json(t: &TestFacts) -> Value {
    let outcome = Outcome::of(t);
    let replies: Vec<String> = t
        .mail_reply
        .iter()
        .chain(t.rcpt_reply.iter())
        .map(Reply::one_line)
        .collect();
    json!({
        "id": t.id,
        "kind": t.kind,
        "mail_from": t.mail_from,
        "rcpt_to": t.rcpt_to,
        "replies": replies,
        "outcome": outcome.label(),
        "class": outcome.refusal(),
        "skipped": t.skipped,
        "error": t.error,
        "connection": t.connection,
    })
}
