//! CPU per host against the bare client (`../shared/bench-ceiling/`): the
//! yardstick of issue 13's first goal. Prints one row per run and the
//! median ratio of each scanner's CPU (user + system) to the bare client's
//! in the same round, so that a shared machine's load moves both. The order
//! of the runs turns by one each round (rows are printed in a fixed order).
//!
//!     cp -r ../shared/bench-ceiling /tmp/bench-ceiling
//!     (cd /tmp/bench-ceiling && cargo build --release)
//!     cargo build --release --bin relayscan --example ceiling_bench
//!     target/release/examples/ceiling_bench
//!
//! Everything runs in a network namespace of its own (`unshare --net`,
//! root): the bench-ceiling server listens on 0.0.0.0 there, where only
//! loopback exists, and answers for every address of 127.1.0.0/18 (even
//! last octet an open relay, odd closed).
//!
//! Knobs: CEILING_BIN (the bench-ceiling `relaylab`, default
//! /tmp/bench-ceiling/target/release/relaylab), BENCH_BIN (the scanner,
//! default target/release/relayscan), BENCH_OTHER (a second scanner binary
//! to measure in the same rounds, e.g. an older build), ROUNDS (5),
//! BENCH_ARGS (more `relayscan scan` options, e.g. `--tests direct`).

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command};
use std::time::Duration;

const PORT: &str = "3625";
const NET: &str = "127.1.0.0/18";
const FIRST: &str = "127.1.0.0";
const HOSTS: usize = 16_384;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--inside-namespace") {
        return inside();
    }
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("unshare")
        .args(["--net", "--"])
        .arg(exe)
        .arg("--inside-namespace")
        .status()
        .expect("unshare (run as root)");
    std::process::exit(status.code().unwrap_or(1));
}

/// One measured run: its CPU and wall time.
struct Run {
    user: f64,
    cpu: f64,
    wall: f64,
    rss_mb: f64,
}

fn inside() {
    let ok = |cmd: &mut Command| assert!(cmd.status().expect("spawn").success());
    ok(Command::new("ip").args(["link", "set", "lo", "up"]));
    let ceiling = std::env::var("CEILING_BIN")
        .unwrap_or_else(|_| "/tmp/bench-ceiling/target/release/relaylab".into());
    assert!(
        std::path::Path::new(&ceiling).exists(),
        "{ceiling} missing: build ../shared/bench-ceiling first (see this file's header)"
    );
    rlimit::increase_nofile_limit(20_000).expect("open-file limit");
    let mut server: Child = Command::new(&ceiling)
        .args(["server", &format!("0.0.0.0:{PORT}")])
        .env("WORKERS", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bench-ceiling server");
    std::thread::sleep(Duration::from_millis(300));

    let mut scanners = vec![("relayscan".to_string(), support::relayscan_bin())];
    if let Some(other) = std::env::var_os("BENCH_OTHER") {
        scanners.push(("other".to_string(), other.into()));
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let extra = std::env::var("BENCH_ARGS").unwrap_or_default();
    let out = std::env::temp_dir().join(format!("ceiling-bench-{}.csv", std::process::id()));

    println!("| round | run | CPU user + sys (s) | × bare | wall (s) | peak RSS |");
    println!("|---|---|---|---|---|---|");
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); scanners.len()];
    // Each round runs the bare client and every scanner once, in an order
    // that turns by one each round: a run right after another pays for the
    // sockets the other left in TIME_WAIT (the same binary measured twice
    // in a fixed order read 2% apart), and turning the order shares that
    // out.
    let runs = scanners.len() + 1;
    for round in 1..=rounds {
        let mut measured: Vec<Option<Run>> = (0..runs).map(|_| None).collect();
        for step in 0..runs {
            let which = (step + round - 1) % runs;
            measured[which] = Some(if which == 0 {
                measure(
                    Command::new(&ceiling)
                        .args(["client", "1000", FIRST, &HOSTS.to_string(), PORT, "10000"])
                        .env("WORKERS", "1"),
                    None,
                )
            } else {
                let mut cmd = Command::new(&scanners[which - 1].1);
                cmd.args(["scan", NET, "-p", PORT, "-c", "1000", "-q", "--force", "-o"])
                    .arg(&out)
                    .args(["--seed", "1", "--ehlo", "bench.relayscan.example"])
                    .args(extra.split_whitespace())
                    .env("RELAYSCAN_SCOPE", "127.0.0.0/8,::1");
                measure(&mut cmd, Some(&out))
            });
        }
        let mut measured = measured.into_iter().flatten();
        let bare = measured.next().expect("the bare client's run");
        print_row(round, "bare client", &bare, None);
        for (k, ((name, _), run)) in scanners.iter().zip(measured).enumerate() {
            ratios[k].push(run.cpu / bare.cpu);
            print_row(round, name, &run, Some(bare.cpu));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&out);
    println!();
    for ((name, bin), mut r) in scanners.iter().zip(ratios) {
        r.sort_by(f64::total_cmp);
        println!(
            "{name} ({}): CPU × bare client, median of {} rounds: ×{:.2} (range ×{:.2}–×{:.2})",
            bin.display(),
            r.len(),
            r[r.len() / 2],
            r[0],
            r[r.len() - 1]
        );
    }
}

/// Run a command to its end; with `rows`, check that the scan wrote a row
/// for every host, half of them open relays.
fn measure(cmd: &mut Command, rows: Option<&std::path::Path>) -> Run {
    let m = support::run(cmd, true);
    if let Some(path) = rows {
        let text = std::fs::read_to_string(path).expect("the scan's CSV");
        let lines: Vec<&str> = text.lines().skip(1).collect();
        let open = lines.iter().filter(|l| l.contains(",open-relay,")).count();
        assert_eq!(lines.len(), HOSTS, "a row per host");
        assert_eq!(open, HOSTS / 2, "half the hosts relay");
    } else {
        assert!(
            m.stdout
                .contains(&format!("open={} closed={}", HOSTS / 2, HOSTS / 2)),
            "bare client: {}",
            m.stdout
        );
    }
    Run {
        user: m.user_secs,
        cpu: m.cpu_secs,
        wall: m.wall.as_secs_f64(),
        rss_mb: m.peak_rss_kib as f64 / 1024.0,
    }
}

fn print_row(round: usize, name: &str, run: &Run, bare_cpu: Option<f64>) {
    println!(
        "| {round} | {name} | {:.2} + {:.2} = {:.2} | {} | {:.2} | {:.0} MB |",
        run.user,
        run.cpu - run.user,
        run.cpu,
        bare_cpu.map_or("1".to_string(), |b| format!("×{:.2}", run.cpu / b)),
        run.wall,
        run.rss_mb
    );
}
