//! `relayscan report` and `relayscan diff` end to end: two scans of the lab
//! with one profile changed between them, hostile server text in the
//! report, the output-file rules.

mod common;

use common::{relayscan, TestLab, FAST, QUICK};
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Scan `addrs` into `out` (JSON Lines or CSV by its extension).
fn scan(addrs: &[String], out: &Path, extra: &[&str]) {
    let result = relayscan()
        .arg("scan")
        .args(addrs)
        .args(["-q", "-o"])
        .arg(out)
        .args(FAST)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        matches!(result.status.code(), Some(0 | 1)),
        "scan failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// The lab scanned twice: first postfix-closed, exim-closed and
/// opensmtpd-closed; then, on the same addresses and port, open-relay
/// (where postfix-closed was) and sendmail-closed (where exim-closed
/// was), the third address no longer scanned.
struct TwoScans {
    dir: tempfile::TempDir,
    addrs: Vec<String>,
}

impl TwoScans {
    fn run() -> TwoScans {
        let dir = tempfile::tempdir().unwrap();
        let before = TestLab::start(&["postfix-closed", "exim-closed", "opensmtpd-closed"]);
        let port = before.port();
        let addrs = before.addrs();
        scan(&addrs, &dir.path().join("old.jsonl"), &["--transcript"]);
        scan(&addrs, &dir.path().join("old.csv"), &[]);
        drop(before);
        let after = TestLab::start_on(&["open-relay", "sendmail-closed"], port);
        assert_eq!(after.addrs(), addrs[..2]);
        scan(
            &addrs[..2],
            &dir.path().join("new.jsonl"),
            &["--transcript"],
        );
        scan(&addrs[..2], &dir.path().join("new.csv"), &[]);
        TwoScans { dir, addrs }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn diff_of_two_lab_scans_names_the_changed_hosts() {
    let s = TwoScans::run();
    let (relay, changed, gone) = (&s.addrs[0], &s.addrs[1], &s.addrs[2]);

    // A new relay: exit 1, and the table names it.
    let out = relayscan()
        .arg("diff")
        .args([s.path("old.jsonl"), s.path("new.jsonl")])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line_of = |what: &str| {
        text.lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line in\n{text}"))
            .to_string()
    };
    let new_relay = line_of("new-relay");
    assert!(new_relay.contains(relay.as_str()), "{new_relay}");
    assert!(new_relay.contains("closed") && new_relay.contains("open-relay"));
    assert!(new_relay.contains("250 2.1.5 Ok"), "{new_relay}");
    assert!(line_of("software-changed").contains(&format!("{changed} ")));
    assert!(line_of("software-changed").contains("software exim 4"));
    assert!(line_of("software-changed").contains(" → sendmail 8"));
    assert!(line_of("vanished").contains(gone.as_str()));
    assert!(
        text.ends_with("3 changes: 1 new relay, 1 software change, 1 vanished\n"),
        "{text}"
    );

    // The other way round: the relay closed, a host appeared; exit 0.
    let out = relayscan()
        .args(["diff", "--format", "jsonl"])
        .args([s.path("new.jsonl"), s.path("old.jsonl")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["type"] == "change")
        .map(|l| (l["change"].as_str().unwrap(), l["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("relay-closed", relay.as_str()),
            ("software-changed", changed.as_str()),
            ("appeared", gone.as_str()),
        ]
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["new_relays"], 0);
    assert_eq!(summary["changes"], 3);

    // CSV on either side, and Markdown: the same changes.
    for (old, new) in [("old.csv", "new.jsonl"), ("old.jsonl", "new.csv")] {
        let out = relayscan()
            .args(["diff", "--format", "markdown"])
            .args([s.path(old), s.path(new)])
            .output()
            .unwrap();
        let md = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{old} {new}: {md}");
        assert!(
            md.contains(&format!("| new-relay | `{relay}` |")),
            "{old} {new}: {md}"
        );
        assert!(md.contains(&format!("| vanished | `{gone}` |")), "{md}");
    }

    // No change: exit 0.
    relayscan()
        .arg("diff")
        .args([s.path("new.jsonl"), s.path("new.csv")])
        .assert()
        .code(0)
        .stdout("no changes\n");

    // The report with a baseline shows the same changes.
    let html = s.path("report.html");
    relayscan()
        .args(["report", "--baseline"])
        .arg(s.path("old.jsonl"))
        .arg(s.path("new.jsonl"))
        .arg("-o")
        .arg(&html)
        .assert()
        .code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<b id=\"count-new-relays\">1</b>"));
    assert!(page.contains(&format!(
        "<tr class=\"change\" data-change=\"new-relay\"><td>new-relay</td><td><code>{relay}</code>"
    )));
    assert!(page.contains("3 changes: 1 new relay, 1 software change, 1 vanished"));
    // The relay's evidence and its fix (Postfix's).
    assert!(page.contains(&format!(
        "<article class=\"relay\" data-target=\"{relay}\">"
    )));
    // The session's start from the transcript, then the deciding test
    // with its replies.
    assert!(page.contains("Dialogue (from the transcript and the test record)"));
    assert!(page.contains(
        "S: 250 HELP\n… (the deciding test, S1, on connection 1)\nC: MAIL FROM:&lt;&gt;\n\
         S: 250 2.1.0 Ok\nC: RCPT TO:&lt;relaytest@example.net&gt;\nS: 250 2.1.5 Ok"
    ));
    assert!(page.contains("smtpd_relay_restrictions"));
}

#[test]
fn bad_input_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let missing = dir.path().join("missing.jsonl");
    relayscan()
        .arg("diff")
        .args([&junk, &junk])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "junk.txt is not a relayscan result file",
        ));
    relayscan()
        .arg("diff")
        .args([&missing, &junk])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
    let bad_json = dir.path().join("bad.jsonl");
    std::fs::write(&bad_json, "{\"type\":\"result\",\"ip\":1}\n").unwrap();
    relayscan()
        .arg("report")
        .arg(&bad_json)
        .arg("-o")
        .arg(dir.path().join("r.html"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.jsonl:1"));
    assert!(!dir.path().join("r.html").exists());
}

#[test]
fn report_follows_the_output_file_rules() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("scan.csv");
    scan(&lab.addrs(), &results, &[]);
    let out = dir.path().join("report.html");
    std::fs::write(&out, "keep me").unwrap();
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "exists: pass --force to overwrite it",
        ));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&out)
        .arg("--force")
        .assert()
        .code(0)
        .stdout("");
    let page = std::fs::read_to_string(&out).unwrap();
    // A CSV has no remediation column: the advice comes from the software.
    assert!(page.contains("<b id=\"count-relays\">1</b>"));
    assert!(page.contains("smtpd_relay_restrictions"), "Postfix's fix");
    assert!(page.contains("CSV input has no meta line"));
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(dir.path().join("no/such/dir/r.html"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    // .md means Markdown; `-` is standard output.
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(dir.path().join("summary.md"))
        .assert()
        .code(0);
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        md.starts_with("## relayscan report\n\n**1 relay** in 2 targets"),
        "{md}"
    );
    relayscan()
        .arg("report")
        .arg(&results)
        .args(["-o", "-", "--format", "markdown"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("| open-relay | 1 |"));
}

/// Is `needle` at `at` inside a Markdown code span of its line (an odd
/// number of backticks before it)?
fn in_code_span(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at].matches('`').count() % 2 == 1
}

