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
        .args(["--auth", relayscan::lab::LAB_USER, "--auth-insecure"])
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

    // The relay-after-failed-AUTH server is an open relay, with the
    // remediation in JSON: A2 needs no opt-in (it sends no secret).
    let out = relayscan()
        .args(["check", &lab.addr("relay-after-failed-auth"), "--json"])
        .args(["--auth", relayscan::lab::LAB_USER])
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
    // Where the password may go is checked up front too.
    relayscan()
        .args(["check", "127.0.0.1:9", "--auth", "someone"])
        .args(["--auth-host", "not a host"])
        .env("RELAYSCAN_AUTH_PASSWORD", "x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--auth-host \"not a host\" is not a host name or an address",
        ));
    relayscan()
        .args(["check", "127.0.0.1:9", "--auth", "someone"])
        .args(["--auth-ca", "/nonexistent/ca.pem"])
        .env("RELAYSCAN_AUTH_PASSWORD", "x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read --auth-ca /nonexistent/ca.pem",
        ));
    relayscan()
        .args(["check", "127.0.0.1:9", "--auth-insecure"])
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

// --- Where the --auth password may go -------------------------------------------------
//
// Every case below asks the lab servers themselves what AUTH they received
// (`lab::server::auth_log`): the password reached a server only in the
// allowed cases, never in the refused ones.

use common::dns::{TestDns, Zones};
use relayscan::lab::server::{auth_log, AuthSeen};
use relayscan::lab::{LAB_PASSWORD, LAB_USER};
use serde_json::Value;

/// The lab CA: the CA-signed lab servers verify with it for `*.lab.example`.
const LAB_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lab/tls/ca.pem");

/// What the lab server of `profile` received since `from` entries.
fn received(lab: &TestLab, profile: &str, from: usize) -> Vec<AuthSeen> {
    let addr = lab.addr(profile).parse().unwrap();
    auth_log(addr).into_iter().skip(from).collect()
}

fn log_len(lab: &TestLab, profile: &str) -> usize {
    auth_log(lab.addr(profile).parse().unwrap()).len()
}

fn got_the_password(seen: &[AuthSeen]) -> bool {
    seen.iter().any(|a| a.password_matched)
}

/// `check --json` with the lab account; the result, exit code and all output.
fn check_with_password(target: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = relayscan()
        .args(["check", target, "--json", "--tests", "direct"])
        .args(["--auth", LAB_USER])
        .args(extra)
        .env("RELAYSCAN_AUTH_PASSWORD", LAB_PASSWORD)
        .args(FAST)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let r: Value = serde_json::from_str(stdout.lines().next().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("no JSON ({e}): {stdout} {stderr}"));
    assert!(
        !stdout.contains(LAB_PASSWORD) && !stderr.contains(LAB_PASSWORD),
        "the password leaked"
    );
    (out.status.code(), r, stdout + &stderr)
}

/// The zones: `mail.lab.example` (covered by the lab certificate) and
/// `mail.other.test` (not covered), both at the lab server `addr`.
fn names_for(addr: &str) -> TestDns {
    let ip = addr.parse::<std::net::SocketAddr>().unwrap().ip();
    TestDns::start(
        Zones::new()
            .zone("lab.example")
            .addr("mail.lab.example", ip)
            .zone("other.test")
            .addr("mail.other.test", ip),
    )
}

