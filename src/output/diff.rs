//! What changed between two scans (`relayscan diff OLD NEW`, and the
//! "Changes" section of a report with `--baseline`): new relays, relays
//! that closed, other verdict changes, software changes, targets that
//! appeared or vanished. Pure: two lists of results in, a list of changes
//! out; the renderings follow.

use super::results::HostKey;
use super::sanitize::{json_line, terminal, truncate};
use super::schema::ResultLine;
use crate::relay::Status;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What kind of change, in the order a reader wants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A relay now, and not before (or not there before).
    NewRelay,
    /// A relay before, present and no relay now.
    RelayClosed,
    /// Another verdict change (`closed` → `timeout`, `open-relay` →
    /// `possible-relay`).
    VerdictChanged,
    /// The detected software or its version changed.
    SoftwareChanged,
    /// A target in the new scan only (not a relay).
    Appeared,
    /// A target in the old scan only.
    Vanished,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 6] = [
        ChangeKind::NewRelay,
        ChangeKind::RelayClosed,
        ChangeKind::VerdictChanged,
        ChangeKind::SoftwareChanged,
        ChangeKind::Appeared,
        ChangeKind::Vanished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewRelay => "new-relay",
            ChangeKind::RelayClosed => "relay-closed",
            ChangeKind::VerdictChanged => "verdict-changed",
            ChangeKind::SoftwareChanged => "software-changed",
            ChangeKind::Appeared => "appeared",
            ChangeKind::Vanished => "vanished",
        }
    }

    /// How a summary line names `n` of them.
    fn counted(self, n: usize) -> String {
        let s = if n == 1 { "" } else { "s" };
        match self {
            ChangeKind::NewRelay => format!("{n} new relay{s}"),
            ChangeKind::RelayClosed => format!("{n} relay{s} closed"),
            ChangeKind::VerdictChanged => format!("{n} other verdict change{s}"),
            ChangeKind::SoftwareChanged => format!("{n} software change{s}"),
            ChangeKind::Appeared => format!("{n} appeared"),
            ChangeKind::Vanished => format!("{n} vanished"),
        }
    }
}

/// One change to one target. A target whose verdict and software both
/// changed has two. Fields in byte order, like every object relayscan
/// writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    /// The test that decided the new verdict (the old one's for a target
    /// that vanished).
    pub deciding_test: Option<String>,
    pub hostname: Option<String>,
    pub new_software: Option<String>,
    pub new_verdict: Option<Status>,
    pub old_software: Option<String>,
    pub old_verdict: Option<Status>,
    /// The reply (or error) that decided it, on one line.
    pub reply: Option<String>,
    /// `ip:port`, or `name:port` for a name that led to no address.
    pub target: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Every change from `old` to `new`, new relays first, then by target.
pub fn diff(old: &[ResultLine], new: &[ResultLine]) -> Vec<Change> {
    let index = |list: &[ResultLine]| -> BTreeMap<HostKey, usize> {
        let mut m = BTreeMap::new();
        for (i, r) in list.iter().enumerate() {
            m.entry(HostKey::of(r)).or_insert(i);
        }
        m
    };
    let (old_ix, new_ix) = (index(old), index(new));
    let mut keys: Vec<&HostKey> = old_ix.keys().chain(new_ix.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let o = old_ix.get(key).map(|&i| &old[i]);
        let n = new_ix.get(key).map(|&i| &new[i]);
        let change = |change: ChangeKind| {
            // The new record's evidence, else (a vanished target) the old one's.
            let decided = n.or(o);
            Change {
                change,
                target: key.to_string(),
                // A host that stopped answering has no name now: its old one.
                hostname: n
                    .and_then(|r| r.hostname.clone())
                    .or_else(|| o.and_then(|r| r.hostname.clone())),
                old_verdict: o.map(|r| r.verdict),
                new_verdict: n.map(|r| r.verdict),
                old_software: o.and_then(software),
                new_software: n.and_then(software),
                deciding_test: decided.and_then(|r| r.deciding_test.clone()),
                reply: decided.and_then(|r| r.reply.clone().or_else(|| r.error.clone())),
                kind: "change",
            }
        };
        match (o, n) {
            (None, Some(n)) if n.verdict.is_relay() => out.push(change(ChangeKind::NewRelay)),
            (None, Some(_)) => out.push(change(ChangeKind::Appeared)),
            (Some(_), None) => out.push(change(ChangeKind::Vanished)),
            (Some(o), Some(n)) => {
                if !o.verdict.is_relay() && n.verdict.is_relay() {
                    out.push(change(ChangeKind::NewRelay));
                } else if o.verdict.is_relay() && !n.verdict.is_relay() {
                    out.push(change(ChangeKind::RelayClosed));
                } else if o.verdict != n.verdict {
                    out.push(change(ChangeKind::VerdictChanged));
                }
                if software_changed(o, n) {
                    out.push(change(ChangeKind::SoftwareChanged));
                }
            }
            (None, None) => {}
        }
    }
    out.sort_by_key(|c| c.change);
    out
}

