//! The scope and the exclusions, through the binary: nothing outside
//! `--scope` is sent a packet (targets before and after DNS, name servers),
//! and what `--exclude` or reserved space removes is never dialled, however
//! it was named. Everything here is on loopback: the "outside" addresses
//! are loopback addresses left out of a narrower scope, each watched by a
//! canary listener that proves nothing reached it. Names resolve only
//! through the tests' own DNS server (tests/common/dns.rs).

mod common;

use common::dns::{TestDns, Zones};
use common::{relayscan, TestLab, FAST};
use serde_json::Value;
use std::io::ErrorKind;
use std::net::{IpAddr, TcpListener, UdpSocket};

/// An address no lab profile uses: the canary's.
const CANARY: &str = "127.0.0.200";

/// A TCP listener that records whether anyone connected.
struct Canary(TcpListener);

impl Canary {
    fn on(port: u16) -> Canary {
        let l = TcpListener::bind((CANARY, port)).expect("canary binds");
        l.set_nonblocking(true).unwrap();
        Canary(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// Did a connection arrive (a completed handshake waits in the backlog)?
    fn was_dialled(&self) -> bool {
        match self.0.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("canary: {e}"),
        }
    }
}

struct World {
    lab: TestLab,
    dns: TestDns,
    canary: Canary,
}

impl World {
    /// `inside.scope.example` is the lab's open relay; `far.scope.example`
    /// is the canary; `both.scope.example` is both; `zero.scope.example` is
    /// 0.0.0.0 (reserved space); the MX hosts of `scope.example` are
    /// `mx1` (the open relay) and `mx2` (the canary).
    fn start() -> World {
        let lab = TestLab::start(&["open-relay"]);
        let relay: IpAddr = lab
            .addr("open-relay")
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let canary_ip: IpAddr = CANARY.parse().unwrap();
        let dns = TestDns::start(
            Zones::new()
                .zone("scope.example")
                .addr("inside.scope.example", relay)
                .addr("far.scope.example", canary_ip)
                .addr("both.scope.example", relay)
                .addr("both.scope.example", canary_ip)
                .addr("zero.scope.example", "0.0.0.0".parse().unwrap())
                .mx("scope.example", 10, "mx1.scope.example")
                .mx("scope.example", 20, "mx2.scope.example")
                .addr("mx1.scope.example", relay)
                .addr("mx2.scope.example", canary_ip),
        );
        let canary = Canary::on(lab.port());
        World { lab, dns, canary }
    }

    fn relay_ip(&self) -> String {
        self.lab
            .addr("open-relay")
            .split(':')
            .next()
            .unwrap()
            .into()
    }

