//! The price of proof: a scan of the bench's lab (half open relays, half
//! closed Postfix) without confirmation, then the same scan with
//! `--confirm … --catch …`, where every open relay hands its canary to
//! relayscan's own catcher. Prints a table: hosts/s, peak RSS, relays and
//! how many of them a delivered canary proved. Loopback only.
//!
//!     cargo build --release && cargo run --release --example proof_bench
//!
//! Knobs: PROOF_BENCH_NET (default 127.1.0.0/20), PROOF_BENCH_CONCURRENCY (500),
//! PROOF_BENCH_WAIT (`--catch-wait`, 30s); for finding where memory goes:
//! PROOF_BENCH_NO_FORWARD (the relays keep the canaries), PROOF_BENCH_CONFIRM_ONLY
//! (`--confirm` without a catcher), PROOF_BENCH_SHOW (print one delivered record).

#[path = "support/mod.rs"]
mod support;

use relayscan::lab::WideLab;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::relayscan_bin;

fn main() {
    let net = std::env::var("PROOF_BENCH_NET").unwrap_or_else(|_| "127.1.0.0/20".into());
    let concurrency = std::env::var("PROOF_BENCH_CONCURRENCY").unwrap_or_else(|_| "500".into());
    assert!(
        net.starts_with("127."),
        "benchmarks only ever target loopback, not {net}"
    );
    let catch: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.3:0").expect("a free port");
        l.local_addr().expect("addr")
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Half open relays (even last octet), half closed Postfix.
    let pick = support::half_open();
    let lab = rt
        .block_on(WideLab::start_forwarding(
            0,
            Duration::ZERO,
            pick,
            // PROOF_BENCH_NO_FORWARD: the relays keep the canaries (every
            // host waits its whole --catch-wait).
            std::env::var_os("PROOF_BENCH_NO_FORWARD")
                .is_none()
                .then_some(catch),
        ))
        .expect("lab");
    let port = lab.port.to_string();
    let bin = relayscan_bin();
    let catch_text = catch.to_string();
    let wait = std::env::var("PROOF_BENCH_WAIT").unwrap_or_else(|_| "30s".into());
    let runs: [(&str, Vec<&str>); 2] = [
        ("scan (RCPT only)", vec![]),
        (
            "scan --confirm --catch (one canary per relay, caught)",
            vec![
                "--confirm",
                "canary@proof.example",
                "--catch",
                &catch_text,
                "--catch-wait",
                &wait,
            ],
        ),
    ];
    println!("| run | hosts | time | hosts/s | peak RSS | relays | proven by delivery |");
    println!("|---|---|---|---|---|---|---|");
    for (name, extra) in runs {
        let out = tempfile::NamedTempFile::new().expect("temp");
        let m = support::run(
            Command::new(&bin)
                .env("RELAYSCAN_SCOPE", "127.0.0.0/8,::1")
                .args([
                    "scan",
                    &net,
                    "-p",
                    &port,
                    "-c",
                    &concurrency,
                    "-q",
                    "--force",
                ])
                .args([
                    "--format", "jsonl", "--seed", "1", "--no-ptr", "--dnsbl", "none",
                ])
                .args(["--ehlo", "bench.relayscan.example", "--read-timeout", "10s"])
                .args(if std::env::var_os("PROOF_BENCH_CONFIRM_ONLY").is_some() {
                    &extra[..extra.len().min(2)]
                } else {
                    &extra[..]
                })
                .arg("-o")
                .arg(out.path()),
            false,
        );
        let (t, rss, status) = (m.wall, m.peak_rss_kib, m.status);
        assert_eq!(status.code(), Some(1), "{name}: {status:?}");
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        let summary: serde_json::Value = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .expect("a summary line");
        let hosts = summary["total"].as_u64().unwrap_or(0);
        if std::env::var_os("PROOF_BENCH_SHOW").is_some() {
            if let Some(l) = text.lines().find(|l| l.contains("\"delivered\"")) {
                eprintln!("{l}");
            }
        }
        println!(
            "| {name} | {hosts} | {:.1} s | {:.0} | {:.1} MB | {} | {} |",
            t.as_secs_f64(),
            hosts as f64 / t.as_secs_f64(),
            rss as f64 / 1024.0,
            summary["relays"],
            summary["proven_relays"],
        );
    }
    drop(lab);
}