#[test]
fn the_password_goes_only_over_tls_verified_for_the_name_given() {
    let lab = TestLab::start_ca_signed(&["exchange-closed"]);
    let addr = lab.addr("exchange-closed");
    let port = lab.port().to_string();
    let dns = names_for(&addr);
    let resolver = dns.resolver_arg();
    let by_name = format!("mail.lab.example:{port}");

    // Allowed: the name the user gave, a certificate from a CA the user trusts.
    let from = log_len(&lab, "exchange-closed");
    let (code, r, _) =
        check_with_password(&by_name, &["--resolver", &resolver, "--auth-ca", LAB_CA]);
    assert_eq!(code, Some(0), "{r:#}");
    let a = &r["auth_audit"];
    assert_eq!(a["password"]["sent"], true, "{a:#}");
    assert_eq!(a["password"]["rule"], "verified-certificate");
    assert_eq!(a["password"]["checked_for"], "mail.lab.example");
    assert_eq!(a["login"]["reply"]["code"], 235);
    assert_eq!(a["authenticated_relay"]["outcome"], "accepted");
    assert_eq!(a["wrong_password"]["user_name"], "given");
    let seen = received(&lab, "exchange-closed", from);
    assert!(got_the_password(&seen), "{seen:?}");
    assert!(seen.iter().all(|s| s.tls && s.user == LAB_USER), "{seen:?}");

    // Refused: the same server and name, but its CA is not trusted.
    let from = log_len(&lab, "exchange-closed");
    let (code, r, _) = check_with_password(&by_name, &["--resolver", &resolver]);
    assert_eq!(code, Some(0));
    assert_eq!(r["verdict"], "closed", "the skip changes no verdict");
    let a = &r["auth_audit"];
    assert_eq!(a["password"]["sent"], false, "{a:#}");
    assert_eq!(a["login"], Value::Null);
    assert_eq!(a["authenticated_relay"]["outcome"], "skipped");
    assert!(a["authenticated_relay"]["skipped"]
        .as_str()
        .unwrap()
        .starts_with(
            "certificate not verified for mail.lab.example: issued by a CA that is not trusted"
        ));
    // A2 ran (a wrong password leaks nothing) under a random user name.
    assert_eq!(a["wrong_password"]["user_name"], "random");
    assert_eq!(a["after_failed_auth"]["outcome"], "rcpt-refused");
    let seen = received(&lab, "exchange-closed", from);
    assert_eq!(seen.len(), 1, "only A2's AUTH: {seen:?}");
    assert!(
        !got_the_password(&seen) && seen[0].user != LAB_USER,
        "{seen:?}"
    );

    // Refused: a trusted CA, but a name the certificate does not cover.
    let from = log_len(&lab, "exchange-closed");
    let (_, r, _) = check_with_password(
        &format!("mail.other.test:{port}"),
        &["--resolver", &resolver, "--auth-ca", LAB_CA],
    );
    assert_eq!(
        r["auth_audit"]["authenticated_relay"]["skipped"],
        "certificate not verified for mail.other.test: not valid for this name"
    );
    assert!(!got_the_password(&received(&lab, "exchange-closed", from)));

    // Refused: the address, which the certificate does not name.
    let from = log_len(&lab, "exchange-closed");
    let (_, r, report) = check_with_password(&addr, &["--auth-ca", LAB_CA]);
    let ip = addr.split(':').next().unwrap();
    assert!(
        r["auth_audit"]["authenticated_relay"]["skipped"]
            .as_str()
            .unwrap()
            .starts_with(&format!("certificate not verified for {ip}")),
        "{report}"
    );
    assert!(!got_the_password(&received(&lab, "exchange-closed", from)));
}

#[test]
fn a_pinned_fingerprint_allows_the_password_and_a_wrong_one_refuses_it() {
    // The self-signed lab certificate, by address: only a pin can vouch for it.
    let lab = TestLab::start(&["exchange-closed", "implicit-tls"]);
    let pin =
        relayscan::smtp::tls::Certificate::from_der(&relayscan::lab::tls::certificate_der()).sha256;
    for profile in ["exchange-closed", "implicit-tls"] {
        let from = log_len(&lab, profile);
        let (_, r, _) = check_with_password(&lab.addr(profile), &["--auth-pin", &pin]);
        let a = &r["auth_audit"];
        assert_eq!(
            a["password"]["rule"], "pinned-certificate",
            "{profile}: {a:#}"
        );
        assert_eq!(a["login"]["reply"]["code"], 235, "{profile}: {a:#}");
        assert!(
            got_the_password(&received(&lab, profile, from)),
            "{profile}"
        );

        let from = log_len(&lab, profile);
        let wrong = "ab".repeat(32);
        let (_, r, _) = check_with_password(&lab.addr(profile), &["--auth-pin", &wrong]);
        let a = &r["auth_audit"];
        assert_eq!(a["password"]["sent"], false, "{profile}: {a:#}");
        assert_eq!(a["login"], Value::Null);
        assert!(
            !got_the_password(&received(&lab, profile, from)),
            "{profile}"
        );
    }
    // A pin that is not a fingerprint is refused before any connection.
    relayscan()
        .args(["check", &lab.addr("implicit-tls"), "--auth", LAB_USER])
        .args(["--auth-pin", "12:34"])
        .env("RELAYSCAN_AUTH_PASSWORD", LAB_PASSWORD)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a SHA-256 fingerprint"));
}

/// The lab servers that take AUTH, over STARTTLS, implicit TLS and plaintext.
const AUTH_SERVERS: &[&str] = &[
    "exchange-closed",
    "implicit-tls",
    "plaintext-auth",
    "auth-required",
    "iis-auth",
];

fn scan_jsonl(lab: &TestLab, extra: &[&str]) -> (Vec<Value>, String) {
    let targets: Vec<String> = lab.servers().iter().map(|(a, _)| a.to_string()).collect();
    let out = relayscan()
        .arg("scan")
        .args(&targets)
        .args(["-q", "--format", "jsonl", "--tests", "direct"])
        .args(["--auth", LAB_USER])
        .args(extra)
        .env("RELAYSCAN_AUTH_PASSWORD", LAB_PASSWORD)
        .args(FAST)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stdout.contains(LAB_PASSWORD) && !stderr.contains(LAB_PASSWORD),
        "the password leaked"
    );
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr)
}

fn result_for<'a>(lines: &'a [Value], lab: &TestLab, profile: &str) -> &'a Value {
    let ip = lab.addr(profile).split(':').next().unwrap().to_string();
    lines
        .iter()
        .find(|l| l["type"] == "result" && l["ip"] == ip.as_str())
        .unwrap_or_else(|| panic!("no result for {profile}"))
}

