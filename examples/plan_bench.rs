//! Planning at scale: how long `relayscan scan --dry-run` takes, and how much
//! memory, for a million host names, a million addresses against a million
//! exclusions, and a million names against a million excluded names.
//! Planning only: `--dry-run` opens no socket and asks no DNS server, and
//! every address here is loopback anyway.
//!
//!     cargo build --release && cargo run --release --example plan_bench
//!
//! Knob: PLAN_BENCH_N (default 1000000).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn relayscan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("relayscan"))
        .expect("target dir")
}

/// Write `n` lines made by `line` to `path`.
fn write_list(path: &Path, n: u32, line: impl Fn(u32) -> String) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create list"));
    for i in 0..n {
        writeln!(f, "{}", line(i)).expect("write list");
    }
}

/// A loopback address, spaced `step` apart from 127.0.0.0.
fn loopback(i: u32, step: u32, offset: u32) -> String {
    let a = 0x7f00_0000u32 + i.wrapping_mul(step) % 0x00ff_ffff + offset;
    std::net::Ipv4Addr::from(a).to_string()
}

/// The children waited for so far: peak RSS in KiB (Linux: `ru_maxrss` of
/// the largest one) and CPU seconds, user + system, added up.
fn children_usage() -> (i64, f64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (usage.ru_maxrss, secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn main() {
    let n: u32 = std::env::var("PLAN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("relayscan-plan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let names = dir.join("names.txt");
    let addrs = dir.join("addrs.txt");
    let excl = dir.join("excl.txt");
    write_list(&names, n, |i| format!("h{i}.lab.example"));
    write_list(&addrs, n, |i| loopback(i, 4, 0));
    write_list(&excl, n, |i| loopback(i, 4, 1));
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let runs: [(&str, Vec<String>); 3] = [
        ("names", vec!["-i".into(), path(&names)]),
        (
            "addresses − exclusions",
            vec![
                "-i".into(),
                path(&addrs),
                "--exclude-file".into(),
                path(&excl),
            ],
        ),
        (
            "names − excluded names",
            vec![
                "-i".into(),
                path(&names),
                "--exclude-file".into(),
                path(&names),
            ],
        ),
    ];
    println!("| plan (`scan --dry-run`) | targets | exclusions | wall | CPU | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for (what, args) in runs {
        let excluded = if args.len() > 2 { n } else { 0 };
        let started = Instant::now();
        let (before, cpu_before) = children_usage();
        let status = Command::new(relayscan_bin())
            .args([
                "scan",
                "--dry-run",
                "--scope",
                "127.0.0.0/8",
                "--resolver",
                "127.0.0.53",
            ])
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run relayscan");
        let wall = started.elapsed();
        let (rss, cpu) = children_usage();
        // Every name excluded is a refusal (exit 2); anything else must plan.
        assert!(
            status.code() == Some(0) || (excluded > 0 && status.code() == Some(2)),
            "{what}: {status}"
        );
        let rss = if rss > before {
            format!("{:.0} MB", rss as f64 / 1024.0)
        } else {
            format!("≤ {:.0} MB", before as f64 / 1024.0)
        };
        println!(
            "| {what} | {n} | {excluded} | {:.2} s | {:.2} s | {rss} |",
            wall.as_secs_f64(),
            cpu - cpu_before
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