#[test]
fn hostile_server_text_is_inert_in_html_and_markdown() {
    let lab = TestLab::hostile();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("hostile.jsonl");
    let out = relayscan()
        .arg("scan")
        .args(lab.addrs())
        .args(["-q", "--transcript", "-o"])
        .arg(&results)
        .args(QUICK)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)));
    // The lab's servers send terminal escapes, NULs, invalid UTF-8 and
    // formulas; add one that sends markup, as a server could.
    let text = std::fs::read_to_string(&results).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let template = lines
        .iter()
        .find(|l| l.contains("\"type\":\"result\""))
        .unwrap()
        .clone();
    let mut markup: Value = serde_json::from_str(&template).unwrap();
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'><b>|`x`|[l](http://e)";
    markup["ip"] = "127.0.0.250".into();
    markup["verdict"] = "open-relay".into();
    markup["deciding_test"] = "S1".into();
    markup["accepted"] = serde_json::json!(["S1"]);
    for field in ["banner", "reply", "hostname", "reason", "error"] {
        markup[field] = evil.into();
    }
    markup["notes"] = serde_json::json!([evil]);
    markup["transcript"] = serde_json::json!([{"dir": "S", "line": evil, "ms": 1}]);
    markup["vantage"] = serde_json::json!({"warnings": [evil]});
    lines.insert(1, markup.to_string());
    std::fs::write(&results, lines.join("\n") + "\n").unwrap();

    let html = dir.path().join("r.html");
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&html)
        .assert()
        .code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<script").count(), 1, "only the page's own");
    assert!(!page.contains("<img") && !page.contains("<b>|"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x"));
    let control: Vec<char> = page
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{2028}'..='\u{202E}').contains(c))
        .collect();
    assert!(control.is_empty(), "raw control characters: {control:?}");
    // The escape-codes server's colour codes are shown, not obeyed.
    assert!(
        page.contains("\\x1B[31;1mRED"),
        "escape codes shown as text"
    );

    let md = dir.path().join("r.md");
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&md)
        .assert()
        .code(0);
    let md = std::fs::read_to_string(&md).unwrap();
    let relays = lines
        .iter()
        .filter(|l| {
            l.contains("\"verdict\":\"open-relay\"") || l.contains("\"verdict\":\"possible-relay\"")
        })
        .count();
    let s = if relays == 1 { "" } else { "s" };
    assert!(md.contains(&format!("**{relays} relay{s}**")), "{md}");
    for needle in ["<script", "<img", "[l]("] {
        for (at, _) in md.match_indices(needle) {
            assert!(in_code_span(&md, at), "{needle} outside a code span: {md}");
        }
    }
    assert!(!md.chars().any(|c| c.is_control() && c != '\n'));
}

/// Several inputs (shards, or a scan and its resumed run): each target once.
#[test]
fn report_of_overlapping_files_shows_each_target_once() {
    let lab = TestLab::start(&["open-relay", "postfix-closed", "exim-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let addrs = lab.addrs();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.csv"));
    scan(&addrs[..2], &a, &[]);
    scan(&addrs[1..], &b, &[]);
    let out = dir.path().join("r.html");
    relayscan()
        .arg("report")
        .args([&a, &b])
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0);
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("<b id=\"count-total\">3</b>"));
    assert!(page.contains("<b id=\"count-relays\">1</b>"));
    for addr in &addrs {
        assert_eq!(
            page.matches(&format!("<code>{addr}</code></td>")).count(),
            1,
            "{addr} once in the table"
        );
    }
    // One settings block: the JSON Lines file's (the CSV has none).
    assert_eq!(page.matches("<dl class=\"meta\">").count(), 1);
}
