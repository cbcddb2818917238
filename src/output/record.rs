//! One result record: the facts about a target and the verdict on them, in
//! the shapes the output contract fixes (README, "Output").

use super::sanitize::csv_cell;
use crate::relay::{Connect, Facts, Outcome, TestFacts, Verdict};
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
    pub timestamp: SystemTime,
}

impl Record {
    pub fn new(facts: Facts, verdict: Verdict) -> Self {
        Record {
            facts,
            verdict,
            timestamp: SystemTime::now(),
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

    pub fn banner(&self) -> Option<String> {
        self.facts.greeting.banner.as_ref().map(Reply::one_line)
    }

    /// What went wrong at the connection or session level, if anything.
    pub fn error(&self) -> Option<String> {
        match &self.facts.connect {
            Connect::Connected => self.facts.error.clone(),
            Connect::Refused => Some("connection-refused".into()),
            Connect::Timeout => Some("connect-timeout".into()),
            Connect::Error { message } => Some(format!("connect-error: {message}")),
            Connect::Unresolved { message } => Some(message.clone()),
        }
    }

    fn starttls(&self) -> &'static str {
        match &self.facts.greeting.hello_command {
            Some("EHLO")
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

    fn timestamp(&self) -> String {
        humantime::format_rfc3339_millis(self.timestamp).to_string()
    }

    /// The CSV row, every text cell neutralised.
    pub fn csv_row(&self) -> Vec<String> {
        csv_row(&self.json(false))
    }

    /// The JSON Lines `result` object. Text is kept as the server sent it
    /// (JSON escapes control characters; invalid UTF-8 is `\xNN`).
    pub fn json(&self, transcript: bool) -> Value {
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
            "software": Value::Null,
            "starttls": self.starttls(),
            "tls_version": Value::Null,
            "auth": f.greeting.capabilities.auth,
            "ehlo": {
                "command": f.greeting.hello_command,
                "reply": f.greeting.hello.as_ref().map(|r| &r.lines),
                "extensions": f.greeting.capabilities.keywords,
            },
            "target_domain": f.target_domain,
            "mx": f.mx,
            "ptr": f.ptr,
            "dnsbl": f.dnsbl,
            "tests": f.tests.iter().map(test_json).collect::<Vec<_>>(),
            "controls": f.controls.iter().map(test_json).collect::<Vec<_>>(),
            "connections": f.connections,
            "error": self.error(),
            "duration_ms": f.duration_ms,
            "timestamp": self.timestamp(),
        });
        if transcript {
            obj["transcript"] = json!(f.transcript);
        }
        obj
    }
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
        list("auth"),
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