#[test]
fn a_range_scan_sends_the_password_only_to_the_hosts_named_for_it() {
    let lab = TestLab::start(AUTH_SERVERS);
    let pin =
        relayscan::smtp::tls::Certificate::from_der(&relayscan::lab::tls::certificate_der()).sha256;
    // No --auth-host: nowhere, even with the certificate pinned.
    let before: Vec<usize> = AUTH_SERVERS.iter().map(|p| log_len(&lab, p)).collect();
    let (lines, _) = scan_jsonl(&lab, &["--auth-pin", &pin]);
    for (profile, from) in AUTH_SERVERS.iter().zip(&before) {
        let seen = received(&lab, profile, *from);
        assert!(!got_the_password(&seen), "{profile}: {seen:?}");
        assert!(
            seen.iter().all(|s| s.user != LAB_USER),
            "{profile}: {seen:?}"
        );
        let a = &result_for(&lines, &lab, profile)["auth_audit"];
        assert_eq!(a["password"]["sent"], false, "{profile}: {a:#}");
        assert!(a["authenticated_relay"]["skipped"]
            .as_str()
            .unwrap()
            .starts_with("host not named in --auth-host"));
        // A2 ran everywhere, under a random name.
        assert_eq!(a["wrong_password"]["user_name"], "random", "{profile}");
        assert_eq!(seen.len(), 1, "{profile}: {seen:?}");
    }
    // Named: exactly that host gets it.
    let named = lab.addr("exchange-closed");
    let named_ip = named.split(':').next().unwrap();
    let before: Vec<usize> = AUTH_SERVERS.iter().map(|p| log_len(&lab, p)).collect();
    let (lines, _) = scan_jsonl(&lab, &["--auth-pin", &pin, "--auth-host", named_ip]);
    for (profile, from) in AUTH_SERVERS.iter().zip(&before) {
        let got = got_the_password(&received(&lab, profile, *from));
        assert_eq!(got, *profile == "exchange-closed", "{profile}");
    }
    let a = &result_for(&lines, &lab, "exchange-closed")["auth_audit"];
    assert_eq!(a["password"]["rule"], "pinned-certificate", "{a:#}");
    let meta = &lines[0];
    assert_eq!(meta["type"], "meta");
    assert_eq!(
        meta["auth_password_rules"]["hosts"],
        serde_json::json!([named_ip])
    );
    assert_eq!(meta["auth_password_rules"]["insecure"], false);
}

#[test]
fn the_insecure_opt_in_warns_and_is_recorded() {
    let lab = TestLab::start(AUTH_SERVERS);
    let before: Vec<usize> = AUTH_SERVERS.iter().map(|p| log_len(&lab, p)).collect();
    let (lines, stderr) = scan_jsonl(&lab, &["--auth-insecure"]);
    assert!(
        stderr.contains("WARNING: --auth-insecure"),
        "no warning: {stderr}"
    );
    assert_eq!(lines[0]["auth_password_rules"]["insecure"], true);
    for (profile, from) in AUTH_SERVERS.iter().zip(&before) {
        let a = &result_for(&lines, &lab, profile)["auth_audit"];
        assert_eq!(a["login"]["reply"]["code"], 235, "{profile}: {a:#}");
        assert_eq!(a["password"]["rule"], "insecure", "{profile}: {a:#}");
        let waived = a["password"]["waived"].as_str().unwrap();
        assert!(waived.contains("not named in --auth-host"), "{waived}");
        assert!(
            got_the_password(&received(&lab, profile, *from)),
            "{profile}"
        );
    }
    let plaintext = &result_for(&lines, &lab, "plaintext-auth")["auth_audit"]["password"];
    assert!(plaintext["waived"].as_str().unwrap().ends_with("no TLS"));
    // The old flag is gone, and says what replaced it.
    relayscan()
        .args(["check", &lab.addr("plaintext-auth"), "--auth", LAB_USER])
        .arg("--auth-plaintext")
        .env("RELAYSCAN_AUTH_PASSWORD", LAB_PASSWORD)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--auth-insecure"));
}

#[test]
fn tls_on_a_plaintext_port_names_the_cause_and_the_fix() {
    let lab = TestLab::start(&["postfix-closed"]);
    let addr = lab.addr("postfix-closed");
    let port = lab.port();
    let expected = format!(
        "the server did not answer in TLS: is port {port} plaintext? drop --tls or use --starttls"
    );
    let out = relayscan()
        .args(["check", &addr, "--tls"])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains(&expected), "{report}");
    assert!(!report.contains("InvalidContentType"), "{report}");
    assert!(
        !report.contains("tls-failed"),
        "not the server's fault: {report}"
    );
    let out = relayscan()
        .args(["check", &addr, "--tls", "--json"])
        .args(FAST)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["error"], format!("implicit TLS: {expected}"));
}
