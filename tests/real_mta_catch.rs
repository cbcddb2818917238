//! Proof by delivery against real MTAs (issue 12): where does relayscan's
//! canary really go?
//!
//! tests/mta/up.sh starts Postfix, Exim and OpenSMTPD on loopback, among them
//! a backup-MX / primary Postfix pair (postfix-backup takes any local part at
//! lab.test and hands it to postfix-primary, whose percent hack turns
//! `user%foreign@lab.test` into `user@foreign`) and two catch-alls that keep
//! address tricks local (postfix-catchall, opensmtpd-closed). Every instance
//! sends its own catch domain (`<instance>.catch.test`, STATE/catch.tsv) to a
//! catcher port on 127.0.26.3 instead of the sink.
//!
//! - `a_stand_in_catcher_sees_where_each_canary_really_goes` listens on every
//!   catch route with tests/mta/sink.py, runs today's
//!   `relayscan check ADDR --confirm relaytest@<instance>.catch.test` (one
//!   message through the first accepted path) and looks where the message
//!   arrived: at the catch address for each open MTA and for the pair (via
//!   the primary), in the mailbox (never at the catch address) for the
//!   catch-alls, nowhere for the closed ones.
//! - The `contract_*` tests run relayscan's own catcher instead
//!   (`--confirm … --catch ADDR:PORT --catch-wait …`) and check its verdicts:
//!   open MTAs `open-relay`/`delivered`, the pair `possible-relay` without a
//!   catcher and `open-relay`/`delivered` with one, closed MTAs and catch-alls
//!   never `open-relay`, their canary `not-delivered`.
//!
//! Without the MTAs installed these tests print why and pass; with
//! RELAYSCAN_REAL_MTA=1 (.ci/run) they must run. The lab uses fixed
//! addresses, so the tests of this file take turns (LAB_LOCK).

mod common;

use common::mta::{installed_or_skip, mta_script, tsv, up};

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The lab's addresses are fixed: one test of this file at a time.
static LAB_LOCK: Mutex<()> = Mutex::new(());

/// How long a canary may take through the real MTAs (they deliver at once;
/// this covers a loaded machine and one retry after flush.sh).
const ARRIVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Route {
    domain: String,
    addr: String,
    port: u16,
}

impl Route {
    fn listen(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }
    fn canary_address(&self) -> String {
        format!("relaytest@{}", self.domain)
    }
}

#[derive(Debug, Clone)]
struct Instance {
    name: String,
    addr: String,
    port: String,
    policy: String,
    /// The verdict without --confirm (instances.tsv).
    expected: String,
    /// A canary for its catch domain reaches the catcher (instances.tsv).
    catch_delivers: bool,
    route: Route,
}

impl Instance {
    fn target(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }
    /// An address trick that it accepts is unproven by RCPT: a catch-all, or
    /// the backup MX (instances.tsv says possible-relay for those).
    fn unproven(&self) -> bool {
        self.expected == "possible-relay"
    }
}

/// The running lab; stopped (and its state removed) when dropped, then the
/// next test may start its own.
struct Lab {
    state: PathBuf,
    instances: Vec<Instance>,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(mta_script("down.sh"))
            .arg(&self.state)
            .output();
    }
}

impl Lab {
    fn instance(&self, name: &str) -> &Instance {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("{name} missing from instances.tsv"))
    }

    fn flush(&self) {
        let _ = Command::new("bash")
            .arg(mta_script("flush.sh"))
            .arg(&self.state)
            .output();
    }
}

/// Start the MTAs, or explain why not: `None` means skip (never in CI).
fn start(label: &str) -> Option<Lab> {
    let turn = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !installed_or_skip("real_mta_catch") {
        return None;
    }
    // The MTAs drop root, so the state directory must be world-traversable.
    let state = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mta-catch-{label}-{}", std::process::id()));
    let mut lab = Lab {
        state: state.clone(),
        instances: Vec::new(),
        _turn: turn,
    };
    up(&state);
    let routes: BTreeMap<String, Route> = tsv(&state.join("catch.tsv"), 4)
        .into_iter()
        .map(|f| {
            let route = Route {
                domain: f[0].clone(),
                addr: f[1].clone(),
                port: f[2].parse().expect("a port in catch.tsv"),
            };
            (f[3].clone(), route)
        })
        .collect();
    lab.instances = tsv(&state.join("instances.tsv"), 9)
        .into_iter()
        .map(|f| Instance {
            route: routes
                .get(&f[0])
                .unwrap_or_else(|| panic!("{} has no catch route", f[0]))
                .clone(),
            name: f[0].clone(),
            addr: f[1].clone(),
            port: f[2].clone(),
            policy: f[5].clone(),
            expected: f[6].clone(),
            catch_delivers: f[8] == "yes",
        })
        .collect();
    assert!(
        lab.instances.len() >= 12,
        "expected every instance of tests/mta/up.sh"
    );
    Some(lab)
}

