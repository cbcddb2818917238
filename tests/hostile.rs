//! The hostile lab servers: every one gets its expected verdict, within the
//! deadline, and nothing it sends reaches the output raw — CSV cells stay
//! inert, JSON Lines stay valid JSON, the terminal sees no escape bytes.

mod common;

use common::{probe_profile, relayscan, TestLab, QUICK};
use relayscan::lab::hostile::{BAD_CODES, FORMULAS};
use relayscan::lab::{Lab, DEFAULT_BASE, PROFILES};
use relayscan::output::CSV_HEADER;
use relayscan::relay::{classify, probe, probe_until, ProbeConfig, Status, Target};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const READ_TIMEOUT: Duration = Duration::from_secs(1);
const HOST_TIMEOUT: Duration = Duration::from_secs(3);

fn config() -> ProbeConfig {
    let mut cfg = common::quick_config(READ_TIMEOUT, HOST_TIMEOUT);
    cfg.connect_timeout = Duration::from_secs(1);
    cfg
}

fn hostile_count() -> usize {
    PROFILES.iter().filter(|p| p.is_hostile()).count()
}

/// Text that a terminal would act on: C0 controls other than newline, DEL,
/// C1 controls (U+0080–U+009F, e.g. the 8-bit CSI), bidi overrides.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
                // Line/paragraph separators, zero-width space, Arabic letter mark.
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}' | '\u{061C}')
        })
        .collect()
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text =
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    let raw = raw_controls(&text);
    assert!(
        raw.is_empty(),
        "{what}: raw control characters {:?} in:\n{}",
        &raw[..raw.len().min(10)],
        text.chars().take(2000).collect::<String>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_server_gets_its_verdict_within_the_deadline() {
    let hostile: Vec<_> = PROFILES.iter().filter(|p| p.is_hostile()).collect();
    assert!(hostile.len() >= 14);
    let lab = Lab::start(DEFAULT_BASE, 0, &hostile)
        .await
        .expect("lab starts");
    let cfg = config();
    let mut handles = Vec::new();
    for (addr, profile) in lab.servers.clone() {
        let cfg = cfg.clone();
        handles.push(tokio::spawn(async move {
            let started = Instant::now();
            let facts = probe(&Target::new(addr), &cfg).await;
            (profile, classify(&facts), facts, started.elapsed())
        }));
    }
    let mut wrong = Vec::new();
    for h in handles {
        let (profile, verdict, facts, took) = h.await.unwrap();
        if verdict.verdict != profile.expected {
            wrong.push(format!(
                "{}: expected {}, got {} ({}) error={:?} {:#?}",
                profile.name,
                profile.expected,
                verdict.verdict,
                verdict.reason,
                facts.error,
                facts.tests
            ));
        }
        // The probe keeps its own deadline (the engine's hard stop is only a
        // backup): allow scheduling slack on a loaded machine, nothing more.
        assert!(
            took <= HOST_TIMEOUT + Duration::from_secs(2),
            "{} took {took:?}",
            profile.name
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_evidence_says_what_each_trick_did() {
    let names = [
        "pipelining-liar",
        "shutdown-421",
        "endless-reply",
        "huge-ehlo",
        "binary-junk",
    ];
    let profiles: Vec<_> = names
        .iter()
        .map(|n| relayscan::lab::profile::find(n).unwrap())
        .collect();
    let lab = Lab::start(DEFAULT_BASE, 0, &profiles).await.unwrap();
    let addr = |name: &str| {
        lab.servers
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(a, _)| *a)
            .unwrap()
    };
    let cfg = config();
    let targets: HashMap<&str, Target> = names.iter().map(|n| (*n, Target::new(addr(n)))).collect();
    let run = |name: &str| probe(&targets[name], &cfg);

    // Without the lock-step check the liar's extra "250" pairs with RCPT: a
    // false open relay. With it, the session is out of step: inconclusive.
    let liar = run("pipelining-liar").await;
    let v = classify(&liar);
    assert_eq!(v.verdict, Status::Inconclusive);
    assert!(v.reason.contains("out of step"), "{}", v.reason);
    assert!(liar.tests.iter().all(|t| t.rcpt_reply.is_none()));

    // The 421 came unasked, before RCPT: it is the RCPT's answer, a session end.
    let bye = run("shutdown-421").await;
    let s1 = &bye.tests[0];
    assert_eq!(s1.rcpt_reply.as_ref().map(|r| r.code), Some(421));
    assert_eq!(classify(&bye).verdict, Status::TempFail);
    assert!(bye.connections <= ProbeConfig::default().max_connections);

    let endless = run("endless-reply").await;
    assert!(
        endless
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("more than 512 lines")),
        "{:?}",
        endless.error
    );

    let huge = run("huge-ehlo").await;
    let caps = &huge.greeting.capabilities;
    assert_eq!(caps.keywords.len(), 64, "extensions kept are capped");
    assert_eq!(caps.auth.len(), 32, "SASL mechanisms kept are capped");
    assert_eq!(huge.greeting.hello.as_ref().unwrap().lines.len(), 492);
    assert_eq!(classify(&huge).verdict, Status::Closed);

    let junk = run("binary-junk").await;
    let banner = junk.greeting.banner.as_ref().unwrap().lines[0].clone();
    assert!(
        banner.contains('\0') && banner.contains("\\xFF\\xFE"),
        "{banner:?}"
    );
    assert_eq!(junk.host.as_deref(), Some("binary-junk.lab.example"));
}

#[tokio::test]
async fn bad_codes_each_end_a_connection_and_the_probe_reconnects_politely() {
    let facts = probe_profile("bad-codes", &config()).await;
    let max = ProbeConfig::default().max_connections;
    assert_eq!(
        facts.connections, max,
        "one connection per bad reply, up to the limit"
    );
    // C2 goes out with the first group, so it meets the first bad code.
    let errors: Vec<String> = facts
        .controls
        .iter()
        .chain(&facts.tests)
        .filter_map(|t| t.error.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(errors.len(), max as usize);
    for (i, e) in errors.iter().enumerate() {
        assert!(e.starts_with("protocol-error"), "{e}");
        // The server's bad code, in turn.
        let code = BAD_CODES[i % BAD_CODES.len()].split(' ').next().unwrap();
        assert!(e.contains(code), "{e} should name {code}");
    }
    assert_eq!(classify(&facts).verdict, Status::Inconclusive);
}

#[tokio::test]
async fn an_interrupted_probe_keeps_what_it_found() {
    let profile = relayscan::lab::profile::find("slowloris").unwrap();
    let lab = Lab::start(DEFAULT_BASE, 0, &[profile]).await.unwrap();
    let mut cfg = config();
    cfg.host_timeout = Duration::from_secs(60);
    let started = Instant::now();
    let (facts, cut) = probe_until(
        &Target::new(lab.servers[0].0),
        &cfg,
        tokio::time::sleep(Duration::from_millis(1500)),
    )
    .await;
    assert_eq!(cut, Some(()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(facts.connections, 1);
    assert!(facts.source.is_some(), "the facts so far are kept");
}

/// Scan every hostile server at once with the binary; returns stdout and how
/// long it took. Asserts the run ended within its deadline bound.
fn scan_all(lab: &TestLab, format: &str, concurrency: usize) -> (Vec<u8>, Duration) {
    let targets: Vec<String> = lab.servers().iter().map(|(a, _)| a.to_string()).collect();
    let started = Instant::now();
    let out = relayscan()
        .arg("scan")
        .args(&targets)
        .args(["--format", format, "-q", "-c", &concurrency.to_string()])
        .args(QUICK)
        .output()
        .unwrap();
    let took = started.elapsed();
    // One relay among them (hang-up-after-one relays for the null sender):
    // exit 1, though several could not be tested.
    assert_eq!(
        out.status.code(),
        Some(1),
        "one relay among the hostile servers; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean("stderr", &out.stderr);
    // The guarantee: each host ends within its deadline, so N hosts at c at a
    // time end within deadline × ⌈N/c⌉, plus the engine's hard-stop margin
    // (2 s) per round and slack for starting the process on a busy machine.
    let rounds = targets.len().div_ceil(concurrency) as u32;
    let bound = (HOST_TIMEOUT + Duration::from_secs(2)) * rounds + Duration::from_secs(10);
    assert!(took <= bound, "took {took:?}, bound {bound:?}");
    eprintln!(
        "hostile scan ({format}, {} hosts, -c {concurrency}): {took:?} (bound {bound:?})",
        targets.len()
    );
    (out.stdout, took)
}

#[test]
fn a_scan_of_every_hostile_server_ends_in_time_with_valid_inert_csv() {
    let lab = TestLab::hostile();
    let (stdout, _) = scan_all(&lab, "csv", 4);
    assert_clean("CSV", &stdout);
    let mut rdr = csv::Reader::from_reader(stdout.as_slice());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, CSV_HEADER);
    let mut verdicts = HashMap::new();
    let mut rows = 0;
    for row in rdr.records() {
        let row = row.expect("every row is valid CSV");
        assert_eq!(row.len(), CSV_HEADER.len());
        rows += 1;
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula-like cell {cell:?}"
            );
        }
        verdicts.insert(format!("{}:{}", &row[0], &row[1]), row[3].to_string());
    }
    assert_eq!(rows, hostile_count());
    for (addr, profile) in lab.servers() {
        assert_eq!(
            verdicts[&addr.to_string()],
            profile.expected.as_str(),
            "{}",
            profile.name
        );
    }
}

#[test]
fn a_scan_of_every_hostile_server_ends_in_time_with_valid_jsonl() {
    let lab = TestLab::hostile();
    let (stdout, _) = scan_all(&lab, "jsonl", 4);
    assert_clean("JSONL", &stdout);
    let lines: Vec<serde_json::Value> = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), hostile_count() + 2);
    assert_eq!(lines[0]["type"], "meta");
    let summary = &lines[lines.len() - 1];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], hostile_count());
    assert_eq!(summary["interrupted"], false);
    let by_addr: HashMap<String, &serde_json::Value> = lines[1..lines.len() - 1]
        .iter()
        .map(|r| (format!("{}:{}", r["ip"].as_str().unwrap(), r["port"]), r))
        .collect();
    for (addr, profile) in lab.servers() {
        let r = by_addr[&addr.to_string()];
        assert_eq!(r["verdict"], profile.expected.as_str(), "{}", profile.name);
    }
    // Server text is kept as sent, escaped by JSON: NUL, invalid bytes, ESC.
    let junk = by_addr[&lab.addr("binary-junk")];
    let banner = junk["banner"].as_str().unwrap();
    assert!(
        banner.contains('\0') && banner.contains("\\xFF"),
        "{banner:?}"
    );
    let esc = by_addr[&lab.addr("escape-codes")];
    let banner = esc["banner"].as_str().unwrap();
    assert!(
        banner.contains("\x1b]52;c;") && banner.contains('\u{9b}'),
        "{banner:?}"
    );
    let formula = by_addr[&lab.addr("formula-banner")];
    assert!(FORMULAS.contains(&formula["reply"].as_str().unwrap()));
}