/// `postfix 3.7.1`, `postfix`, or none.
fn software(r: &ResultLine) -> Option<String> {
    let name = r.software?.as_str();
    Some(match &r.software_version {
        Some(v) => format!("{name} {v}"),
        None => name.to_string(),
    })
}

/// Only software seen on both sides counts (a host that stopped answering
/// has none, which is its verdict's change), and a version only when both
/// sides have one (a CSV has no version column).
fn software_changed(o: &ResultLine, n: &ResultLine) -> bool {
    match (o.software, n.software) {
        (Some(a), Some(b)) if a != b => true,
        (Some(_), Some(_)) => {
            matches!((&o.software_version, &n.software_version), (Some(a), Some(b)) if a != b)
        }
        _ => false,
    }
}

/// The number of changes of each kind, zeros left out.
pub fn counts(changes: &[Change]) -> Vec<(ChangeKind, usize)> {
    ChangeKind::ALL
        .iter()
        .map(|k| (*k, changes.iter().filter(|c| c.change == *k).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// One line: `2 changes: 1 new relay, 1 vanished`, or `no changes`.
pub fn summary(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes".into();
    }
    let parts: Vec<String> = counts(changes)
        .into_iter()
        .map(|(k, n)| k.counted(n))
        .collect();
    let s = if changes.len() == 1 { "" } else { "s" };
    format!("{} change{s}: {}", changes.len(), parts.join(", "))
}

fn verdict(v: Option<Status>) -> &'static str {
    v.map_or("-", Status::as_str)
}

/// What the change is about, on one line: the verdicts, the software, the
/// deciding reply.
fn detail(c: &Change) -> String {
    match c.change {
        ChangeKind::SoftwareChanged => format!(
            "software {} → {}",
            c.old_software.as_deref().unwrap_or("-"),
            c.new_software.as_deref().unwrap_or("-")
        ),
        _ => {
            let test = c
                .deciding_test
                .as_deref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            c.reply
                .as_deref()
                .map(|r| format!("{test}{r}"))
                .unwrap_or_default()
        }
    }
}

/// A plain-text table for a terminal, server text neutralised.
pub fn table(changes: &[Change]) -> String {
    let mut out = String::new();
    if !changes.is_empty() {
        let _ = writeln!(
            out,
            "{:<17} {:<24} {:<15} {:<15} DETAIL",
            "CHANGE", "TARGET", "OLD", "NEW"
        );
    }
    for c in changes {
        let _ = writeln!(
            out,
            "{:<17} {:<24} {:<15} {:<15} {}",
            c.change.as_str(),
            terminal(&c.target),
            verdict(c.old_verdict),
            verdict(c.new_verdict),
            truncate(&terminal(&detail(c)), 80)
        );
    }
    let _ = writeln!(out, "{}", summary(changes));
    out
}

/// One JSON object per change, then a `summary` line with the counts.
pub fn jsonl(changes: &[Change]) -> serde_json::Result<String> {
    let mut out = String::new();
    for c in changes {
        out.push_str(&json_line(c)?);
        out.push('\n');
    }
    let counts: BTreeMap<&str, usize> = counts(changes)
        .into_iter()
        .map(|(k, n)| (k.as_str(), n))
        .collect();
    let summary = serde_json::json!({
        "changes": changes.len(),
        "counts": counts,
        "new_relays": changes.iter().filter(|c| c.change == ChangeKind::NewRelay).count(),
        "type": "summary",
    });
    out.push_str(&json_line(&summary)?);
    out.push('\n');
    Ok(out)
}

/// Markdown (a CI job summary): a heading, the summary line, a table.
pub fn markdown(changes: &[Change]) -> String {
    let mut out = String::from("### relayscan diff\n\n");
    let _ = writeln!(out, "{}\n", summary(changes));
    if changes.is_empty() {
        return out;
    }
    out.push_str("| Change | Target | Host name | Old | New | Detail |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for c in changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            c.change.as_str(),
            md_code(&c.target),
            md_code(c.hostname.as_deref().unwrap_or("")),
            verdict(c.old_verdict),
            verdict(c.new_verdict),
            md_code(&truncate(&detail(c), 120))
        );
    }
    out
}

