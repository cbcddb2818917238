//! Ground truth for TLS and AUTH: real Postfix instances from tests/mta/
//! (loopback only), checked with and without credentials.
//!
//! - `postfix-tls` (127.0.25.4) demands STARTTLS, then refuses relay: with
//!   `--starttls auto` the tests run over TLS and say `closed`; with
//!   `--starttls never` it is `tls-required`.
//! - `postfix-auth` (127.0.25.3) relays only after SASL AUTH (relayuser /
//!   relaypass, PLAIN and LOGIN, with or without TLS): `closed` for
//!   strangers, relay accepted after the right password, refused after a
//!   wrong one. It offers STARTTLS with a certificate from a CA that
//!   tests/mta/up.sh makes (STATE/postfix-auth/tls/ca.pem, for
//!   `postfix-auth.test` and 127.0.25.3): the password goes there with
//!   `--auth-ca` or `--auth-pin`, and nowhere without them.
//!
//! The instances come from `tests/mta/up.sh` (started here and stopped at the
//! end), or are reused when they already answer. Without the MTAs installed
//! (or without root) the tests print one line and pass, unless
//! RELAYSCAN_REAL_MTA=1 (CI), where they must run.

mod common;

use common::mta::required;

use common::relayscan;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const POSTFIX_AUTH: &str = "127.0.25.3:25";
const POSTFIX_TLS: &str = "127.0.25.4:25";
const USER: &str = "relayuser";
const PASSWORD: &str = "relaypass";

/// The MTA lab for this test binary: `None` when it is not available here.
struct MtaLab {
    /// The state directory we started (stopped on exit), if we started one.
    started: Option<PathBuf>,
    /// The state directory of the running lab (ours or the one reused).
    state: PathBuf,
}