#[test]
fn the_table_and_check_report_show_no_escape_bytes() {
    let lab = TestLab::hostile();
    let (stdout, _) = scan_all(&lab, "table", 14);
    assert_clean("table", &stdout);
    let table = String::from_utf8(stdout).unwrap();
    assert!(
        table.contains("\\x1B[31;1mRED"),
        "escapes are shown, inert: {table}"
    );

    for name in ["escape-codes", "binary-junk", "formula-banner", "huge-ehlo"] {
        let out = relayscan()
            .args(["check", &lab.addr(name)])
            .args(QUICK)
            .output()
            .unwrap();
        assert_clean(&format!("check {name} stdout"), &out.stdout);
        assert_clean(&format!("check {name} stderr"), &out.stderr);
        let report = String::from_utf8(out.stdout).unwrap();
        assert!(report.contains("verdict"), "{report}");
        if name == "escape-codes" {
            assert_eq!(out.status.code(), Some(0));
            assert!(report.contains("CLOSED"));
            assert!(report.contains("\\x1B]52;c;"), "{report}");
            assert!(
                report.contains("\\x9B6n") && report.contains("\\u{202E}"),
                "{report}"
            );
        }
    }
}

#[test]
fn every_formula_prefix_is_made_inert() {
    let lab = TestLab::start(&["formula-banner"]);
    // The server rotates its formula per connection; one connection per scan.
    for (i, formula) in FORMULAS.iter().enumerate() {
        let out = relayscan()
            .args(["scan", &lab.addr("formula-banner"), "-q"])
            .args(QUICK)
            .output()
            .unwrap();
        let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
        let row = rdr.records().next().unwrap().unwrap();
        let (verdict, reply) = (&row[3], &row[6]);
        assert_eq!(verdict, "not-smtp", "connection {i}");
        assert!(
            reply.starts_with('\''),
            "connection {i}: {reply:?} is not inert"
        );
        assert_eq!(
            &reply[1..],
            relayscan::output::sanitize::terminal(formula),
            "connection {i}"
        );
    }
}