/// Server text in a Markdown table cell: as inline code, so no emphasis,
/// link or HTML in it takes effect; control characters made visible, `|`
/// escaped (GitHub's tables split on it even in code), backticks replaced.
pub fn md_code(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let clean = terminal(s).replace('`', "ʼ").replace('|', "\\|");
    format!("`{clean}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::fingerprint::Software;

    fn host(ip: &str, verdict: Status, software: Option<Software>) -> ResultLine {
        let v = serde_json::json!({
            "accepted": [], "auth": [], "auth_audit": null, "auth_tls": null, "banner": null,
            "confidence": null, "confirmation": null, "connections": 1, "deadline_cut": null,
            "deciding_test": null, "dnsbl": null, "duration_ms": 1,
            "ehlo": {"command": null, "extensions": [], "reply": null}, "error": null,
            "findings": [], "hostname": null, "ip": ip, "mx": null, "name": null, "notes": [],
            "port": 25, "ptr": null, "reason": "", "remediation": [], "reply": null,
            "software": software, "software_version": null, "source": null, "starttls": null,
            "target_domain": null, "timestamp": "", "tls": null, "tls_version": null,
            "type": "result", "vantage": null, "verdict": verdict,
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_kind_of_change_is_found() {
        use Status::*;
        let old = vec![
            host("10.0.0.1", Closed, Some(Software::Postfix)),
            host("10.0.0.2", OpenRelay, None),
            host("10.0.0.3", Closed, Some(Software::Postfix)),
            host("10.0.0.4", Closed, None),
            host("10.0.0.5", OpenRelay, None),
            host("10.0.0.6", Closed, None),
            host("10.0.0.9", Closed, Some(Software::Postfix)),
        ];
        let new = vec![
            host("10.0.0.1", OpenRelay, Some(Software::Postfix)),
            host("10.0.0.2", Closed, None),
            host("10.0.0.3", Closed, Some(Software::Exim)),
            host("10.0.0.4", Timeout, None),
            host("10.0.0.5", PossibleRelay, None),
            host("10.0.0.7", Closed, None),
            host("10.0.0.8", PossibleRelay, None),
            // Software no longer seen is not a software change.
            host("10.0.0.9", Timeout, None),
        ];
        let changes = diff(&old, &new);
        let got: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.change.as_str(), c.target.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("new-relay", "10.0.0.1:25"),
                ("new-relay", "10.0.0.8:25"),
                ("relay-closed", "10.0.0.2:25"),
                ("verdict-changed", "10.0.0.4:25"),
                ("verdict-changed", "10.0.0.5:25"),
                ("verdict-changed", "10.0.0.9:25"),
                ("software-changed", "10.0.0.3:25"),
                ("appeared", "10.0.0.7:25"),
                ("vanished", "10.0.0.6:25"),
            ]
        );
        assert_eq!(
            summary(&changes),
            "9 changes: 2 new relays, 1 relay closed, 3 other verdict changes, \
             1 software change, 1 appeared, 1 vanished"
        );
        assert!(diff(&old, &old).is_empty());
        assert_eq!(summary(&[]), "no changes");
    }

    #[test]
    fn renderings_neutralise_server_text() {
        let mut n = host("10.0.0.1", Status::OpenRelay, None);
        n.reply = Some("250 ok\u{1b}[2J | `x` <script>".into());
        let changes = diff(&[], &[n]);
        let t = table(&changes);
        assert!(!t.contains('\u{1b}') && t.contains("\\x1B[2J"), "{t}");
        let m = markdown(&changes);
        assert!(m.contains("`250 ok\\x1B[2J \\| ʼxʼ <script>`"), "{m}");
        let j = jsonl(&changes).unwrap();
        assert!(j
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
        assert!(j.contains(r#""change":"new-relay""#), "{j}");
        assert!(
            j.ends_with("\"new_relays\":1,\"type\":\"summary\"}\n"),
            "{j}"
        );
    }
}
