//! Shell completions, the man page, and the flags `check` shares with
//! `scan` (`-o`, `--force`, `-q`, `--source-ip`), through the binary.

mod common;

use common::{relayscan, TestLab, FAST};
use predicates::prelude::*;

/// Every command the parser knows, as the man page must name them.
const COMMANDS: &[&str] = &[
    "scan",
    "check",
    "demo",
    "lab",
    "merge",
    "completions",
    "man",
];

#[test]
fn bash_completion_names_the_commands_and_scope() {
    let out = relayscan().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("complete "), "a bash `complete` line");
    for word in ["scan", "check", "--scope", "--source-ip", "--json"] {
        assert!(script.contains(word), "{word} missing");
    }
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = relayscan().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(out.stderr.is_empty(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        // fish spells long options `-l scope`, the others `--scope`.
        assert!(
            script.contains("relayscan") && script.contains("scope"),
            "{shell}"
        );
    }
    relayscan()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("relayscan: error:"));
}

#[test]
fn man_page_is_roff_with_every_command() {
    let out = relayscan().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    // Before .TH only the portable quote-string definition clap_mangen
    // writes (`.ie \n(.g .ds Aq \(aq` / `.el .ds Aq '`).
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(first.starts_with(".TH relayscan 1"), "{first}");
    for command in COMMANDS {
        let heading = format!(".SH \"RELAYSCAN {}\"", command.to_uppercase());
        assert!(page.contains(&heading), "{heading} missing");
        assert!(
            page.contains(&format!("relayscan\\-{command}(1)")),
            "{command} not in SUBCOMMANDS"
        );
    }
    // check's own options are on the page.
    assert!(page.contains("\\fB\\-\\-source\\-ip\\fR"));
    assert!(page.contains("\\fB\\-\\-confirm\\fR"));
}

#[test]
fn man_into_a_directory_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    relayscan()
        .args(["man", "-o"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    let page = std::fs::read_to_string(dir.path().join("relayscan.1")).unwrap();
    assert!(page.contains(".TH relayscan 1"));
    for command in COMMANDS {
        let page =
            std::fs::read_to_string(dir.path().join(format!("relayscan-{command}.1"))).unwrap();
        assert!(
            page.contains(&format!(".TH relayscan-{command} 1")),
            "{command}"
        );
    }
    let missing = dir.path().join("no-such-dir");
    relayscan()
        .args(["man", "-o"])
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a directory"));
}

#[test]
fn check_writes_its_report_to_a_file_with_scans_overwrite_rules() {
    let lab = TestLab::start(&["open-relay"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.txt");
    relayscan()
        .args(["check", &lab.addr("open-relay"), "-o"])
        .arg(&file)
        .args(FAST)
        .assert()
        .code(1)
        .stdout("");
    let report = std::fs::read_to_string(&file).unwrap();
    assert!(
        report.contains("OPEN-RELAY") && report.contains("S1"),
        "{report}"
    );

    // An existing file needs --force; it is left as it was.
    std::fs::write(&file, "keep me").unwrap();
    relayscan()
        .args(["check", &lab.addr("open-relay"), "-o"])
        .arg(&file)
        .args(FAST)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "exists: pass --force to overwrite it",
        ))
        .stderr(predicate::str::contains("--append").not());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // --json with --force: the one JSON line replaces it.
    relayscan()
        .args(["check", &lab.addr("open-relay"), "--json", "--force", "-o"])
        .arg(&file)
        .args(FAST)
        .assert()
        .code(1)
        .stdout("");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(line["verdict"], "open-relay");

    // A directory that does not exist is refused before any packet.
    relayscan()
        .args(["check", &lab.addr("open-relay"), "-o"])
        .arg(dir.path().join("nowhere/report.txt"))
        .args(FAST)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    // --force without -o is a usage error, as in scan.
    relayscan()
        .args(["check", &lab.addr("open-relay"), "--force"])
        .assert()
        .code(2)
        .stdout("");
}

#[test]
fn check_quiet_prints_nothing_and_keeps_the_exit_code() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    relayscan()
        .args(["check", &lab.addr("open-relay"), "-q"])
        .args(FAST)
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    relayscan()
        .args(["check", &lab.addr("postfix-closed"), "--quiet", "--json"])
        .args(FAST)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    // -q with -o: the file still gets the report; standard output nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.jsonl");
    relayscan()
        .args(["check", &lab.addr("open-relay"), "-q", "--json", "-o"])
        .arg(&file)
        .args(FAST)
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"verdict\":\"open-relay\""), "{text}");
    // Errors still reach stderr.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    relayscan()
        .args(["check", &format!("127.0.0.1:{port}"), "-q"])
        .args(FAST)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("could not be tested"));
}

#[test]
fn check_connects_from_the_source_address() {
    let lab = TestLab::start(&["postfix-closed"]);
    // 127.0.0.7 is this machine's (all of 127/8 is) but never the default.
    relayscan()
        .args(["check", &lab.addr("postfix-closed"), "--json"])
        .args(["--source-ip", "127.0.0.7"])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"source\":\"127.0.0.7:"));
    relayscan()
        .args(["check", &lab.addr("postfix-closed"), "--json"])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"source\":\"127.0.0.7:").not());
    // A family mismatch is refused before any packet.
    relayscan()
        .args(["check", &lab.addr("postfix-closed"), "--source-ip", "::1"])
        .args(FAST)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--source-ip ::1 is IPv6"));
}