#[test]
fn demo_with_the_hostile_servers_gets_every_verdict_right() {
    let dir = tempfile::tempdir().unwrap();
    let out = relayscan()
        .current_dir(dir.path())
        .args(["demo", "--hostile"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_clean("demo stdout", &out.stdout);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Every lab profile got its expected verdict"));
    assert!(stdout.contains("slowloris") && stdout.contains("pipelining-liar"));
    let csv = std::fs::read_to_string(dir.path().join("relayscan-demo.csv")).unwrap();
    assert_eq!(csv.lines().count(), PROFILES.len() + 1);
}

/// A server that greets and answers EHLO, then never answers again: the
/// host deadline cuts the probe during the direct tests. The record says so
/// (verdict `timeout`, `deadline_cut`, an error naming the deadline) and keeps
/// what was learnt before (banner, EHLO).
#[tokio::test]
async fn a_host_deadline_cut_leaves_a_trace() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let _ = w.write_all(b"220 stall.lab.example ESMTP\r\n");
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = w.write_all(b"250-stall.lab.example\r\n250 PIPELINING\r\n");
        // Read whatever comes, answer nothing, until the client hangs up.
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {}
    });
    let mut cfg = config();
    cfg.limits.read_timeout = Duration::from_secs(30);
    cfg.host_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let facts = probe(&Target::new(addr), &cfg).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        facts.deadline_cut,
        Some(relayscan::relay::Step::DirectTests),
        "{facts:#?}"
    );
    let verdict = classify(&facts);
    assert_eq!(verdict.verdict, Status::Timeout, "{verdict:?}");
    assert!(
        verdict.reason.contains("direct relay tests"),
        "{}",
        verdict.reason
    );
    let record =
        serde_json::to_value(relayscan::output::Record::new(facts, verdict).json(false)).unwrap();
    assert_eq!(record["deadline_cut"], "direct-tests");
    assert!(
        record["error"].as_str().unwrap().contains("host-deadline"),
        "{}",
        record["error"]
    );
    assert_eq!(record["banner"], "220 stall.lab.example ESMTP");
    assert!(record["notes"][0]
        .as_str()
        .unwrap()
        .contains("host deadline: cut during the direct relay tests"));
}

