//! Proof by delivery (`--confirm ADDRESS --catch ADDR:PORT`), through the
//! binary against the lab on loopback. The lab's relaying profiles hand what
//! they accept on to the catcher, each like its real counterpart: an open
//! relay and a backup MX (whose primary applies the percent hack) deliver,
//! a sink and a catch-all keep what they take, a closed server gets no DATA.

mod common;

use common::{relayscan, TestLab, FAST};
use serde_json::Value;

const CANARY: &str = "canary@proof.example";

/// A free port on 127.0.0.2 (no lab profile lives there) for the catcher.
fn catch_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.2:0").expect("bind");
    l.local_addr().expect("addr")
}

const NO_DNS: &[&str] = &["--no-ptr", "--dnsbl", "none"];

/// `check --json` of one lab server, with `extra` flags: (exit code, result).
fn check(addr: &str, extra: &[&str]) -> (i32, Value) {
    let out = relayscan()
        .args(["check", addr, "--json"])
        .args(extra)
        .args(FAST)
        .args(NO_DNS)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"verdict\""))
        .unwrap_or_else(|| {
            panic!(
                "no result line: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(line).unwrap(),
    )
}

fn confirm_catch(catch: &std::net::SocketAddr, wait: &str) -> Vec<String> {
    [
        "--confirm",
        CANARY,
        "--catch",
        &catch.to_string(),
        "--catch-wait",
        wait,
        "--transcript",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn datas(result: &Value) -> usize {
    result["transcript"]
        .as_array()
        .map(|t| t.iter().filter(|e| e["line"] == "DATA").count())
        .unwrap_or(0)
}

fn notes(result: &Value) -> String {
    result["notes"].to_string()
}

#[test]
fn an_open_relay_delivers_the_canary() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["open-relay"], catch);
    let args = confirm_catch(&catch, "10s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = check(&lab.addr("open-relay"), &args);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "open-relay", "{r:#}");
    assert_eq!(r["confidence"], "delivered");
    assert_eq!(r["deciding_test"], "S1");
    let d = &r["confirmation"]["delivery"];
    assert_eq!(d["status"], "delivered", "{d:#}");
    assert!(d["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{d}");
    assert!(d["after_ms"].as_u64().is_some());
    assert!(
        d["peer"].as_str().is_some_and(|p| p.starts_with("127.")),
        "{d}"
    );
    assert_eq!(
        d["hops"][0],
        "from scanner.relayscan.example by open-relay.lab.example for <canary@proof.example>"
    );
    // Arrived well before the wait ran out: the wait ends at the arrival.
    assert!(d["waited_ms"].as_u64().unwrap() < 10_000, "{d}");
    assert_eq!(datas(&r), 1, "exactly one message");
}

#[test]
fn a_sink_is_open_by_rcpt_but_the_canary_never_arrives() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["accept-all"], catch);
    let args = confirm_catch(&catch, "1s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = check(&lab.addr("accept-all"), &args);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "open-relay");
    assert_eq!(r["confidence"], "data", "{r:#}");
    let d = &r["confirmation"]["delivery"];
    assert_eq!(d["status"], "not-delivered");
    assert!(d["waited_ms"].as_u64().unwrap() >= 1000, "{d}");
    assert_eq!(d["at"], Value::Null);
    assert!(notes(&r).contains("did not arrive within 1.0 s"), "{r:#}");
    assert!(notes(&r).contains("sink"));
}

#[test]
fn a_catch_all_keeps_the_trick_local_and_stays_unproven() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["catch-all-closed"], catch);
    let args = confirm_catch(&catch, "1s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = check(&lab.addr("catch-all-closed"), &args);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "possible-relay", "{r:#}");
    assert_eq!(r["confidence"], "unproven");
    // The confirmation went through the accepted trick, not a refused path.
    assert_eq!(r["confirmation"]["test"], "R1");
    assert_eq!(r["confirmation"]["accepted"], true);
    assert_eq!(r["confirmation"]["delivery"]["status"], "not-delivered");
    assert!(notes(&r).contains("stayed local"), "{r:#}");
}

#[test]
fn a_backup_mx_is_possible_without_a_catcher_and_proven_with_one() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["backup-mx"], catch);
    let (code, r) = check(&lab.addr("backup-mx"), &[]);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "possible-relay", "{r:#}");
    assert_eq!(r["confidence"], "unproven");
    assert!(notes(&r).contains("--confirm ADDRESS --catch"), "{r:#}");
    assert_eq!(datas(&r), 0);

    let args = confirm_catch(&catch, "10s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = check(&lab.addr("backup-mx"), &args);
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "open-relay", "{r:#}");
    assert_eq!(r["confidence"], "delivered");
    assert_eq!(r["deciding_test"], "R1");
    let hops = r["confirmation"]["delivery"]["hops"].to_string();
    assert!(
        hops.contains("by backup-mx.lab.example")
            && hops.contains("from backup-mx.lab.example by primary.lab.example"),
        "{hops}"
    );
    // Proven through a trick: the fix is the trick's (the relay
    // restrictions refused every plain foreign recipient), not the generic one.
    let fix = r["remediation"].to_string();
    assert!(
        fix.contains("allow_percent_hack = no") && fix.contains("relay_recipient_maps"),
        "{fix}"
    );
    assert!(
        !fix.contains("smtpd_relay_restrictions = permit_mynetworks"),
        "{fix}"
    );
}

