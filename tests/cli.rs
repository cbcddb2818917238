//! The binary end to end against the lab: verdicts, output contract, exit
//! codes, and clear errors for bad input.

mod common;

use common::{csv_rows, relayscan, TestLab, FAST};
use predicates::prelude::*;
use relayscan::output::CSV_HEADER;
use std::collections::HashMap;
use std::sync::Mutex;

/// Held by the test that scans all of 127.0.0.0/24 on its lab's port, and
/// by the tests here that listen on an ephemeral port of 127.0.0.1 (the
/// demo's catcher): that port may be the lab's, and the scan would find it.
static WHOLE_24: Mutex<()> = Mutex::new(());

#[test]
fn scan_of_a_slash_24_gets_every_lab_verdict_right() {
    let _alone = WHOLE_24.lock().unwrap_or_else(|e| e.into_inner());
    let lab = TestLab::start(&[]);
    let port = lab.port().to_string();
    let out = relayscan()
        .args(["scan", "127.0.0.0/24", "-p", &port, "-q", "-c", "300"])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "relays found → exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, rows) = csv_rows(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(header, CSV_HEADER);
    assert_eq!(rows.len(), 256);
    let by_addr: HashMap<String, &HashMap<String, String>> =
        rows.iter().map(|r| (r["ip"].clone(), r)).collect();
    for (addr, profile) in lab.servers() {
        let row = by_addr[&addr.ip().to_string()];
        assert_eq!(
            row["verdict"],
            profile.expected.as_str(),
            "{}: {row:?}",
            profile.name
        );
        assert_eq!(row["port"], port);
    }
    let lab_ips: Vec<String> = lab
        .servers()
        .iter()
        .map(|(a, _)| a.ip().to_string())
        .collect();
    for row in rows.iter().filter(|r| !lab_ips.contains(&r["ip"])) {
        assert_eq!(row["verdict"], "refused", "{row:?}");
    }
    let open = by_addr[&lab
        .addr("open-relay")
        .split(':')
        .next()
        .unwrap()
        .to_string()];
    // The first pipelined group (C2, S1-S3) runs whole; nothing after it.
    assert_eq!(open["accepted"], "S1;S2;S3");
    assert_eq!(open["confidence"], "rcpt");
    assert_eq!(open["reply"], "250 2.1.5 Ok");
    assert_eq!(open["hostname"], "open-relay.lab.example");
    assert!(open["banner"].starts_with("220 open-relay.lab.example ESMTP Postfix"));
}

#[test]
fn jsonl_has_meta_results_with_tests_and_summary() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    let out = relayscan()
        .args([
            "scan",
            &lab.addr("open-relay"),
            &lab.addr("postfix-closed"),
            "--format",
            "jsonl",
            "-q",
            "--all-tests",
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["type"], "meta");
    assert_eq!(lines[0]["tests"].as_array().unwrap().len(), 26);
    assert_eq!(lines[0]["config_hash"].as_str().unwrap().len(), 16);
    let results: HashMap<String, &serde_json::Value> = lines[1..3]
        .iter()
        .map(|r| (r["verdict"].as_str().unwrap().to_string(), r))
        .collect();
    let open = results["open-relay"];
    assert_eq!(open["type"], "result");
    let accepted = open["accepted"].as_array().unwrap();
    assert!(
        accepted.len() >= 8,
        "--all-tests runs all direct tests: {accepted:?}"
    );
    let s1 = &open["tests"][0];
    assert_eq!(s1["id"], "S1");
    assert_eq!(s1["mail_from"], "<>");
    assert_eq!(s1["rcpt_to"], "<relaytest@example.net>");
    assert_eq!(
        s1["replies"],
        serde_json::json!(["250 2.1.0 Ok", "250 2.1.5 Ok"])
    );
    assert_eq!(s1["outcome"], "accepted");
    let closed = results["closed"];
    assert_eq!(closed["tests"].as_array().unwrap().len(), 26);
    assert_eq!(closed["tests"][0]["class"], "relay-denied");
    assert_eq!(closed["confidence"], "explicit");
    assert_eq!(lines[3]["type"], "summary");
    assert_eq!(lines[3]["total"], 2);
    assert_eq!(lines[3]["counts"]["open-relay"], 1);
    assert_eq!(lines[3]["counts"]["closed"], 1);
}

#[test]
fn transcript_is_recorded_on_request() {
    let lab = TestLab::start(&["postfix-closed"]);
    let out = relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "--format",
            "jsonl",
            "-q",
            "--transcript",
            "--tests",
            "S1",
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let result: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let lines: Vec<String> = result["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["dir"].as_str().unwrap(),
                e["line"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        lines.contains(&"C EHLO scanner.relayscan.example".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"C MAIL FROM:<>".to_string()));
    assert!(lines.iter().any(|l| l.starts_with("S 554 5.7.1")));
    assert!(lines.contains(&"C QUIT".to_string()));
    assert!(!lines.iter().any(|l| l.starts_with("C DATA")), "never DATA");
}

#[test]
fn check_exit_codes() {
    let lab = TestLab::start(&["open-relay", "postfix-closed", "percent-hack"]);
    relayscan()
        .args(["check", &lab.addr("open-relay")])
        .args(FAST)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("OPEN-RELAY").and(predicate::str::contains("S1")));
    relayscan()
        .args(["check", &lab.addr("postfix-closed")])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("CLOSED").and(predicate::str::contains("Relay access denied")),
        );
    relayscan()
        .args(["check", &lab.addr("percent-hack")])
        .args(FAST)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("POSSIBLE-RELAY").and(predicate::str::contains("R1 ")));
    // Port given separately.
    let (ip, port) = lab
        .addr("postfix-closed")
        .rsplit_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    relayscan()
        .args(["check", &ip, "-p", &port])
        .args(FAST)
        .assert()
        .code(0);
}