/// A server that takes 1.9 s to answer QUIT never holds more than three
/// connections from one probe: the connections still saying QUIT count.
/// (Before, detached QUITs kept their sockets open while new connections
/// were made: a peak of 4 in a scan, 5 with `check --auth`.)
#[test]
fn a_slow_quit_never_makes_a_fourth_connection() {
    use relayscan::lab::hostile::{take_connection_peak, SLOW_QUIT};
    let lab = TestLab::start(&["slow-quit"]);
    let (addr, _) = lab.servers()[0];
    let out = relayscan()
        .args(["scan", &addr.to_string(), "--format", "jsonl", "-q"])
        .args(["--host-timeout", "20s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"verdict\":\"closed\""), "{stdout}");
    // The verdict does not wait for a 221, not even for a QUIT that ended
    // a pipelined group (a helper's share of the tricks here).
    let record: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "result")
        .expect("a result record");
    let took = record["duration_ms"].as_u64().expect("duration_ms");
    assert!(
        took < SLOW_QUIT.as_millis() as u64,
        "the probe took {took} ms: it waited for a slow 221"
    );
    // The last QUIT is still being answered: let it end before the next run.
    std::thread::sleep(SLOW_QUIT + Duration::from_millis(500));
    let scan_peak = take_connection_peak(addr);
    assert!(scan_peak >= 2, "the tricks ran on parallel connections");
    assert!(scan_peak <= 3, "peak {scan_peak} connections in a scan");

    let out = relayscan()
        .args(["check", &addr.to_string(), "--json", "--auth", "someone"])
        .args(["--auth-insecure", "--host-timeout", "20s"])
        .env("RELAYSCAN_AUTH_PASSWORD", "not-the-lab-password")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("closed"), "{stdout}");
    let peak = take_connection_peak(addr);
    eprintln!("slow QUIT: peak {scan_peak} connections in a scan, {peak} with check --auth");
    assert!(peak <= 3, "peak {peak} connections with check --auth");
}
