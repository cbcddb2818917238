//! Results are never lost: the real binary under Ctrl-C / SIGTERM, and with
//! its reader gone (`| head`). Signals are sent with kill(1) to the child
//! process this test started, never to anything else.

mod common;

use common::{wait_at_most, wait_for_file, TestLab};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn relayscan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relayscan"));
    cmd.env("NO_COLOR", "1");
    cmd.env("RELAYSCAN_SCOPE", common::TEST_SCOPE);
    cmd
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill {signal} failed");
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A closed server, then slow ones that would hold a probe for a minute.
const PROFILES: &[&str] = &[
    "postfix-closed",
    "slowloris",
    "silent",
    "slowloris",
    "silent",
];
const SLOW: &[&str] = &[
    "--ehlo",
    "scanner.relayscan.example",
    "--read-timeout",
    "60s",
    "--host-timeout",
    "60s",
    "-c",
    "3",
    // The tests count on which targets start first.
    "--order",
    "sequential",
];

fn start_scan(lab: &TestLab, out: &Path, grace: &str) -> Child {
    let targets: Vec<String> = lab.servers().iter().map(|(a, _)| a.to_string()).collect();
    relayscan()
        .arg("scan")
        .args(&targets)
        .args(SLOW)
        .args(["--grace", grace, "-o", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ctrl_c_stops_new_connections_records_the_hosts_in_flight_and_exits_130() {
    let lab = TestLab::start(PROFILES);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let mut child = start_scan(&lab, &out, "1s");

    // Each record is flushed as soon as its host is done: the closed
    // server's result is in the file while the scan is still running.
    let closed_ip = lab.servers()[0].0.ip().to_string();
    wait_for_file(&out, "the closed server's record", |t| {
        t.lines().count() >= 2 && t.contains(&closed_ip)
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the scan is still running"
    );
    std::thread::sleep(Duration::from_millis(300));

    kill(&child, "-INT");
    // The hosts in flight would run for a minute; the grace is 1 s.
    let (code, took) = wait_at_most(&mut child, Duration::from_secs(20));
    assert_eq!(code, 130, "interrupted, no relay found");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after Ctrl-C"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");

    let lines = json_lines(&out);
    assert_eq!(lines[0]["type"], "meta");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "the summary is written");
    assert_eq!(summary["interrupted"], true);
    let results: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "result").collect();
    // -c 3: the closed server, then three slow ones in flight; the fifth
    // target was never started (no new connections after Ctrl-C).
    assert_eq!(results.len(), 4, "{results:#?}");
    assert_eq!(summary["total"], 4);
    assert_eq!(results[0]["verdict"], "closed");
    for r in &results[1..] {
        assert_eq!(r["verdict"], "error", "{r}");
        assert_eq!(r["error"], "interrupted", "{r}");
        assert_eq!(r["connections"], 1, "what it had found is kept: {r}");
    }
    let last_ip = lab.servers()[4].0.ip().to_string();
    assert!(!results.iter().any(|r| r["ip"] == last_ip.as_str()));
}

#[test]
fn a_second_sigterm_ends_the_grace_at_once() {
    let lab = TestLab::start(PROFILES);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    // A grace longer than the test would wait: only the second signal ends it.
    let mut child = start_scan(&lab, &out, "1h");
    let closed_ip = lab.servers()[0].0.ip().to_string();
    wait_for_file(&out, "the closed server's record", |t| {
        t.contains(&closed_ip)
    });
    std::thread::sleep(Duration::from_millis(300));

    kill(&child, "-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal only starts the grace period"
    );
    kill(&child, "-TERM");
    let (code, took) = wait_at_most(&mut child, Duration::from_secs(20));
    assert_eq!(code, 130);
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after the second SIGTERM"
    );
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["counts"]["error"], 3);
}

#[test]
fn a_closed_pipe_ends_the_scan_quietly() {
    // `relayscan scan … | head -1`: many results, the reader leaves after one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for format in ["jsonl", "csv"] {
        let mut child = relayscan()
            .args(["scan", "127.0.0.0/22", "-p", &port.to_string(), "-q"])
            .args(["--format", format, "-c", "64"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        drop(stdout);
        let (code, _) = wait_at_most(&mut child, Duration::from_secs(60));
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(code, 0, "{format}: a closed pipe is not an error: {stderr}");
        assert_eq!(stderr, "", "{format}: exits quietly");
    }
}