#[test]
fn check_fails_when_nothing_could_be_tested() {
    // Bind and drop a listener so the port is very likely closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    relayscan()
        .args(["check", &format!("127.0.0.1:{port}")])
        .args(FAST)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("REFUSED"))
        .stderr(predicate::str::contains("could not be tested"));
}

#[test]
fn input_file_exclusions_and_comments() {
    let lab = TestLab::start(&["open-relay", "postfix-closed", "exim-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(
        &list,
        format!(
            "# lab\n{}\n\n{}  # closed\n{}\n",
            lab.addr("open-relay"),
            lab.addr("postfix-closed"),
            lab.addr("exim-closed")
        ),
    )
    .unwrap();
    let open_ip = lab
        .addr("open-relay")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let out = relayscan()
        .args([
            "scan",
            "-i",
            list.to_str().unwrap(),
            "--exclude",
            &open_ip,
            "-q",
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows) = csv_rows(&String::from_utf8(out.stdout).unwrap());
    let mut verdicts: Vec<&str> = rows.iter().map(|r| r["verdict"].as_str()).collect();
    verdicts.sort();
    assert_eq!(verdicts, ["closed", "closed"]);
}

#[test]
fn output_file_is_never_overwritten_silently() {
    let lab = TestLab::start(&["postfix-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.csv");
    std::fs::write(&file, "precious\n").unwrap();
    relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "-o",
            file.to_str().unwrap(),
        ])
        .args(FAST)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exists").and(predicate::str::contains("--force")));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");

    // --append adds to a file of the same format (tests/output_files.rs).
    let earlier = format!("{}\nprecious\n", CSV_HEADER.join(","));
    std::fs::write(&file, &earlier).unwrap();
    relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "-o",
            file.to_str().unwrap(),
            "--append",
            "-q",
        ])
        .args(FAST)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(&format!("{earlier}127.0.0.")),
        "appends rows, no second header: {text}"
    );

    relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "-o",
            file.to_str().unwrap(),
            "--force",
        ])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No relay found"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(&CSV_HEADER.join(",")));
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn bad_input_is_a_one_line_error_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.csv");
    let out = out_file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["scan", "127.0.0.0/33"], "CIDR"),
        (vec!["scan", "127.0.0.20-10"], "reversed"),
        (vec!["scan", "127.0.0.1", "-p", "smtp"], "unknown port"),
        (vec!["scan", "127.0.0.1", "-p", "70000"], "unknown port"),
        (vec!["scan"], "no targets"),
        (
            vec!["scan", "-i", "/nonexistent/targets.txt"],
            "cannot read target file",
        ),
        (
            vec!["scan", "127.0.0.1", "--exclude", "127.0.0.0/8"],
            "--exclude removed every target",
        ),
        (vec!["scan", "127.0.0.1", "--tests", "S9"], "unknown test"),
        (
            vec!["scan", "127.0.0.1", "--ehlo", "ESMTP"],
            "fully qualified",
        ),
        (vec!["scan", "127.0.0.1", "--read-timeout", "soon"], "soon"),
        (vec!["scan", "127.0.0.1", "-c", "0"], "concurrency"),
        (
            vec!["scan", "127.0.0.1", "--force", "--append"],
            "cannot be used with",
        ),
        (vec!["check", "127.0.0.0/24"], "one server"),
    ];
    for (args, needle) in cases {
        let result = relayscan().args(&args).args(["-o", out]).output();
        // `check` has no -o; run it without.
        let result = if args[0] == "check" {
            relayscan().args(&args).output()
        } else {
            result
        };
        let result = result.unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} should mention {needle:?}"
        );
        assert!(!out_file.exists(), "{args:?} created the output file");
        if args[0] != "scan" || !stderr.contains("Usage") {
            assert!(
                stderr.trim().lines().count() <= 3,
                "{args:?}: short error expected: {stderr}"
            );
        }
    }
}

#[test]
fn demo_gets_every_profile_right() {
    let _alone = WHOLE_24.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    relayscan()
        .current_dir(dir.path())
        .arg("demo")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Every lab profile got its expected verdict",
        ));
    let csv = std::fs::read_to_string(dir.path().join("relayscan-demo.csv")).unwrap();
    let (header, rows) = csv_rows(&csv);
    assert_eq!(header, CSV_HEADER);
    let standard = relayscan::lab::PROFILES
        .iter()
        .filter(|p| !p.is_hostile())
        .count();
    assert_eq!(
        rows.len(),
        standard,
        "the plain demo leaves the hostile servers out"
    );
}

#[test]
fn check_confirm_sends_one_message_through_the_relay() {
    let lab = TestLab::start(&["open-relay"]);
    relayscan()
        .args([
            "check",
            &lab.addr("open-relay"),
            "--confirm",
            "canary@example.org",
        ])
        .args(FAST)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("confidence: data").and(predicate::str::contains(
                "confirm     S1: <canary@example.org> → message accepted",
            )),
        );
    relayscan()
        .args([
            "check",
            &lab.addr("open-relay"),
            "--confirm",
            "not an address",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--confirm"));
}
