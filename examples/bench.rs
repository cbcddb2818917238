//! The benchmark: prints a table of relayscan's speed, memory and round trips
//! (and nmap's, when installed) against the lab on loopback. Nothing here
//! leaves the machine: every target is in 127.0.0.0/8.
//!
//!     cargo build --release && cargo run --release --example bench
//!
//! Knobs: BENCH_NET (default 127.1.0.0/16), BENCH_NMAP_NET (127.1.0.0/20),
//! BENCH_CONCURRENCY (1000), BENCH_LATENCY_MS (50).

use relayscan::lab::{profile, Profile, WideLab};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Run a command to its end; wall time and peak RSS (KiB) of the child.
// The child is reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> (Duration, u64, std::process::ExitStatus, String) {
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout {
        use std::io::Read;
        let _ = out.read_to_string(&mut stdout);
    }
    let mut status: libc::c_int = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4 failed");
    let elapsed = started.elapsed();
    use std::os::unix::process::ExitStatusExt;
    (
        elapsed,
        usage.ru_maxrss as u64,
        std::process::ExitStatus::from_raw(status),
        stdout,
    )
}

fn relayscan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("relayscan"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "build the scanner first: cargo build --release ({} missing)",
        bin.display()
    );
    bin
}

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let open: &'static Profile = profile::find("open-relay").expect("profile");
    let closed: &'static Profile = profile::find("postfix-closed").expect("profile");
    // Half open relays (even last octet), half closed Postfix.
    let pick = move |ip: IpAddr| match ip {
        IpAddr::V4(v4) if v4.octets()[3] % 2 == 0 => Some(open),
        _ => Some(closed),
    };
    let lab = rt
        .block_on(WideLab::start(0, Duration::ZERO, pick))
        .expect("lab");
    let port = lab.port.to_string();
    let mut rows: Vec<[String; 5]> = Vec::new();

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
        format!("{:.1} MB peak RSS", rss as f64 / 1024.0),
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

    // 4. Planning a /8: constant memory, first target at once (nothing probed).
    let (t, rss, _, stdout) =
        measure(Command::new(&bin).args(["scan", "127.0.0.0/8", "--dry-run"]));
    rows.push([
        "relayscan scan 127.0.0.0/8 --dry-run (plan + first 10 targets)".into(),
        stdout.split_whitespace().next().unwrap_or("?").to_string(),
        format!("{:.0} ms", t.as_secs_f64() * 1000.0),
        "whole process, start to exit".into(),
        format!("{:.1} MB peak RSS", rss as f64 / 1024.0),
    ]);

    println!("\n| what | hosts | time | rate / count | memory / notes |\n|---|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
}