#[test]
fn the_report_shows_the_delivery_and_never_contradicts_it() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["backup-mx"], catch);
    let out = relayscan()
        .args(["check", &lab.addr("backup-mx"), "--confirm", CANARY])
        .args(["--catch", &catch.to_string(), "--catch-wait", "10s"])
        .args(FAST)
        .args(NO_DNS)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("verdict     OPEN-RELAY  (confidence: delivered)"),
        "{text}"
    );
    assert!(text.contains("  delivered   20"), "{text}");
    assert!(
        text.contains("  hop         from backup-mx.lab.example by primary.lab.example"),
        "{text}"
    );
    assert!(!text.contains("CLOSED"), "{text}");
}

#[test]
fn a_closed_server_gets_no_data_even_with_a_catcher() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["postfix-closed"], catch);
    let args = confirm_catch(&catch, "1s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = check(&lab.addr("postfix-closed"), &args);
    assert_eq!(code, 0);
    assert_eq!(r["verdict"], "closed");
    assert_eq!(r["confirmation"], Value::Null);
    assert_eq!(datas(&r), 0, "no DATA at all");
}

#[test]
fn catch_flags_are_checked_before_any_packet() {
    relayscan()
        .args(["check", "127.0.0.1:1", "--catch", "127.0.0.1:2599"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--confirm"));
    let dir = tempfile::tempdir().unwrap();
    relayscan()
        .args(["check", "127.0.0.1:1", "--confirm", CANARY])
        .args(["--catch", "127.0.0.1:2599"])
        .args(["--catch-maildir", dir.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot be used with"));
    relayscan()
        .args(["scan", "127.0.0.1:1", "--confirm", CANARY])
        .args(["--catch-maildir", dir.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no new/ directory"));
}

#[test]
fn a_scan_confirms_each_relay_with_its_own_canary_and_counts_the_proven() {
    let catch = catch_addr();
    let names = [
        "open-relay",
        "accept-all",
        "catch-all-closed",
        "backup-mx",
        "postfix-closed",
    ];
    let lab = TestLab::start_forwarding(&names, catch);
    let mut cmd = relayscan();
    cmd.arg("scan")
        .args(lab.addrs())
        .args(["--format", "jsonl", "--concurrency", "2"])
        .args(["--confirm", CANARY, "--catch", &catch.to_string()])
        .args(["--catch-wait", "2s"])
        .args(FAST)
        .args(NO_DNS);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_name = |name: &str| {
        let addr = lab.addr(name);
        lines
            .iter()
            .find(|l| format!("{}:{}", l["ip"].as_str().unwrap_or(""), l["port"]) == addr)
            .unwrap_or_else(|| panic!("no record for {name}: {text}"))
            .clone()
    };
    let open = by_name("open-relay");
    let backup = by_name("backup-mx");
    for r in [&open, &backup] {
        assert_eq!(r["verdict"], "open-relay", "{r:#}");
        assert_eq!(r["confidence"], "delivered");
    }
    assert_ne!(
        open["confirmation"]["token"], backup["confirmation"]["token"],
        "one token per host"
    );
    assert_eq!(by_name("accept-all")["confidence"], "data");
    assert_eq!(
        by_name("accept-all")["confirmation"]["delivery"]["status"],
        "not-delivered"
    );
    assert_eq!(by_name("catch-all-closed")["confidence"], "unproven");
    assert_eq!(by_name("postfix-closed")["confirmation"], Value::Null);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["relays"], 4, "{summary}");
    assert_eq!(summary["proven_relays"], 2, "{summary}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("2 proven by delivery, 2 unproven"),
        "{stderr}"
    );
}

/// Hosts that wait for their canary give their probe slot back: two sinks
/// waiting 3 s each, one probe at a time, take about 3 s, not 6.
#[test]
fn waiting_hosts_do_not_hold_their_probe_slot() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["accept-all", "catch-all-closed"], catch);
    let started = std::time::Instant::now();
    let out = relayscan()
        .arg("scan")
        .args(lab.addrs())
        .args(["--format", "jsonl", "--concurrency", "1"])
        .args(["--confirm", CANARY, "--catch", &catch.to_string()])
        .args(["--catch-wait", "3s"])
        .args(FAST)
        .args(NO_DNS)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("\"not-delivered\"").count(), 2, "{text}");
    assert!(
        took < std::time::Duration::from_millis(5500),
        "the waits ran one after the other: {took:?}"
    );
}

/// A scan killed (SIGKILL) while a host waits for its canary has not written
/// that host: the same command with `--resume` probes it again, and every
/// host is written once.
#[test]
fn a_host_whose_wait_was_killed_is_probed_again_on_resume() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["postfix-closed", "accept-all"], catch);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scan.jsonl");
    let cp = dir.path().join("scan.resume");
    let args = |wait: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["scan".into()];
        a.extend(lab.addrs());
        for s in ["--order", "sequential", "--confirm", CANARY, "--catch"] {
            a.push(s.into());
        }
        a.push(catch.to_string());
        a.extend(["--catch-wait".into(), wait.into()]);
        a.extend(["-o".into(), out.to_string_lossy().into_owned()]);
        a.extend(["--resume".into(), cp.to_string_lossy().into_owned()]);
        a.extend(FAST.iter().chain(NO_DNS).map(|s| s.to_string()));
        a
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_relayscan"))
        .args(args("60s"))
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The closed server is written; the sink waits for a canary that never comes.
    common::wait_for_file(&out, "the closed server's record", |t| {
        t.contains("\"closed\"")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL, mid-wait
    child.wait().unwrap();
    let before = std::fs::read_to_string(&out).unwrap();
    let written = before
        .lines()
        .filter(|l| l.contains("\"type\":\"result\""))
        .count();
    assert_eq!(written, 1, "only the closed server: {before}");

    // Port reuse: the first catcher is gone with its process.
    let status = relayscan().args(args("1s")).output().unwrap();
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let results: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "result")
        .collect();
    assert_eq!(results.len(), 2, "{text}");
    let sink = results
        .iter()
        .find(|r| r["verdict"] == "open-relay")
        .expect("the sink, probed again");
    assert_eq!(sink["confirmation"]["delivery"]["status"], "not-delivered");
}

/// Ctrl-C ends a host's wait after the grace: the relay is still written
/// (it stays a relay), with the short wait and the interrupt in its notes.
#[test]
fn ctrl_c_ends_the_wait_and_keeps_the_relay() {
    let catch = catch_addr();
    let lab = TestLab::start_forwarding(&["accept-all"], catch);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scan.jsonl");
    let started = std::time::Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_relayscan"))
        .arg("scan")
        .args(lab.addrs())
        .args(["--confirm", CANARY, "--catch", &catch.to_string()])
        .args(["--catch-wait", "60s", "--grace", "1s", "-o"])
        .arg(&out)
        .args(FAST)
        .args(NO_DNS)
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the wait outlived the interrupt"
    );
    assert_eq!(output.status.code(), Some(1));
    let text = std::fs::read_to_string(&out).unwrap();
    let r: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["type"] == "result")
        .unwrap_or_else(|| panic!("no record: {text}"));
    assert_eq!(r["verdict"], "open-relay", "{r:#}");
    let d = &r["confirmation"]["delivery"];
    assert_eq!(d["status"], "not-delivered");
    assert!(d["waited_ms"].as_u64().unwrap() < 20_000, "{d}");
    assert!(notes(&r).contains("interrupted"), "{r:#}");
}