/// `relayscan check TARGET --json` with the lab's options: the JSON result.
fn check(target: &str, extra: &[String]) -> Value {
    let out = common::relayscan()
        .args(["check", target, "--json", "--no-ptr", "--dnsbl", "none"])
        .args(["--ehlo", "scanner.relayscan.example"])
        .args(["--read-timeout", "10s", "--host-timeout", "90s"])
        .args(extra)
        .timeout(Duration::from_secs(150))
        .output()
        .expect("relayscan runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().next().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "{target}: no JSON result ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Run `check` on every instance at once (each has its own catch route):
/// the results by instance name.
fn check_all<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    extra: impl Fn(&Instance) -> Vec<String> + Sync,
) -> BTreeMap<String, Value> {
    let extra = &extra;
    std::thread::scope(|s| {
        let running: Vec<_> = instances
            .into_iter()
            .map(|i| {
                (
                    i.name.clone(),
                    s.spawn(move || check(&i.target(), &extra(i))),
                )
            })
            .collect();
        running
            .into_iter()
            .map(|(name, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| panic!("{name}: check panicked"));
                (name, r)
            })
            .collect()
    })
}

fn outcome_of(result: &Value, list: &str, id: &str) -> String {
    result[list]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["id"] == id))
        .and_then(|t| t["outcome"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// Every test's and control's outcome, by id.
fn outcomes(result: &Value) -> BTreeMap<String, String> {
    ["tests", "controls"]
        .iter()
        .flat_map(|list| result[*list].as_array().cloned().unwrap_or_default())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or("?").to_string(),
                t["outcome"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// A message file of tests/mta/sink.py: its header section and data.
struct Stored {
    head: String,
    data: String,
}

impl Stored {
    fn field(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}: ");
        self.head
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// The message's `Received:` fields, unfolded, newest first (RFC 5322
    /// §2.2.3 folding; RFC 5321 §4.4 prepends one per hop).
    fn received(&self) -> Vec<String> {
        let header = self.data.split("\n\n").next().unwrap_or("");
        let mut fields: Vec<String> = Vec::new();
        for line in header.lines() {
            let line = line.trim_end_matches('\r');
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            } else {
                fields.push(line.to_string());
            }
        }
        fields
            .into_iter()
            .filter_map(|f| f.strip_prefix("Received:").map(|r| r.trim().to_string()))
            .collect()
    }
}

/// The stored messages in `dir` that carry `needle`.
fn stored_with(dir: &Path, needle: &str) -> Vec<Stored> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| t.contains(needle))
        .map(|t| {
            let (head, data) = t.split_once("\n\n").unwrap_or((t.as_str(), ""));
            Stored {
                head: head.to_string(),
                data: data.to_string(),
            }
        })
        .collect()
}

fn file_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

/// Wait (flushing the queues) until `dir` holds a message carrying `token`.
fn await_message(lab: &Lab, dir: &Path, token: &str, what: &str) -> Stored {
    let deadline = Instant::now() + ARRIVAL;
    loop {
        if let Some(m) = stored_with(dir, token).pop() {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the canary {token} never reached {}",
            dir.display()
        );
        lab.flush();
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The stand-in catcher: tests/mta/sink.py listening on every catch route,
/// each storing into STATE/catchers/<instance>/. Stopped when dropped.
struct StandIn {
    child: Child,
    dirs: BTreeMap<String, PathBuf>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    fn start(lab: &Lab) -> StandIn {
        let mut cmd = Command::new("python3");
        cmd.arg(mta_script("sink.py"));
        let mut dirs = BTreeMap::new();
        for i in &lab.instances {
            let dir = lab.state.join("catchers").join(&i.name);
            cmd.arg("--listen")
                .arg(format!("{}={}", i.route.listen(), dir.display()));
            dirs.insert(i.name.clone(), dir);
        }
        let log = std::fs::File::create(lab.state.join("catchers.log")).expect("a log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs tests/mta/sink.py");
        let stand_in = StandIn { child, dirs };
        let deadline = Instant::now() + Duration::from_secs(15);
        for i in &lab.instances {
            while !greets(&i.route.listen()) {
                assert!(
                    Instant::now() < deadline,
                    "the stand-in catcher does not answer on {} (see {})",
                    i.route.listen(),
                    lab.state.join("catchers.log").display()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        stand_in
    }

    fn dir(&self, name: &str) -> &Path {
        &self.dirs[name]
    }
}

/// Something on `addr` answers with a 220 greeting.
fn greets(addr: &str) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let _ = BufReader::new(stream.take(512)).read_line(&mut line);
    line.starts_with("220 ")
}

#[test]
fn a_stand_in_catcher_sees_where_each_canary_really_goes() {
    let Some(lab) = start("stand-in") else { return };

    // Without --confirm: what RCPT replies say about the pair and the
    // Postfix catch-all. Their replies are the same, test by test.
    let plain = check_all(
        ["postfix-primary", "postfix-backup", "postfix-catchall"].map(|n| lab.instance(n)),
        |_| Vec::new(),
    );
    let (primary, backup, catchall) = (
        &plain["postfix-primary"],
        &plain["postfix-backup"],
        &plain["postfix-catchall"],
    );
    assert_eq!(
        primary["verdict"], "closed",
        "the primary trusts only its backup: {primary:#}"
    );
    for (name, r) in [("postfix-backup", backup), ("postfix-catchall", catchall)] {
        assert_eq!(outcome_of(r, "tests", "R3"), "accepted", "{name}: {r:#}");
        assert_eq!(
            outcome_of(r, "controls", "C3-domain"),
            "accepted",
            "{name}: {r:#}"
        );
        // An accepted trick that C3 cannot tell from a local mailbox is
        // unproven, not closed.
        assert_eq!(r["verdict"], "possible-relay", "{name}: {r:#}");
        assert_eq!(r["confidence"], "unproven", "{name}: {r:#}");
    }
    assert_eq!(
        outcomes(backup),
        outcomes(catchall),
        "the backup MX and the catch-all answer RCPT alike"
    );

    // With --confirm: one canary per host, to its own catch domain.
    let catcher = StandIn::start(&lab);
    let results = check_all(&lab.instances, |i| {
        vec!["--confirm".into(), i.route.canary_address()]
    });
    let mut summary = Vec::new();
    for i in &lab.instances {
        let r = &results[&i.name];
        let c = &r["confirmation"];
        let token = c["token"].as_str().map(str::to_string);
        summary.push(format!(
            "{}: {} {}, canary {}",
            i.name,
            r["verdict"],
            r["confidence"],
            token.as_deref().unwrap_or("not sent")
        ));
        if i.catch_delivers {
            let token = token.unwrap_or_else(|| panic!("{}: no canary sent: {r:#}", i.name));
            assert_eq!(c["accepted"], true, "{}: {c:#}", i.name);
            let m = await_message(&lab, catcher.dir(&i.name), &token, &i.name);
            assert_eq!(
                m.field("rcpt-to"),
                vec![format!("<{}>", i.route.canary_address())],
                "{}: the canary reached the catcher for its own address",
                i.name
            );
            let hops = m.received();
            let host = r["hostname"].as_str().unwrap_or("?");
            assert!(
                hops.iter().any(|h| h.contains(&format!("by {host}"))),
                "{}: no Received: line by {host}: {hops:#?}",
                i.name
            );
            if i.name == "postfix-backup" {
                // Relayed by the backup to the primary, which rewrote
                // relaytest%DOMAIN@lab.test and delivered it to the catcher.
                assert_eq!(m.field("helo"), vec!["mx1.lab.test"], "{hops:#?}");
                assert!(
                    hops[0].starts_with("from mx2.lab.test") && hops[0].contains("by mx1.lab.test"),
                    "newest hop: backup -> primary: {hops:#?}"
                );
                assert!(
                    hops[1].starts_with("from scanner.relayscan.example")
                        && hops[1].contains("by mx2.lab.test"),
                    "first hop: scanner -> backup: {hops:#?}"
                );
                assert_eq!(c["test"], "R3", "{c:#}");
            }
        } else if let Some(token) = token {
            // A canary through an accepted trick at a catch-all: it stays
            // local, in the mailbox.
            assert!(
                i.unproven(),
                "{}: a canary went through a closed server: {c:#}",
                i.name
            );
            await_message(&lab, &lab.state.join("mailbox"), &token, &i.name);
        } else {
            assert!(
                !i.unproven(),
                "{}: the catch-all got no canary: {r:#}",
                i.name
            );
        }
    }
    eprintln!("\n{}\n", summary.join("\n"));
    // Both catch-alls got a canary (the test above is not vacuous for them).
    for name in ["postfix-catchall", "opensmtpd-closed"] {
        assert!(
            !results[name]["confirmation"]["token"].is_null(),
            "{name}: no canary"
        );
    }

    // Nothing late: after one more queue run, only the relaying instances'
    // catch addresses hold a message, one each.
    lab.flush();
    std::thread::sleep(Duration::from_secs(2));
    for i in &lab.instances {
        let n = file_count(catcher.dir(&i.name));
        let want = usize::from(i.catch_delivers);
        assert_eq!(
            n,
            want,
            "{} ({}): {n} message(s) at its catch address {}",
            i.name,
            i.policy,
            i.route.listen()
        );
    }
}

fn catch_args(i: &Instance, wait: &str) -> Vec<String> {
    [
        "--confirm",
        &i.route.canary_address(),
        "--catch",
        &i.route.listen(),
        "--catch-wait",
        wait,
    ]
    .map(String::from)
    .to_vec()
}

/// A delivered canary's record: `open-relay`, `delivered`, and the hop
/// chain through `hosts`.
fn assert_delivered(name: &str, r: &Value, hosts: &[&str]) {
    assert_eq!(r["verdict"], "open-relay", "{name}: {r:#}");
    assert_eq!(r["confidence"], "delivered", "{name}: {r:#}");
    let d = &r["confirmation"]["delivery"];
    assert_eq!(d["status"], "delivered", "{name}: {d:#}");
    assert!(d["at"].is_string(), "{name}: {d:#}");
    assert!(
        d["peer"].as_str().is_some_and(|p| p.starts_with("127.")),
        "{name}: {d:#}"
    );
    let hops: Vec<&str> = d["hops"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for host in hosts {
        assert!(
            hops.iter().any(|h| h.contains(host)),
            "{name}: no hop names {host}: {d:#}"
        );
    }
}

#[test]
fn contract_open_real_mtas_are_open_relays_with_a_delivered_canary() {
    let Some(lab) = start("open") else { return };
    let open: Vec<&Instance> = lab
        .instances
        .iter()
        .filter(|i| i.expected == "open-relay")
        .collect();
    assert_eq!(open.len(), 3, "Postfix, Exim and OpenSMTPD");
    let results = check_all(open.iter().copied(), |i| catch_args(i, "60s"));
    for i in open {
        let r = &results[&i.name];
        let host = r["hostname"].as_str().unwrap_or("?").to_string();
        assert_delivered(&i.name, r, &[&host]);
    }
}

#[test]
fn contract_the_backup_mx_pair_is_possible_then_delivered() {
    let Some(lab) = start("pair") else { return };
    let backup = lab.instance("postfix-backup");
    let without = check(&backup.target(), &[]);
    assert_eq!(without["verdict"], "possible-relay", "{without:#}");
    assert_eq!(without["confidence"], "unproven", "{without:#}");
    assert!(
        without["notes"].to_string().contains("--catch"),
        "the note says what would settle it: {without:#}"
    );

    let with = check(&backup.target(), &catch_args(backup, "60s"));
    assert_delivered("postfix-backup", &with, &["mx2.lab.test", "mx1.lab.test"]);
    assert_eq!(with["deciding_test"], "R3", "{with:#}");

    let primary = lab.instance("postfix-primary");
    assert_eq!(check(&primary.target(), &[])["verdict"], "closed");
}

#[test]
fn contract_closed_mtas_and_catch_alls_deliver_nothing() {
    let Some(lab) = start("closed") else { return };
    let others: Vec<&Instance> = lab.instances.iter().filter(|i| !i.catch_delivers).collect();
    let results = check_all(others.iter().copied(), |i| catch_args(i, "15s"));
    for i in others {
        let r = &results[&i.name];
        assert_ne!(r["verdict"], "open-relay", "{}: {r:#}", i.name);
        assert_ne!(r["confidence"], "delivered", "{}: {r:#}", i.name);
        let c = &r["confirmation"];
        if i.unproven() {
            // The catch-alls took the canary through the trick, and kept it.
            assert_eq!(c["accepted"], true, "{}: {c:#}", i.name);
            assert_eq!(
                c["delivery"]["status"], "not-delivered",
                "{}: {c:#}",
                i.name
            );
            let token = c["token"].as_str().expect("a token");
            await_message(&lab, &lab.state.join("mailbox"), token, &i.name);
        } else if !c["delivery"].is_null() {
            // A closed server accepted no path: if a wait was recorded at
            // all, nothing arrived.
            assert_eq!(
                c["delivery"]["status"], "not-delivered",
                "{}: {c:#}",
                i.name
            );
        }
    }
}
