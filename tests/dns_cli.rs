//! The binary with DNS: `check DOMAIN` and `scan --mx DOMAIN` find the MX
//! hosts of a test zone and probe each; blocklist listings reach CSV and
//! JSON Lines; every DNS failure is one clear record. The DNS server is the
//! tests' own on loopback (tests/common/dns.rs), always named with
//! `--resolver`; the MX hosts are the lab's loopback servers.

mod common;

use common::dns::{lab_world, TestDns, BL_ZONE};
use common::{csv_rows, relayscan, TestLab, FAST};
use relayscan::output::CSV_HEADER;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

struct World {
    lab: TestLab,
    dns: TestDns,
}

impl World {
    /// mx1.lab.example is an open relay, mx2.lab.example a closed Postfix.
    fn start() -> World {
        let lab = TestLab::start(&["open-relay", "postfix-closed"]);
        let ip =
            |name: &str| -> IpAddr { lab.addr(name).split(':').next().unwrap().parse().unwrap() };
        let dns = TestDns::start(lab_world(ip("open-relay"), ip("postfix-closed")));
        World { lab, dns }
    }

    fn port(&self) -> String {
        self.lab.port().to_string()
    }

    fn ip(&self, profile: &str) -> String {
        self.lab
            .addr(profile)
            .split(':')
            .next()
            .unwrap()
            .to_string()
    }

    /// The binary with this world's resolver and port.
    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = relayscan();
        cmd.args(args)
            .args(["--resolver", &self.dns.resolver_arg(), "-p", &self.port()])
            .args(FAST)
            .args(["--dns-timeout", "500ms"]);
        cmd
    }
}

fn results(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "result")
        .collect()
}

#[test]
fn check_a_domain_probes_each_mx_host() {
    let w = World::start();
    let out = w
        .cmd(&["check", "lab.example", "--dnsbl", BL_ZONE])
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "mx1 relays → exit 1\n{report}");
    let mx1 = format!("relayscan check {}:{}", w.ip("open-relay"), w.port());
    let mx2 = format!("relayscan check {}:{}", w.ip("postfix-closed"), w.port());
    let (at1, at2) = (
        report.find(&mx1).expect(&mx1),
        report.find(&mx2).expect(&mx2),
    );
    assert!(at1 < at2, "preference order\n{report}");
    let (first, second) = report.split_at(at2);
    assert!(first.contains("verdict     OPEN-RELAY"), "{report}");
    assert!(
        first.contains("mx          lab.example → mx1.lab.example (preference 10)"),
        "{report}"
    );
    assert!(
        first.contains("dnsbl       LISTED on bl.lab.example (127.0.0.2): open relay, see https://bl.lab.example/lookup"),
        "{report}"
    );
    assert!(second.contains("verdict     CLOSED"), "{report}");
    assert!(
        second.contains("mx          lab.example → mx2.lab.example (preference 20)"),
        "{report}"
    );
    assert!(
        second.contains("dnsbl       not listed (1 zone(s) asked)"),
        "{report}"
    );
    // The domain is {TD}: the postmaster control asks for postmaster@lab.example.
    assert!(report.contains("<postmaster@lab.example>"), "{report}");
}

#[test]
fn check_json_carries_mx_ptr_and_dnsbl() {
    let w = World::start();
    let out = w
        .cmd(&["check", "lab.example", "--json", "--dnsbl", BL_ZONE])
        .output()
        .unwrap();
    let lines = results(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2);
    let mx1 = &lines[0];
    assert_eq!(mx1["ip"], w.ip("open-relay"));
    assert_eq!(mx1["name"], "mx1.lab.example");
    assert_eq!(mx1["target_domain"], "lab.example");
    assert_eq!(mx1["mx"]["domain"], "lab.example");
    assert_eq!(mx1["mx"]["preference"], 10);
    assert_eq!(mx1["mx"]["implicit"], false);
    // Loopback has no PTR worth asking for.
    assert_eq!(mx1["ptr"], Value::Null);
    assert_eq!(mx1["dnsbl"]["zones"][0], BL_ZONE);
    assert_eq!(mx1["dnsbl"]["listed"][0]["codes"][0], "127.0.0.2");
    assert_eq!(lines[1]["dnsbl"]["listed"].as_array().unwrap().len(), 0);
}

