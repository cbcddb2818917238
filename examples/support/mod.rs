//! Shared by the benchmark examples: running a child to its end and
//! measuring it, and the bench's lab (half open relays, half closed).
// Each example uses what it needs of it.
#![allow(dead_code)]
//!
//! The peak RSS is the child's own: `VmHWM` of its address space, read from
//! /proc while it runs. `ru_maxrss` from wait4 is not: on Linux a spawned
//! child starts in its parent's address space (vfork, or a copy of it after
//! fork) and exec folds that space's high-water mark into the child's
//! `ru_maxrss`, so a benchmark that plays a big lab in its own process would
//! see its own size reported as the scanner's.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one run of a child cost.
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set of the child's own address space, KiB.
    pub peak_rss_kib: u64,
    /// User + system CPU seconds of the child.
    pub cpu_secs: f64,
    /// The user part of `cpu_secs`.
    pub user_secs: f64,
    pub status: ExitStatus,
    /// Its standard output, when asked for.
    pub stdout: String,
}

/// `VmHWM` of `pid`, in KiB, once it runs its own program (not ours any
/// more: before exec the child still shows our address space).
fn own_peak(pid: u32, ours: &std::path::Path) -> Option<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if exe == ours {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Run `cmd` to its end (standard error discarded; standard output kept
/// when `capture`), sampling its peak RSS every 5 ms.
// The child is reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &mut Command, capture: bool) -> Measured {
    let ours = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let mut child = cmd
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        })
    });
    let mut peak = 0;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if let Some(kib) = own_peak(pid, &ours) {
            peak = peak.max(kib);
        }
        // SAFETY: wait4 on our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid as libc::pid_t {
            break;
        }
        assert!(rc == 0, "wait4 failed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        wall,
        peak_rss_kib: peak,
        cpu_secs: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        user_secs: cpu(usage.ru_utime),
        status: ExitStatus::from_raw(status),
        stdout: reader.and_then(|r| r.join().ok()).unwrap_or_default(),
    }
}

/// The scanner to measure: `BENCH_BIN`, else the `relayscan` built next to
/// this example (target/release/relayscan).
pub fn relayscan_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("BENCH_BIN") {
        return std::path::PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("relayscan"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "build the scanner first: cargo build --release ({} missing)",
        bin.display()
    );
    bin
}

/// The bench's lab, one server for every address: an open relay where the
/// last octet is even, a closed Postfix where it is odd.
pub fn half_open(
) -> impl Fn(std::net::IpAddr) -> Option<&'static relayscan::lab::Profile> + Clone + Send + Sync + 'static
{
    use relayscan::lab::profile;
    let open = profile::find("open-relay").expect("profile");
    let closed = profile::find("postfix-closed").expect("profile");
    move |ip| match ip {
        std::net::IpAddr::V4(v4) if v4.octets()[3] % 2 == 0 => Some(open),
        _ => Some(closed),
    }
}