impl Drop for MtaLab {
    fn drop(&mut self) {
        if let Some(state) = &self.started {
            let _ = Command::new("bash")
                .arg(repo().join("tests/mta/down.sh"))
                .arg(state)
                .status();
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Something on `addr` greets like the given Postfix instance.
fn greets(addr: &str, name: &str) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let _ = BufReader::new(stream.take(512)).read_line(&mut line);
    line.starts_with("220 ") && line.contains(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Start (or find) postfix-auth and postfix-tls; stopped when dropped.
fn lab() -> Option<MtaLab> {
    {
        if greets(POSTFIX_AUTH, "postfix-auth") && greets(POSTFIX_TLS, "postfix-tls") {
            eprintln!("real_mta_tls: reusing the MTA lab already running on 127.0.25.3-4");
            return Some(MtaLab {
                started: None,
                state: std::env::temp_dir().join("relayscan-real-mta-tls"),
            });
        }
        let installed =
            Path::new("/usr/sbin/postfix").exists() && Path::new("/usr/sbin/saslpasswd2").exists();
        if !(installed || required()) || !is_root() {
            let why = if is_root() {
                "Postfix is not installed (bash tests/mta/install.sh)"
            } else {
                "not root"
            };
            assert!(!required(), "RELAYSCAN_REAL_MTA=1 but {why}");
            println!("real_mta_tls: skipped: {why}; set RELAYSCAN_REAL_MTA=1 to require it");
            return None;
        }
        // Under /tmp: the MTAs drop root and must reach it.
        let state = std::env::temp_dir().join("relayscan-real-mta-tls");
        let status = Command::new("bash")
            .arg(repo().join("tests/mta/up.sh"))
            .arg(&state)
            .env("RELAYSCAN_MTA_ONLY", "postfix-auth postfix-tls")
            .env("RELAYSCAN_MTA_INSTALL", if required() { "1" } else { "0" })
            .status();
        match status {
            Ok(s) if s.success() => Some(MtaLab {
                started: Some(state.clone()),
                state,
            }),
            other => {
                assert!(!required(), "tests/mta/up.sh failed: {other:?}");
                println!("real_mta_tls: skipped: tests/mta/up.sh failed ({other:?})");
                None
            }
        }
    }
}

/// Run `relayscan check --json` and return the result and the raw output.
fn check(addr: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = relayscan();
    cmd.args([
        "check",
        addr,
        "--json",
        "--ehlo",
        "scanner.relayscan.example",
    ])
    .args(["--read-timeout", "10s", "--host-timeout", "60s"])
    .args(extra)
    .env_remove("RELAYSCAN_AUTH_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("relayscan runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result: Value = serde_json::from_str(stdout.lines().next().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("no JSON result ({e}): {stdout} {stderr}"));
    (out.status.code().unwrap_or(-1), result, stdout + &stderr)
}

fn finding_ids(result: &Value) -> Vec<String> {
    result["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn postfix_tls_is_tested_over_starttls() {
    let (code, r, _) = check(POSTFIX_TLS, &[], &[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["verdict"], "closed", "relay tests ran over TLS: {r:#}");
    assert_eq!(r["starttls"], "yes");
    assert!(r["tls_version"].as_str().unwrap().starts_with("TLSv1."));
    assert_eq!(r["tls"]["mode"], "starttls");
    assert_eq!(r["tls"]["reason"], "advertised");
    let cert = &r["tls"]["session"]["certificate"];
    assert!(
        cert["subject"].as_str().unwrap().contains("postfix-tls"),
        "{cert:#}"
    );
    assert_eq!(cert["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(r["software"], "postfix");
    assert!(r["reply"].as_str().unwrap().contains("Relay access denied"));
    // Every test ran on a connection that redid STARTTLS: none was refused
    // for lack of TLS.
    for t in r["tests"].as_array().unwrap() {
        assert_ne!(t["class"], "tls-required", "{t:#}");
    }
}

fn postfix_tls_without_starttls_is_tls_required() {
    let (code, r, _) = check(POSTFIX_TLS, &["--starttls", "never"], &[]);
    // Not tested for relaying: a CI gate must fail.
    assert_eq!(code, 2);
    assert_eq!(r["verdict"], "tls-required", "{r:#}");
    assert_eq!(r["starttls"], "advertised");
    assert!(finding_ids(&r).contains(&"tls-untested".to_string()));
}

fn postfix_tls_with_credentials_has_no_auth_to_test() {
    let (code, r, _) = check(
        POSTFIX_TLS,
        &["--auth", USER],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    assert_eq!(code, 0);
    assert_eq!(r["verdict"], "closed");
    let skipped = r["auth_audit"]["skipped"].to_string();
    assert!(skipped.contains("offers no AUTH"), "{skipped}");
}

fn postfix_auth_without_credentials_is_closed_with_a_plaintext_auth_finding() {
    let (code, r, _) = check(POSTFIX_AUTH, &[], &[]);
    assert_eq!(code, 0);
    assert_eq!(r["verdict"], "closed", "{r:#}");
    assert_eq!(r["auth"], serde_json::json!(["PLAIN", "LOGIN"]));
    assert_eq!(r["auth_audit"], Value::Null);
    let findings = r["findings"].as_array().unwrap();
    let plaintext = findings
        .iter()
        .find(|f| f["id"] == "plaintext-auth")
        .expect("plaintext AUTH is a finding");
    assert!(plaintext["remediation"]
        .as_str()
        .unwrap()
        .contains("smtpd_tls_auth_only"));
    assert!(r["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["finding"] == "plaintext-auth"));
}

fn postfix_auth_relays_after_the_right_password_only(ca: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let (code, r, all) = check(
        POSTFIX_AUTH,
        &[
            "--auth",
            USER,
            "--auth-password-file",
            file.to_str().unwrap(),
            "--auth-ca",
            ca,
            "--transcript",
        ],
        &[],
    );
    assert_eq!(
        code, 0,
        "a relay after the right password is expected: {r:#}"
    );
    assert_eq!(r["verdict"], "closed");
    let a = &r["auth_audit"];
    assert_eq!(a["user"], USER);
    assert_eq!(a["wrong_password"]["reply"]["code"], 535, "{a:#}");
    assert_eq!(a["after_failed_auth"]["outcome"], "rcpt-refused", "{a:#}");
    assert_eq!(a["login"]["reply"]["code"], 235, "{a:#}");
    assert_eq!(a["login"]["encrypted"], true, "{a:#}");
    assert_eq!(a["authenticated_relay"]["outcome"], "accepted", "{a:#}");
    // The certificate names 127.0.25.3 and chains to the lab's CA.
    assert_eq!(a["password"]["rule"], "verified-certificate", "{a:#}");
    assert_eq!(a["password"]["checked_for"], "127.0.25.3", "{a:#}");
    assert!(!finding_ids(&r).contains(&"relay-after-failed-auth".to_string()));
    // The password never appears, not even base64-encoded in the transcript.
    assert!(!all.contains(PASSWORD), "password leaked");
    assert!(!all.contains("cmVsYXlwYXNz"), "base64 password leaked");
    assert!(
        !all.contains("AHJlbGF5dXNlcgByZWxheXBhc3M="),
        "PLAIN response leaked"
    );
    let transcript = r["transcript"].to_string();
    assert!(transcript.contains("AUTH PLAIN <redacted>"), "{transcript}");
}

/// By name: `postfix-auth.test` from a DNS server on loopback, the
/// certificate checked for that name; and by a pinned fingerprint.
fn postfix_auth_by_name_and_by_pin(ca: &str, cert: &str) {
    let dns = common::dns::TestDns::start(
        common::dns::Zones::new()
            .zone("postfix-auth.test")
            .addr("postfix-auth.test", "127.0.25.3".parse().unwrap()),
    );
    let (_, r, _) = check(
        "postfix-auth.test:25",
        &[
            "--auth",
            USER,
            "--auth-ca",
            ca,
            "--resolver",
            &dns.resolver_arg(),
        ],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    let a = &r["auth_audit"];
    assert_eq!(a["password"]["rule"], "verified-certificate", "{a:#}");
    assert_eq!(a["password"]["checked_for"], "postfix-auth.test", "{a:#}");
    assert_eq!(a["authenticated_relay"]["outcome"], "accepted", "{a:#}");

    let pem = std::fs::read(cert).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls_pki_types::CertificateDer| c.as_ref().to_vec())
        .unwrap();
    let pin = relayscan::smtp::tls::Certificate::from_der(&der).sha256;
    let (_, r, _) = check(
        POSTFIX_AUTH,
        &["--auth", USER, "--auth-pin", &pin],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    let a = &r["auth_audit"];
    assert_eq!(a["password"]["rule"], "pinned-certificate", "{a:#}");
    assert_eq!(a["login"]["reply"]["code"], 235, "{a:#}");
    let (_, r, _) = check(
        POSTFIX_AUTH,
        &["--auth", USER, "--auth-pin", &"0".repeat(64)],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    assert_eq!(r["auth_audit"]["login"], Value::Null, "a wrong pin: {r:#}");
}

fn postfix_auth_password_is_not_sent_without_verified_tls() {
    // Over STARTTLS, but nobody vouches for the certificate.
    let (code, r, _) = check(
        POSTFIX_AUTH,
        &["--auth", USER],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    assert_eq!(code, 0);
    let a = &r["auth_audit"];
    assert_eq!(a["login"], Value::Null, "{a:#}");
    assert_eq!(a["password"]["sent"], false, "{a:#}");
    assert!(
        a["authenticated_relay"]["skipped"]
            .as_str()
            .unwrap()
            .starts_with(
                "certificate not verified for 127.0.25.3: issued by a CA that is not trusted"
            ),
        "{a:#}"
    );
    // The wrong-password test still ran: it carries no secret (and no user name).
    assert_eq!(a["after_failed_auth"]["outcome"], "rcpt-refused", "{a:#}");
    assert_eq!(a["wrong_password"]["user_name"], "random", "{a:#}");
    // In plaintext: not sent either.
    let (_, r, _) = check(
        POSTFIX_AUTH,
        &["--auth", USER, "--starttls", "never"],
        &[("RELAYSCAN_AUTH_PASSWORD", PASSWORD)],
    );
    assert_eq!(r["auth_audit"]["authenticated_relay"]["skipped"], "no TLS");
    assert_eq!(r["auth_audit"]["login"], Value::Null);
}

/// One test, so the lab is started once and stopped at the end (a static
/// would never be dropped).
#[test]
fn real_postfix_with_and_without_tls_and_credentials() {
    let Some(lab) = lab() else { return };
    let tls = lab.state.join("postfix-auth/tls");
    let ca = tls.join("ca.pem").to_string_lossy().into_owned();
    let cert = tls.join("cert.pem").to_string_lossy().into_owned();
    postfix_tls_is_tested_over_starttls();
    postfix_tls_without_starttls_is_tls_required();
    postfix_tls_with_credentials_has_no_auth_to_test();
    postfix_auth_without_credentials_is_closed_with_a_plaintext_auth_finding();
    postfix_auth_relays_after_the_right_password_only(&ca);
    postfix_auth_by_name_and_by_pin(&ca, &cert);
    postfix_auth_password_is_not_sent_without_verified_tls();
}