#[test]
fn default_blocklists_are_never_asked_about_loopback() {
    let w = World::start();
    let out = w.cmd(&["check", "lab.example", "--json"]).output().unwrap();
    let lines = results(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["dnsbl"]["skipped"]
        .as_str()
        .unwrap()
        .contains("not a public address"));
    let asked = w.dns.questions();
    assert!(
        asked.iter().any(|q| q.starts_with("lab.example. MX")),
        "{asked:?}"
    );
    assert!(
        !asked
            .iter()
            .any(|q| q.contains("spamhaus") || q.contains("arpa")),
        "{asked:?}"
    );
}

#[test]
fn scan_mx_writes_dnsbl_to_csv_and_jsonl() {
    let w = World::start();
    let out = w
        .cmd(&["scan", "--mx", "lab.example", "--dnsbl", BL_ZONE, "-q"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, rows) = csv_rows(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(header, CSV_HEADER);
    assert_eq!(header.last().unwrap(), "dnsbl");
    assert_eq!(header[14], "timestamp", "dnsbl is appended after timestamp");
    assert_eq!(rows.len(), 2);
    let by_ip: HashMap<&str, &HashMap<String, String>> =
        rows.iter().map(|r| (r["ip"].as_str(), r)).collect();
    let open = by_ip[w.ip("open-relay").as_str()];
    assert_eq!(open["verdict"], "open-relay");
    assert_eq!(open["dnsbl"], BL_ZONE);
    let closed = by_ip[w.ip("postfix-closed").as_str()];
    assert_eq!(closed["verdict"], "closed");
    assert_eq!(closed["dnsbl"], "");

    let out = w
        .cmd(&[
            "scan",
            "--mx",
            "lab.example",
            "--dnsbl",
            BL_ZONE,
            "-q",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let meta: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(meta["dns"]["dnsbl_zones"][0], BL_ZONE);
    assert_eq!(meta["dns"]["resolvers"][0], w.dns.resolver_arg());
    let lines = results(&text);
    let open = lines
        .iter()
        .find(|l| l["ip"] == w.ip("open-relay").as_str())
        .unwrap();
    assert_eq!(
        open["dnsbl"]["listed"][0]["reason"],
        "open relay, see https://bl.lab.example/lookup"
    );
}

/// A name that does not resolve is reported by its name, never as
/// `0.0.0.0:25`, and fails the CI gate.
#[test]
fn check_of_a_name_that_does_not_resolve_names_it() {
    let w = World::start();
    let out = w
        .cmd(&["check", "nosuch-host.lab.example"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let heading = format!("relayscan check nosuch-host.lab.example:{}\n", w.port());
    assert!(stdout.starts_with(&heading), "{stdout}");
    assert!(!stdout.contains("0.0.0.0"), "{stdout}");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be tested"));
}

#[test]
fn dns_failures_are_one_clear_record_each() {
    let w = World::start();
    let out = w
        .cmd(&[
            "scan",
            "--mx",
            "nullmx.lab.example",
            "--mx",
            "nosuch.lab.example",
            "--mx",
            "empty.lab.example",
            "--mx",
            "broken.example",
            "--mx",
            "slow.example",
            "nosuch-host.lab.example",
            "-q",
        ])
        .output()
        .unwrap();
    // No target could be tested: a CI gate must fail (exit 2), not pass.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows) = csv_rows(&String::from_utf8(out.stdout).unwrap());
    let mut errors: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["verdict"], "error", "{r:?}");
            (r["hostname"].clone(), r["error"].clone())
        })
        .collect();
    errors.sort();
    let want = [
        ("broken.example", "dns: SERVFAIL for broken.example"),
        ("empty.lab.example", "dns: no records for empty.lab.example"),
        (
            "nosuch-host.lab.example",
            "dns: NXDOMAIN for nosuch-host.lab.example",
        ),
        ("nosuch.lab.example", "dns: NXDOMAIN for nosuch.lab.example"),
        (
            "nullmx.lab.example",
            "dns: null MX for nullmx.lab.example (the domain accepts no mail)",
        ),
        ("slow.example", "dns: timeout for slow.example"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(errors, want);
}

#[test]
fn check_of_a_null_mx_domain_fails_clearly() {
    let w = World::start();
    let out = w.cmd(&["check", "nullmx.lab.example"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("verdict     ERROR"), "{report}");
    assert!(
        report.contains(
            "error       dns: null MX for nullmx.lab.example (the domain accepts no mail)"
        ),
        "{report}"
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("could not be tested"));
}

#[test]
fn host_names_in_input_files_use_the_resolver() {
    let w = World::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(
        &list,
        "# lab hosts\nmx2.lab.example\nmx:implicit.lab.example\n",
    )
    .unwrap();
    let out = w
        .cmd(&[
            "scan",
            "-i",
            list.to_str().unwrap(),
            "-q",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    let lines = results(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2);
    let by_name: HashMap<&str, &Value> = lines
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l))
        .collect();
    let mx2 = by_name["mx2.lab.example"];
    assert_eq!(mx2["ip"], w.ip("postfix-closed"));
    assert_eq!(mx2["verdict"], "closed");
    // A plain host name is not an MX target: no blocklists unless asked.
    assert_eq!(mx2["dnsbl"], Value::Null);
    let implicit = by_name["implicit.lab.example"];
    assert_eq!(implicit["ip"], w.ip("open-relay"));
    assert_eq!(implicit["mx"]["implicit"], true);
    assert_eq!(implicit["target_domain"], "implicit.lab.example");
}

#[test]
fn bad_dns_options_are_usage_errors() {
    for (args, why) in [
        (vec!["--resolver", "ns.example.org"], "--resolver"),
        (vec!["--dnsbl", "none,bl.example.org"], "--dnsbl"),
        (vec!["--dnsbl", "not a zone"], "--dnsbl"),
        (vec!["--dns-concurrency", "0"], "--dns-concurrency"),
    ] {
        let out = relayscan()
            .args(["scan", "127.0.0.1", "-p", "1"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// A resolver that never answers cannot hold a host past its deadline: the
/// blocklist lookups run inside `--host-timeout` (here 2 s, against a DNS
/// timeout of 8 s), say they got no answer in time, and the time they took
/// is in `duration_ms`.
#[test]
fn a_silent_resolver_cannot_outlast_the_host_deadline() {
    let lab = TestLab::start(&["postfix-closed", "exim-closed", "open-relay", "greylist"]);
    // A resolver on loopback that reads every query and answers none.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = silent.local_addr().unwrap().to_string();
    let targets = lab.addrs();
    let started = std::time::Instant::now();
    let out = relayscan()
        .arg("scan")
        .args(&targets)
        .args(["--resolver", &resolver, "--dnsbl", "bl.silent.example"])
        .args([
            "--dns-timeout",
            "8s",
            "--host-timeout",
            "2s",
            "--read-timeout",
            "1s",
        ])
        .args([
            "--ehlo",
            "scanner.relayscan.example",
            "--format",
            "jsonl",
            "-q",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    drop(silent);
    // 2 s per host, all at once, and the 2 s hard-stop margin: never the
    // 8 s a DNS query may wait.
    assert!(took < std::time::Duration::from_secs(6), "took {took:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = results(&stdout);
    assert_eq!(lines.len(), 4, "{stdout}");
    for r in &lines {
        assert_eq!(
            r["dnsbl"]["errors"][0]["error"], "no answer within the host deadline",
            "{r}"
        );
        assert!(r["duration_ms"].as_u64().unwrap() >= 1900, "{r}");
        // The probe itself was not starved by the wait: it has its verdict.
        assert_ne!(r["verdict"], "timeout", "{r}");
    }
}
