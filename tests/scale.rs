//! Plans, shards, resume, merge and resource limits, end to end.

mod common;

use common::{relayscan, TestLab, FAST};
use predicates::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

/// Each row's address and verdict.
fn csv_ips(text: &str) -> Vec<(String, String)> {
    common::csv_rows(text)
        .1
        .into_iter()
        .map(|r| (r["ip"].clone(), r["verdict"].clone()))
        .collect()
}

#[test]
fn dry_run_plans_a_slash_8_without_probing() {
    let out = relayscan()
        .args(["scan", "127.0.0.0/8", "--dry-run", "--seed", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("16777216 job(s) in shard 0/1, seed 7"),
        "{text}"
    );
    let listed: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(listed.len(), 10);
    assert!(listed
        .iter()
        .all(|l| l.starts_with("127.") && l.ends_with(":25")));
    // The same seed gives the same order; another seed another.
    let again = relayscan()
        .args(["scan", "127.0.0.0/8", "--dry-run", "--seed", "7"])
        .output()
        .unwrap();
    assert_eq!(again.stdout, text.as_bytes());
    let other = relayscan()
        .args(["scan", "127.0.0.0/8", "--dry-run", "--seed", "8"])
        .output()
        .unwrap();
    assert_ne!(other.stdout, text.as_bytes());
    // Reserved space is left out unless asked for.
    relayscan()
        .args(["scan", "224.0.0.0/24", "--dry-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--include-reserved"));
    // (A dry run sends nothing; the scope still applies, so name it.)
    relayscan()
        .args(["scan", "224.0.0.0/24", "--dry-run", "--include-reserved"])
        .args(["--scope", "224.0.0.0/24"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("256 job(s)"));
}

#[test]
fn shards_cover_the_plan_once_and_merge_back() {
    let lab = TestLab::start(&["open-relay", "postfix-closed", "exim-closed"]);
    let port = lab.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for k in 0..3 {
        let file = dir.path().join(format!("shard{k}.jsonl"));
        let out = relayscan()
            .args([
                "scan",
                "127.0.0.0/27",
                "-p",
                &port,
                "--shard",
                &format!("{k}/3"),
                "-q",
                "-o",
            ])
            .arg(&file)
            .args(FAST)
            .output()
            .unwrap();
        // A shard with a relay exits 1; one without, 2: most addresses of
        // the /27 have no server (refused, so untested).
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == "result" {
                *seen
                    .entry(v["ip"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        files.push(file);
    }
    assert_eq!(seen.len(), 32, "all 32 addresses covered");
    assert!(seen.values().all(|n| *n == 1), "no address twice: {seen:?}");

    let merged = relayscan()
        .arg("merge")
        .args(&files)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(
        merged.status.code(),
        Some(1),
        "a relay is in the merged results"
    );
    let rows = csv_ips(&String::from_utf8(merged.stdout).unwrap());
    assert_eq!(rows.len(), 32);
    let open_ip = lab
        .addr("open-relay")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(rows.contains(&(open_ip, "open-relay".to_string())));

    // A shard of another scan (other tests) is refused.
    let other = dir.path().join("other.jsonl");
    relayscan()
        .args([
            "scan",
            "127.0.0.0/27",
            "-p",
            &port,
            "--shard",
            "0/3",
            "--tests",
            "direct",
            "-q",
            "-o",
        ])
        .arg(&other)
        .args(FAST)
        .output()
        .unwrap();
    relayscan()
        .arg("merge")
        .arg(&files[1])
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("different scan"));
}

#[test]
fn resume_after_a_kill_loses_nothing_and_repeats_nothing() {
    let lab = TestLab::start(&[]);
    let port = lab.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let checkpoint = dir.path().join("scan.checkpoint");
    let args: Vec<String> = [
        "scan",
        "127.0.0.0/24",
        "-p",
        &port,
        "--rate",
        "50",
        "-q",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        out.display().to_string(),
        "--resume".into(),
        checkpoint.display().to_string(),
    ])
    .chain(FAST.iter().map(|s| s.to_string()))
    .collect();
    let bin = assert_cmd::cargo::cargo_bin("relayscan");
    let mut child = std::process::Command::new(&bin)
        .args(&args)
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap(); // SIGKILL: a crash, no chance to clean up
    child.wait().unwrap();
    let partial = csv_ips(&std::fs::read_to_string(&out).unwrap());
    assert!(
        !partial.is_empty() && partial.len() < 256,
        "killed mid-scan: {} rows",
        partial.len()
    );
    assert!(checkpoint.exists());

    // The same scope as the first run: the checkpoint holds it, and a resume
    // under another scope is refused (not the caller's environment's).
    let status = std::process::Command::new(&bin)
        .args(&args)
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .status()
        .unwrap();
    assert!(matches!(status.code(), Some(0 | 1)));
    let rows = csv_ips(&std::fs::read_to_string(&out).unwrap());
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (ip, _) in &rows {
        *count.entry(ip.as_str()).or_default() += 1;
    }
    assert_eq!(count.len(), 256, "every target once the scan is finished");
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
    for (addr, profile) in lab.servers() {
        let ip = addr.ip().to_string();
        let row = rows.iter().find(|(i, _)| *i == ip).unwrap();
        assert_eq!(row.1, profile.expected.as_str(), "{}", profile.name);
    }
    // Running it again says it is complete and writes nothing.
    let before = std::fs::read_to_string(&out).unwrap();
    let again = std::process::Command::new(&bin)
        .args(&args)
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .status()
        .unwrap();
    assert!(matches!(again.code(), Some(0 | 1)), "{again:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
}

#[test]
fn a_low_file_limit_slows_the_scan_but_gives_no_false_verdicts() {
    let lab = TestLab::start(&[]);
    let port = lab.port().to_string();
    let bin = assert_cmd::cargo::cargo_bin("relayscan");
    let cmd = format!(
        "ulimit -n 48 && exec {} scan 127.0.0.0/24 -p {port} -c 1000 -q --ehlo scanner.relayscan.example --read-timeout 2s",
        bin.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = csv_ips(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(rows.len(), 256);
    assert!(
        rows.iter().all(|(_, v)| v != "error"),
        "no local error became a verdict"
    );
    for (addr, profile) in lab.servers() {
        let ip = addr.ip().to_string();
        assert!(
            rows.contains(&(ip, profile.expected.as_str().to_string())),
            "{}",
            profile.name
        );
    }
}

#[test]
fn source_address() {
    let lab = TestLab::start(&["postfix-closed"]);
    relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "--source-ip",
            "127.0.0.1",
            "--format",
            "jsonl",
            "-q",
        ])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"source\":\"127.0.0.1:"));
    // Only a bind is tried, to an address no machine has (reserved
    // 240.0.0.0/4): nothing is sent anywhere.
    relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "--source-ip",
            "240.0.0.1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an address of this machine"));
}

/// `--rate` counts connection starts, not hosts: a closed server takes a
/// few connections (the error budget), and every one of them waits its turn.
/// N connections at 10/s cannot start in less than (N − 1) × 100 ms.
#[test]
fn rate_paces_every_connection_not_every_host() {
    let lab = TestLab::start(&[
        "postfix-closed",
        "exim-closed",
        "sendmail-closed",
        "iis-closed",
    ]);
    let targets = lab.addrs();
    let started = std::time::Instant::now();
    let out = relayscan()
        .arg("scan")
        .args(&targets)
        .args(["--rate", "10", "--format", "jsonl", "-q"])
        .args(FAST)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let connections: u64 = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "result")
        .map(|v| v["connections"].as_u64().unwrap())
        .sum();
    // More connections than hosts, or the test proves nothing.
    assert!(connections > 4, "{connections} connections: {stdout}");
    let floor = std::time::Duration::from_millis(100 * (connections - 1));
    assert!(
        took >= floor,
        "{connections} connections at 10/s in {took:?} (< {floor:?})"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}
