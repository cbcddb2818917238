//! The binary end to end on TLS and AUTH: the CSV columns, the JSON audit,
//! the `check` report with remediation, and the password never leaving.

mod common;

use common::{csv_rows, relayscan, TestLab, FAST};
use predicates::prelude::*;

#[test]
fn csv_fills_software_starttls_tls_version_and_auth() {
    let lab = TestLab::start(&[
        "exchange-closed",
        "iis-auth",
        "postfix-closed",
        "starttls-open",
    ]);
    let targets: Vec<String> = lab.servers().iter().map(|(a, _)| a.to_string()).collect();
    let out = relayscan()
        .arg("scan")
        .args(&targets)
        .args(["-q"])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "starttls-open relays");
    let (_, rows) = csv_rows(&String::from_utf8(out.stdout).unwrap());
    let row = |name: &str| {
        let ip = lab.addr(name).split(':').next().unwrap().to_string();
        rows.iter().find(|r| r["ip"] == ip).unwrap().clone()
    };
    let exchange = row("exchange-closed");
    assert_eq!(exchange["software"], "exchange");
    assert_eq!(exchange["starttls"], "yes");
    assert_eq!(exchange["tls_version"], "TLSv1.3");
    assert_eq!(exchange["auth"], "NTLM;tls:NTLM;tls:LOGIN");
    let iis = row("iis-auth");
    assert_eq!(iis["software"], "iis-smtp");
    assert_eq!(iis["starttls"], "no");
    assert_eq!(iis["tls_version"], "");
    assert_eq!(iis["auth"], "GSSAPI;NTLM;LOGIN");
    assert_eq!(iis["verdict"], "auth-required");
    let postfix = row("postfix-closed");
    assert_eq!(postfix["software"], "postfix");
    assert_eq!(postfix["starttls"], "no");
    let open = row("starttls-open");
    assert_eq!(open["verdict"], "open-relay");
    assert_eq!(open["starttls"], "yes");
}

#[test]
fn check_report_gives_the_fix_in_the_servers_terms() {
    let lab = TestLab::start(&["starttls-open", "iis-auth"]);
    relayscan()
        .args(["check", &lab.addr("starttls-open")])
        .args(FAST)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("OPEN-RELAY")
                .and(predicate::str::contains(
                    "tls         starttls (advertised): TLSv1.3",
                ))
                .and(predicate::str::contains("[high] open-relay"))
                .and(predicate::str::contains(
                    "fix: Postfix main.cf: smtpd_relay_restrictions",
                ))
                .and(predicate::str::contains("vantage point"))
                .and(predicate::str::contains("same host")),
        );
    relayscan()
        .args(["check", &lab.addr("iis-auth")])
        .args(FAST)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("software    Microsoft IIS SMTP 6.0.3790.4675")
                .and(predicate::str::contains(
                    "auth        GSSAPI NTLM LOGIN (no TLS)",
                ))
                .and(predicate::str::contains("Requires TLS encryption")),
        );
}

#[test]
fn auth_password_never_reaches_the_output() {
    let lab = TestLab::start(&["auth-required", "relay-after-failed-auth"]);
    let secret = relayscan::lab::LAB_PASSWORD;
    let out = relayscan()
        .args([
            "check",
            &lab.addr("auth-required"),
            "--json",
            "--transcript",
        ])
        .args(["--auth", relayscan::lab::LAB_USER, "--auth-plaintext"])
        .env("RELAYSCAN_AUTH_PASSWORD", secret)
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    assert!(!text.contains(secret), "password in the output");
    // Neither the PLAIN response (base64 of \0labuser\0labpass) nor the LOGIN answer.
    assert!(
        !text.contains("AGxhYnVzZXIAbGFicGFzcw=="),
        "PLAIN response in the output"
    );
    assert!(
        !text.contains("bGFicGFzcw=="),
        "base64 password in the output"
    );
    let r: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(r["auth_audit"]["login"]["reply"]["code"], 235);
    assert_eq!(
        r["auth_audit"]["authenticated_relay"]["outcome"],
        "accepted"
    );
    let transcript: Vec<String> = r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    assert!(
        transcript.iter().any(|l| l == "AUTH PLAIN <redacted>"),
        "{transcript:?}"
    );

    // The relay-after-failed-AUTH server is an open relay, with the remediation in JSON.
    let out = relayscan()
        .args(["check", &lab.addr("relay-after-failed-auth"), "--json"])
        .args(["--auth", relayscan::lab::LAB_USER, "--auth-plaintext"])
        .env("RELAYSCAN_AUTH_PASSWORD", secret)
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["verdict"], "open-relay");
    assert_eq!(r["deciding_test"], "A2");
    assert_eq!(r["remediation"][0]["finding"], "relay-after-failed-auth");
    assert!(r["remediation"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("MailEnable"));
    assert_eq!(
        r["vantage"]["source"].as_str().unwrap().split(':').next(),
        Some("127.0.0.1")
    );
    assert!(!r["vantage"]["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn auth_options_are_checked_before_any_connection() {
    // No password anywhere.
    relayscan()
        .args(["check", "127.0.0.1:9", "--auth", "someone"])
        .env_remove("RELAYSCAN_AUTH_PASSWORD")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("RELAYSCAN_AUTH_PASSWORD"));
    // An unreadable password file is named, its (absent) content is not.
    relayscan()
        .args(["check", "127.0.0.1:9", "--auth", "someone"])
        .args(["--auth-password-file", "/nonexistent/pw"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read --auth-password-file /nonexistent/pw",
        ));
    // A password file without --auth is a usage error.
    relayscan()
        .args([
            "check",
            "127.0.0.1:9",
            "--auth-password-file",
            "/nonexistent/pw",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--auth"));
    relayscan()
        .args(["check", "127.0.0.1:9", "--starttls", "sometimes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("auto"));
}

#[test]
fn implicit_tls_with_the_tls_option() {
    let lab = TestLab::start(&["implicit-tls"]);
    let out = relayscan()
        .args(["check", &lab.addr("implicit-tls"), "--tls", "--json"])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["verdict"], "closed");
    assert_eq!(r["starttls"], "implicit");
    assert_eq!(r["tls"]["reason"], "option");
    assert_eq!(r["tls"]["session"]["certificate"]["self_signed"], true);
}
