//! The benchmark: prints a table of relayscan's speed, memory and round trips
//! (and nmap's, when installed) against the lab on loopback. Nothing here
//! leaves the machine: every target is in 127.0.0.0/8.
//!
//!     cargo build --release && cargo run --release --example bench
//!
//! Knobs: BENCH_NET (default 127.1.0.0/16), BENCH_NMAP_NET (127.1.0.0/20),
//! BENCH_CONCURRENCY (1000), BENCH_LATENCY_MS (50), BENCH_BIN (the scanner
//! to measure; default target/release/relayscan).

#[path = "support/mod.rs"]
mod support;

use relayscan::lab::{profile, Profile, WideLab};
use std::process::Command;
use std::time::Duration;

/// Run a command to its end: wall time, the child's own peak RSS (KiB), its
/// exit status and standard output; its CPU time goes to [`LAST_CPU`].
fn measure(cmd: &mut Command) -> (Duration, u64, std::process::ExitStatus, String) {
    let m = support::run(cmd, true);
    LAST_CPU.with(|c| c.set(m.cpu_secs));
    (m.wall, m.peak_rss_kib, m.status, m.stdout)
}

thread_local! {
    /// CPU seconds (user + system) of the last measured child.
    static LAST_CPU: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

use support::relayscan_bin;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn hosts_in(net: &str) -> u64 {
    let prefix: u32 = net
        .rsplit('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a /prefix");
    1u64 << (32 - prefix)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--inside-namespace") {
        return unreachable_inside();
    }
    let net = env_or("BENCH_NET", "127.1.0.0/16");
    let nmap_net = env_or("BENCH_NMAP_NET", "127.1.0.0/20");
    let concurrency = env_or("BENCH_CONCURRENCY", "1000");
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", "50")
        .parse()
        .expect("BENCH_LATENCY_MS");
    for n in [&net, &nmap_net] {
        assert!(
            n.starts_with("127."),
            "benchmarks only ever target loopback, not {n}"
        );
    }
    let bin = relayscan_bin();
    let mut rows: Vec<[String; 5]> = Vec::new();
    // 0. Planning a /8 (first: the child's peak RSS counts the image it was
    // spawned from, and this process is smallest now): constant memory, first target at once (nothing probed).
    let (t, rss, _, stdout) =
        measure(Command::new(&bin).args(["scan", "127.0.0.0/8", "--dry-run"]));
    rows.push([
        "relayscan scan 127.0.0.0/8 --dry-run (plan + first 10 targets)".into(),
        stdout.split_whitespace().next().unwrap_or("?").to_string(),
        format!("{:.0} ms", t.as_secs_f64() * 1000.0),
        "whole process, start to exit".into(),
        format!("{:.1} MB peak RSS", rss as f64 / 1024.0),
    ]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Half open relays (even last octet), half closed Postfix.
    let pick = support::half_open();
    let lab = rt
        .block_on(WideLab::start(0, Duration::ZERO, pick.clone()))
        .expect("lab");
    let port = lab.port.to_string();

    // 1. The full default suite over the whole network.
    let out = tempfile::NamedTempFile::new().expect("temp");
    let (t, rss, status, _) = measure(
        Command::new(&bin)
            .args([
                "scan",
                &net,
                "-p",
                &port,
                "-c",
                &concurrency,
                "-q",
                "--force",
                "--format",
                "csv",
                "--seed",
                "1",
            ])
            .args([
                "--ehlo",
                "bench.relayscan.example",
                "--read-timeout",
                "10s",
                "-o",
            ])
            .arg(out.path()),
    );
    let csv = std::fs::read_to_string(out.path()).unwrap_or_default();
    let hosts = hosts_in(&net);
    let rows_written = csv.lines().count().saturating_sub(1) as u64;
    let relays = csv.lines().filter(|l| l.contains(",open-relay,")).count() as u64;
    let closed_n = csv.lines().filter(|l| l.contains(",closed,")).count() as u64;
    assert!(status.code() == Some(1), "scan failed: {status:?}");
    assert_eq!(rows_written, hosts, "one row per host");
    assert_eq!(
        relays + closed_n,
        hosts,
        "every host got its verdict (open {relays}, closed {closed_n})"
    );
    let rate = hosts as f64 / t.as_secs_f64();
    rows.push([
        format!("relayscan scan {net}, full default suite, -c {concurrency}"),
        format!("{hosts}"),
        format!("{:.1} s", t.as_secs_f64()),
        format!("{rate:.0} hosts/s"),
        format!(
            "{:.1} MB peak RSS; scanner CPU {:.1} s of {:.1} s wall (the simulated servers share the 2 cores)",
            rss as f64 / 1024.0,
            LAST_CPU.with(|c| c.get()),
            t.as_secs_f64()
        ),
    ]);

    // 2. nmap's smtp-open-relay over a part of the same network.
    if Command::new("nmap").arg("--version").output().is_ok() {
        let (t, rss, _, _) = measure(Command::new("nmap").args([
            "-Pn",
            "-n",
            "-p",
            &port,
            "--script",
            "+smtp-open-relay",
            "--script-args",
            "smtp-open-relay.domain=example.net",
            "-oN",
            "/dev/null",
            &nmap_net,
        ]));
        let n = hosts_in(&nmap_net);
        let nmap_rate = n as f64 / t.as_secs_f64();
        rows.push([
            format!("nmap --script smtp-open-relay {nmap_net}"),
            format!("{n}"),
            format!("{:.1} s", t.as_secs_f64()),
            format!(
                "{nmap_rate:.0} hosts/s (relayscan ×{:.1})",
                rate / nmap_rate
            ),
            format!("{:.1} MB peak RSS", rss as f64 / 1024.0),
        ]);
    } else {
        eprintln!("nmap not installed: skipping the comparison (apt-get install nmap)");
    }
    drop(lab);

    // 3. Round trips: every reply burst waits `latency`.
    let slow = rt
        .block_on(WideLab::start(0, Duration::from_millis(latency_ms), pick))
        .expect("lab");
    let slow_port = slow.port.to_string();
    for (what, target, args) in [
        (
            "closed host, full suite (scan)",
            "127.1.0.1",
            vec!["scan", "--format", "jsonl", "-q"],
        ),
        (
            "closed host, every test (check)",
            "127.1.0.1",
            vec!["check", "--json"],
        ),
        (
            "open relay, default suite (scan)",
            "127.1.0.2",
            vec!["scan", "--format", "jsonl", "-q"],
        ),
    ] {
        let mut cmd = Command::new(&bin);
        cmd.args(&args)
            .arg(format!("{target}:{slow_port}"))
            .args(["--ehlo", "bench.relayscan.example"]);
        let (_, _, _, stdout) = measure(&mut cmd);
        let result = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "result")
            .expect("a result");
        let ms = result["duration_ms"].as_u64().unwrap_or(0);
        let trips = ms as f64 / latency_ms as f64;
        rows.push([
            format!("round trips: {what}"),
            "1".into(),
            format!("{:.2} s", ms as f64 / 1000.0),
            format!("{trips:.1} round trips of {latency_ms} ms"),
            format!(
                "{} connection(s), verdict {}",
                result["connections"],
                result["verdict"].as_str().unwrap_or("?")
            ),
        ]);
    }
    drop(slow);

    // 5. Unreachable space, in a network namespace of our own.
    match unreachable_outside() {
        Ok(row) => rows.push(row),
        Err(why) => eprintln!("skipping the unreachable-space benchmark: {why}"),
    }

    println!("\n| what | hosts | time | rate / count | memory / notes |\n|---|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
}

/// The network the unreachable-space benchmark scans, and the part of it
/// that answers; SYNs to the rest are dropped.
const DEAD_NET: &str = "127.2.0.0/18";
const LIVE_NET: &str = "127.2.0.0/24";
const DEAD_CONNECT_TIMEOUT_S: u64 = 1;

/// Re-run this benchmark in a new network namespace (`unshare --net`: only
/// its own loopback exists there) where nftables drops SYNs to most of
/// DEAD_NET, and read back its table row.
fn unreachable_outside() -> Result<[String; 5], String> {
    if Command::new("nft").arg("--version").output().is_err() {
        return Err("nft not installed (apt-get install nftables)".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(exe)
        .arg("--inside-namespace")
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("ROW\t"))
        .ok_or_else(|| {
            format!(
                "no result from the namespace: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let f: Vec<&str> = line.split('\t').skip(1).collect();
    if f.len() != 5 {
        return Err(format!("bad row {line:?}"));
    }
    Ok([
        f[0].into(),
        f[1].into(),
        f[2].into(),
        f[3].into(),
        f[4].into(),
    ])
}

fn run_ok(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?} failed");
}

/// Inside the namespace: loopback up, SYNs to the dead part dropped, the lab
/// on the live part, one scan of the whole network.
fn unreachable_inside() {
    run_ok("ip", &["link", "set", "lo", "up"]);
    run_ok("nft", &["add", "table", "inet", "bench"]);
    run_ok(
        "nft",
        &["add chain inet bench output { type filter hook output priority 0 ; }"],
    );
    let rule = format!(
        "add rule inet bench output ip daddr {DEAD_NET} ip daddr != {LIVE_NET} tcp flags syn drop"
    );
    run_ok("nft", &[rule.as_str()]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let closed: &'static Profile = profile::find("postfix-closed").expect("profile");
    let lab = rt
        .block_on(WideLab::start(0, Duration::ZERO, move |_| Some(closed)))
        .expect("lab");
    let concurrency: u64 = env_or("BENCH_CONCURRENCY", "1000")
        .parse()
        .expect("BENCH_CONCURRENCY");
    let (t, rss, _, stdout) = measure(Command::new(relayscan_bin()).args([
        "scan",
        DEAD_NET,
        "-p",
        &lab.port.to_string(),
        "-c",
        &concurrency.to_string(),
        "-q",
        "--connect-timeout",
        &format!("{DEAD_CONNECT_TIMEOUT_S}s"),
        "--ehlo",
        "bench.relayscan.example",
    ]));
    let timeouts = stdout.lines().filter(|l| l.contains(",timeout,")).count() as u64;
    let closed_n = stdout.lines().filter(|l| l.contains(",closed,")).count() as u64;
    let hosts = hosts_in(DEAD_NET);
    let bound = (timeouts as f64 / concurrency as f64).ceil() * DEAD_CONNECT_TIMEOUT_S as f64;
    println!(
        "ROW\tunreachable space: scan {DEAD_NET}, SYNs dropped except {LIVE_NET}, -c {concurrency}, --connect-timeout {DEAD_CONNECT_TIMEOUT_S}s\t{hosts}\t{:.1} s\t{timeouts} timeouts + {closed_n} closed; bound ⌈dead/c⌉×timeout = {bound:.0} s\t{:.1} MB peak RSS",
        t.as_secs_f64(),
        rss as f64 / 1024.0
    );
}
