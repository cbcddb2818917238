//! Exit codes gate CI: one test per verdict, for `check` and `scan` alike.
//!
//! 0 = every target tested and no relay; 1 = a relay found; 2 = a usage or
//! runtime error, or some target could not be tested (refused, timeout,
//! error, not-smtp, rejected, inconclusive, temp-fail, tls-required).
//!
//! Network rule: every target is a lab server on loopback, or a loopback
//! port that was just closed (refused).

mod common;

use common::{relayscan, TestLab, QUICK};
use relayscan::relay::Status;

/// One lab profile for each verdict but `refused`, and the exit code a CI
/// gate must see for it.
const BY_VERDICT: &[(&str, Status, i32)] = &[
    ("open-relay", Status::OpenRelay, 1),
    ("percent-hack", Status::PossibleRelay, 1),
    ("postfix-closed", Status::Closed, 0),
    ("auth-required", Status::AuthRequired, 0),
    ("starttls-broken", Status::TlsRequired, 2),
    ("greylist", Status::TempFail, 2),
    ("close-after-banner", Status::Inconclusive, 2),
    ("reject-greeting", Status::Rejected, 2),
    ("not-smtp-ssh", Status::NotSmtp, 2),
    ("close-on-connect", Status::Error, 2),
    ("silent", Status::Timeout, 2),
];

/// No DNS lookups: these runs test exit codes only.
const NO_DNS: &[&str] = &["--no-ptr", "--dnsbl", "none"];

/// A loopback port with nothing listening on it.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

#[test]
fn check_exit_code_for_every_verdict() {
    let names: Vec<&str> = BY_VERDICT.iter().map(|(n, _, _)| *n).collect();
    let lab = TestLab::start(&names);
    let refused = closed_port();
    let mut cases: Vec<(String, Status, i32)> = BY_VERDICT
        .iter()
        .map(|(n, s, c)| (lab.addr(n), *s, *c))
        .collect();
    cases.push((refused, Status::Refused, 2));
    // Every verdict is covered, so a new one cannot slip through untested
    // (`excluded` is no target's verdict: an excluded address is not dialled).
    for status in Status::ALL.into_iter().filter(|s| *s != Status::Excluded) {
        assert!(
            cases.iter().any(|(_, s, _)| *s == status),
            "no exit-code case for {status}"
        );
    }
    for (addr, status, code) in cases {
        let out = relayscan()
            .args(["check", &addr, "--json"])
            .args(QUICK)
            .args(NO_DNS)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let result: serde_json::Value =
            serde_json::from_str(stdout.lines().next().unwrap_or("null")).unwrap();
        assert_eq!(result["verdict"], status.as_str(), "{addr}: {stdout}");
        assert_eq!(out.status.code(), Some(code), "{addr} ({status}): {stderr}");
        assert_eq!(
            status.is_untested(),
            code == 2,
            "{status}: untested ⇔ exit 2"
        );
        if code == 2 {
            assert!(
                stderr.contains("could not be tested") && stderr.contains(status.as_str()),
                "{addr}: {stderr}"
            );
        }
    }
}

#[test]
fn scan_exits_2_when_some_target_could_not_be_tested_and_says_how_many() {
    let lab = TestLab::start(&["postfix-closed", "exim-closed", "open-relay"]);
    let refused = closed_port();
    let run = |targets: &[&str]| {
        let out = relayscan()
            .arg("scan")
            .args(targets)
            .args(["--format", "jsonl"])
            .args(QUICK)
            .args(NO_DNS)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap();
        (out.status.code(), summary, stderr)
    };
    let (closed_a, closed_b) = (lab.addr("postfix-closed"), lab.addr("exim-closed"));

    // Every target tested, none relays: 0.
    let (code, summary, stderr) = run(&[&closed_a, &closed_b]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["untested"], 0);
    assert!(stderr.contains("No relay found.\n"), "{stderr}");

    // One target down: the gate fails, and the summary does not say "No relay found.".
    let (code, summary, stderr) = run(&[&closed_a, &closed_b, &refused]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(summary["untested"], 1);
    assert!(
        stderr.contains("1 of 3 target(s) could not be tested (1 refused)"),
        "{stderr}"
    );
    assert!(!stderr.contains("No relay found.\n"), "{stderr}");

    // A relay outranks the untested target: 1.
    let (code, _, stderr) = run(&[&closed_a, &lab.addr("open-relay"), &refused]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("RELAYS FOUND: 1"), "{stderr}");
    assert!(stderr.contains("could not be tested"), "{stderr}");
}

#[test]
fn the_lab_profiles_agree_with_the_exit_code_table() {
    // The demo's own expectations and this table must not drift apart.
    for (name, status, _) in BY_VERDICT {
        let profile = relayscan::lab::profile::find(name).unwrap();
        assert_eq!(profile.expected, *status, "{name}");
    }
}