/// A stand-in for the user's own MTA: takes whatever the lab forwards and
/// delivers it into `maildir/new`, one file per message.
fn maildir_mta(maildir: std::path::PathBuf) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = stream.write_all(b"220 mta.proof.example ESMTP\r\n");
            let mut message = String::new();
            let mut in_data = false;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        let file = maildir.join(format!("new/{n}.mta"));
                        std::fs::write(file, &message).unwrap();
                        let _ = stream.write_all(b"250 ok\r\n");
                    } else {
                        message.push_str(&line);
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                    let _ = stream.write_all(b"354 go\r\n");
                } else if line.starts_with("QUIT") {
                    let _ = stream.write_all(b"221 bye\r\n");
                    break;
                } else {
                    let _ = stream.write_all(b"250 ok\r\n");
                }
                line.clear();
            }
        }
    });
    addr
}

#[test]
fn catch_maildir_finds_the_canary_the_users_mta_delivered() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let mta = maildir_mta(dir.path().to_path_buf());
    let lab = TestLab::start_forwarding(&["open-relay"], mta);
    let maildir = dir.path().to_str().unwrap();
    let (code, r) = check(
        &lab.addr("open-relay"),
        &["--confirm", CANARY, "--catch-maildir", maildir],
    );
    assert_eq!(code, 1);
    assert_eq!(r["confidence"], "delivered", "{r:#}");
    let d = &r["confirmation"]["delivery"];
    assert_eq!(d["peer"], Value::Null, "a file has no peer");
    assert_eq!(
        d["hops"][0],
        "from scanner.relayscan.example by open-relay.lab.example for <canary@proof.example>"
    );
}