    /// `scan ARGS` with this world's resolver and port, as JSON Lines.
    fn scan(&self, args: &[&str]) -> std::process::Output {
        relayscan()
            .arg("scan")
            .args(args)
            .args(["--resolver", &self.dns.resolver_arg()])
            .args(["-p", &self.lab.port().to_string(), "--format", "jsonl"])
            .args(FAST)
            .args(["--dns-timeout", "2s"])
            .output()
            .unwrap()
    }
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

fn results(out: &std::process::Output) -> Vec<Value> {
    lines(out)
        .into_iter()
        .filter(|v| v["type"] == "result")
        .collect()
}

fn summary(out: &std::process::Output) -> Value {
    lines(out)
        .into_iter()
        .find(|v| v["type"] == "summary")
        .expect("a summary line")
}

#[test]
fn a_name_resolving_outside_the_scope_is_not_dialled() {
    let w = World::start();
    // The test DNS server and the lab are in scope; the canary is not.
    let out = w.scan(&[
        "far.scope.example",
        "both.scope.example",
        "--scope",
        "127.0.0.1,127.0.0.11-127.0.0.99",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let records = results(&out);
    assert_eq!(records.len(), 3, "{records:?} {stderr}");
    let outside: Vec<&Value> = records.iter().filter(|r| r["ip"] == CANARY).collect();
    assert_eq!(outside.len(), 2, "{records:?}");
    for r in &outside {
        assert_eq!(r["verdict"], "error");
        let error = r["error"].as_str().unwrap();
        let name = r["name"].as_str().unwrap();
        assert_eq!(
            error,
            format!(
                "out-of-scope: {CANARY} (from {name}) is outside --scope 127.0.0.1,127.0.0.11-127.0.0.99"
            )
        );
    }
    let inside = records.iter().find(|r| r["ip"] == w.relay_ip()).unwrap();
    assert_eq!(
        inside["verdict"], "open-relay",
        "the in-scope address is probed"
    );
    assert!(
        !w.canary.was_dialled(),
        "an address outside the scope was dialled"
    );
}

#[test]
fn an_excluded_mx_host_is_not_dialled_but_counted() {
    let w = World::start();
    for exclude in [CANARY, "mx2.scope.example", "127.0.0.192/26"] {
        let out = w.scan(&["mx:scope.example", "--exclude", exclude]);
        let records = results(&out);
        assert_eq!(records.len(), 1, "--exclude {exclude}: {records:?}");
        assert_eq!(records[0]["name"], "mx1.scope.example");
        assert_eq!(records[0]["verdict"], "open-relay");
        let s = summary(&out);
        assert_eq!(
            s["excluded_after_resolution"], 1,
            "--exclude {exclude}: {s}"
        );
        assert_eq!(s["total"], 1);
        assert!(!w.canary.was_dialled(), "--exclude {exclude}: dialled");
    }

    // Asked for, the excluded address has its record.
    let out = w.scan(&["mx:scope.example", "--exclude", CANARY, "--show-excluded"]);
    let records = results(&out);
    assert_eq!(records.len(), 2, "{records:?}");
    let excluded = records.iter().find(|r| r["ip"] == CANARY).unwrap();
    assert_eq!(excluded["verdict"], "excluded");
    assert_eq!(excluded["name"], "mx2.scope.example");
    assert_eq!(
        excluded["error"],
        format!("excluded: {CANARY} (from mx2.scope.example) is in --exclude")
    );
    assert_eq!(summary(&out)["excluded_after_resolution"], 1);
    assert!(!w.canary.was_dialled());
    let meta = &lines(&out)[0];
    assert_eq!(meta["type"], "meta");
    assert_eq!(
        meta["scope"],
        common::TEST_SCOPE,
        "the run's scope is on record"
    );

    // The summary for people says so too.
    let out = relayscan()
        .args(["scan", "mx:scope.example", "--exclude", CANARY])
        .args(["--resolver", &w.dns.resolver_arg()])
        .args(["-p", &w.lab.port().to_string(), "-o"])
        .arg(tempfile::tempdir().unwrap().path().join("out.csv"))
        .args(FAST)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("1 address(es) excluded after resolution (not dialled)"),
        "{table}"
    );
    assert!(!w.canary.was_dialled());
}

#[test]
fn a_name_in_reserved_space_is_excluded_after_resolution() {
    let w = World::start();
    let out = w.scan(&["zero.scope.example", "--show-excluded"]);
    let records = results(&out);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["verdict"], "excluded");
    let error = records[0]["error"].as_str().unwrap();
    assert!(
        error.contains("0.0.0.0 (from zero.scope.example) is reserved space"),
        "{error}"
    );
    assert!(error.contains("--include-reserved"), "{error}");
}

#[test]
fn a_resolver_outside_the_scope_is_refused_before_any_query() {
    let w = World::start();
    // A UDP canary where the resolver would be asked.
    let ns = UdpSocket::bind("127.0.0.54:0").unwrap();
    ns.set_nonblocking(true).unwrap();
    let resolver = ns.local_addr().unwrap().to_string();
    let out = relayscan()
        .args(["scan", "inside.scope.example", "--resolver", &resolver])
        .args(["--scope", "127.0.0.1/32"])
        .args(["-p", &w.lab.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--resolver 127.0.0.54 is outside --scope 127.0.0.1/32"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let mut buf = [0u8; 512];
    assert!(
        matches!(ns.recv_from(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the out-of-scope resolver was asked"
    );
    // `check` refuses it the same way, and so does a scan of addresses only.
    for args in [
        vec!["check", "inside.scope.example"],
        vec!["scan", "127.0.0.1"],
    ] {
        let out = relayscan()
            .args(&args)
            .args(["--resolver", &resolver, "--scope", "127.0.0.1/32"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("outside --scope"));
    }
    assert!(ns.recv_from(&mut buf).is_err());
    assert!(w.dns.questions().is_empty(), "{:?}", w.dns.questions());
}

#[test]
fn a_literal_target_outside_the_scope_is_refused_before_anything() {
    let canary = Canary::on(0);
    let target = format!("{CANARY}:{}", canary.port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    // By flag, and by the environment variable alone.
    for (args, env) in [
        (vec!["scan", &target, "--scope", "127.0.0.1/32"], None),
        (vec!["scan", "127.0.0.128/25"], Some("127.0.0.1/32")),
        (vec!["check", &target], Some("127.0.0.0/25,::1")),
    ] {
        let mut cmd = relayscan();
        cmd.args(&args);
        if args[0] == "scan" {
            cmd.args([
                "-o",
                file.to_str().unwrap(),
                "-p",
                &canary.port().to_string(),
            ]);
        }
        if let Some(scope) = env {
            cmd.env("RELAYSCAN_SCOPE", scope);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("is outside --scope"), "{args:?}: {stderr}");
        assert!(stderr.contains("add it to --scope"), "{args:?}: {stderr}");
        assert!(!file.exists(), "{args:?} created the output file");
        assert!(!canary.was_dialled(), "{args:?} dialled the target");
    }
    // The canary does see a scan that is allowed to reach it.
    relayscan()
        .args(["scan", &target, "--scope", CANARY, "-q"])
        .args(["--connect-timeout", "1s", "--read-timeout", "500ms"])
        .output()
        .unwrap();
    assert!(canary.was_dialled(), "the canary misses connections");
}

#[test]
fn numeric_forms_are_refused_and_never_asked_about() {
    let w = World::start();
    for target in [
        "0x7f.0.0.1",
        "0x7f000001",
        "127.1",
        "0177.0.0.1",
        "2130706433",
    ] {
        let out = w.scan(&[target]);
        assert_eq!(out.status.code(), Some(2), "{target}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("not an address in dotted-quad form: write 127.0.0.1"),
            "{target}: {stderr}"
        );
    }
    assert!(w.dns.questions().is_empty(), "{:?}", w.dns.questions());
}

#[test]
fn errors_that_name_the_real_cause() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing yet\n\n").unwrap();
    for (args, want, not) in [
        (
            vec!["scan", "-i", empty.to_str().unwrap()],
            "holds no targets",
            "no targets given",
        ),
        (vec!["scan", "mx:"], "needs a mail domain", "port \"\""),
        (
            vec!["scan", "127.0.0.1", "--exclude", "127.0.0.1"],
            "--exclude removed every target",
            "reserved",
        ),
        (
            vec!["scan", "224.0.0.1", "--exclude", "127.0.0.1"],
            "reserved space",
            "--exclude removed",
        ),
        (
            vec!["scan", "127.0.0.1", "--scope", ""],
            "is empty",
            "Usage",
        ),
        (
            vec!["scan", "127.0.0.1", "--scope", "localhost"],
            "not names",
            "Usage",
        ),
    ] {
        let out = relayscan().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains(not), "{args:?}: {stderr}");
    }
}

#[test]
fn without_a_scope_nothing_is_restricted() {
    let lab = TestLab::start(&["postfix-closed"]);
    let out = relayscan()
        .env_remove("RELAYSCAN_SCOPE")
        .args(["check", &lab.addr("postfix-closed")])
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The system resolver is outside a loopback scope on most machines. To
/// check that it is refused without any risk of asking it, the binary runs
/// in a network namespace of its own (`unshare -n`, root only), where
/// nothing can leave; elsewhere the test says so and skips.
#[test]
fn the_system_resolver_must_be_in_scope_too() {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let Some(system) = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .find(|ip| !ip.is_loopback())
    else {
        eprintln!("skipped: no resolver outside loopback in /etc/resolv.conf");
        return;
    };
    let isolated = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !isolated {
        eprintln!("skipped: cannot make a network namespace (unshare -n needs root)");
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin("relayscan");
    for args in [
        vec!["scan", "mail.scope.example"],
        vec!["scan", "mx:scope.example"],
        vec!["scan", "127.0.0.1", "--ptr", "--dnsbl", "bl.scope.example"],
        vec!["check", "scope.example"],
    ] {
        let out = std::process::Command::new("unshare")
            .arg("-n")
            .arg(&bin)
            .args(&args)
            .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("the system resolver {system} is outside --scope")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("pass --resolver"), "{stderr}");
    }
    // Addresses alone need no DNS: no resolver is judged.
    let out = std::process::Command::new("unshare")
        .arg("-n")
        .arg(&bin)
        .args(["scan", "127.0.0.1", "--dry-run"])
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
