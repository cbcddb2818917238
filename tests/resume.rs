//! `scan --resume`: a scan killed at any moment (SIGKILL: no chance to clean
//! up) or interrupted (Ctrl-C) is finished by the same command, with every
//! target in the output exactly once and a summary of the whole scan.
//! Everything runs against the lab and the test DNS server on loopback;
//! signals go only to the child processes these tests started.

mod common;

use common::dns::{TestDns, Zones};
use common::{wait_at_most, wait_for_file, TestLab, FAST};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn relayscan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relayscan"));
    cmd.env("NO_COLOR", "1")
        .env("RELAYSCAN_SCOPE", "127.0.0.0/8,::1");
    cmd
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn results(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["type"] == "result").collect()
}

/// A tiny xorshift: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Profiles that answer at once and the same way every time (no greylisting,
/// no timeouts): the verdict of a target does not depend on which run probed it.
const STEADY: &[&str] = &[
    "open-relay",
    "postfix-closed",
    "exim-closed",
    "percent-hack",
    "accept-all",
    "reject-greeting",
];

#[test]
fn kill_9_at_random_moments_then_the_same_command_finishes_every_target_once() {
    let lab = TestLab::start(STEADY);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let cp = dir.path().join("scan.checkpoint");
    // 256 targets at 20 connections a second: long enough that most kills
    // land mid-scan, short enough for the whole test to take seconds.
    let port = lab.port().to_string();
    let args: Vec<String> = ["scan", "127.0.0.0/24", "-p", &port, "--rate", "20", "-q"]
        .iter()
        .map(|s| s.to_string())
        .chain(["-o".into(), out.display().to_string()])
        .chain(["--resume".into(), cp.display().to_string()])
        .chain(FAST.iter().map(|s| s.to_string()))
        .collect();
    let seed = std::env::var("RESUME_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments from RESUME_KILL_SEED={seed}");
    let mut rng = Rng(seed);

    const KILLS: usize = 100;
    let (mut mid_scan, mut before_checkpoint) = (0, 0);
    for k in 0..KILLS {
        // The first kills come in the very first milliseconds (before the
        // output or the checkpoint exist, or just after); then anywhere.
        let after = if k < 2 {
            Duration::ZERO
        } else if k < 8 {
            Duration::from_micros(rng.below(10_000))
        } else {
            Duration::from_millis(rng.below(400))
        };
        let had_checkpoint = cp.exists();
        let mut child = relayscan()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            mid_scan += 1;
            child.kill().unwrap(); // SIGKILL
        }
        let status = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(
            !stderr.contains("pass --force") && !stderr.contains("refusing"),
            "kill {k} left a scan the same command cannot resume: {stderr}"
        );
        if !had_checkpoint && !cp.exists() {
            before_checkpoint += 1;
        }
    }

    let done = relayscan()
        .args(&args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        done.status.code(),
        Some(1),
        "relays in the scan → exit 1: {}",
        String::from_utf8_lossy(&done.stderr)
    );

    let lines = json_lines(&out);
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for r in results(&lines) {
        seen.entry(r["ip"].as_str().unwrap().to_string())
            .or_default()
            .push(r["verdict"].as_str().unwrap().to_string());
    }
    let twice: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert_eq!(seen.len(), 256, "every target once");
    let mut want: HashMap<&str, u64> = HashMap::new();
    for (addr, profile) in lab.servers() {
        assert_eq!(
            seen[&addr.ip().to_string()],
            [profile.expected.as_str()],
            "{}",
            profile.name
        );
        *want.entry(profile.expected.as_str()).or_default() += 1;
    }
    *want.entry("refused").or_default() += 256 - lab.servers().len() as u64;
    let relays = lab
        .servers()
        .iter()
        .filter(|(_, p)| p.expected.is_relay())
        .count();

    // The last line sums up the whole scan, not the last run's remainder.
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], 256, "{summary}");
    assert_eq!(summary["relays"], relays, "{summary}");
    assert_eq!(summary["interrupted"], false);
    for (verdict, n) in &want {
        assert_eq!(summary["counts"][verdict], *n, "{verdict}: {summary}");
    }
    eprintln!(
        "{KILLS} SIGKILLs ({mid_scan} mid-scan, {before_checkpoint} before the first checkpoint existed), \
         256 targets, each exactly once"
    );
    assert!(
        mid_scan >= KILLS / 2,
        "only {mid_scan} kills landed mid-scan"
    );
    // How many kills land before the first checkpoint depends on how fast
    // the machine starts a process; that moment is pinned down in
    // `the_first_checkpoint_comes_before_any_record_and_a_failure_to_write_it_stops_the_scan`.

    // Run again: complete, and the answer is still the whole scan's.
    let again = relayscan()
        .args(args.iter().filter(|a| *a != "-q"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains(&format!("RELAYS FOUND: {relays}")), "{text}");
    assert!(!text.contains("No relay found"), "{text}");
    assert!(
        text.contains("256 target(s) (256 written before the resume)"),
        "{text}"
    );
    assert_eq!(json_lines(&out).len(), lines.len(), "nothing more written");
}

/// The lab and a DNS world where `multi.lab.example` has two mail
/// exchangers: a closed server that answers at once (preference 10) and
/// a silent one that holds its probe (preference 20).
struct World {
    lab: TestLab,
    dns: TestDns,
}

impl World {
    fn start() -> World {
        let lab = TestLab::start(&["postfix-closed", "silent", "slowloris", "tarpit"]);
        let ip = |name: &str| lab.addr(name).split(':').next().unwrap().parse().unwrap();
        let dns = TestDns::start(
            Zones::new()
                .zone("lab.example")
                .mx("multi.lab.example", 10, "fast.lab.example")
                .mx("multi.lab.example", 20, "slow.lab.example")
                .addr("fast.lab.example", ip("postfix-closed"))
                .addr("slow.lab.example", ip("silent")),
        );
        World { lab, dns }
    }

    fn ip(&self, name: &str) -> String {
        self.lab.addr(name).split(':').next().unwrap().to_string()
    }

    fn args(&self, out: &Path, cp: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "scan",
            "mx:multi.lab.example",
            &self.lab.addr("slowloris"),
            "-p",
            &self.lab.port().to_string(),
            "--resolver",
            &self.dns.resolver_arg(),
            "--no-ptr",
            "--dnsbl",
            "none",
            "--ehlo",
            "scanner.relayscan.example",
            "--read-timeout",
            "3s",
            "--host-timeout",
            "3s",
            "--order",
            "sequential",
            "-o",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(out.display().to_string());
        args.push("--resume".into());
        args.push(cp.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

/// (ip, error) of every record in a CSV or JSON Lines output.
fn records(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().unwrap() == "jsonl" {
        return results(&json_lines(path))
            .iter()
            .map(|r| {
                (
                    r["ip"].as_str().unwrap_or("").to_string(),
                    r["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
    }
    let (_, rows) = common::csv_rows(&text);
    rows.iter()
        .map(|r| (r["ip"].clone(), r["error"].clone()))
        .collect()
}

#[test]
fn hosts_cut_by_ctrl_c_are_probed_again_on_resume_and_written_once() {
    let w = World::start();
    for ext in ["jsonl", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("results.{ext}"));
        let cp = dir.path().join("scan.checkpoint");
        let args = w.args(&out, &cp, &["--grace", "200ms"]);
        let mut child = relayscan()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let fast = w.ip("postfix-closed");
        wait_for_file(&out, "the fast exchanger's record", |t| t.contains(&fast));
        std::thread::sleep(Duration::from_millis(200));
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (code, _) = wait_at_most(&mut child, Duration::from_secs(20));
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        assert_eq!(code, 130, "{ext}: {stdout}");
        // The slow exchanger and the slowloris were cut: not written, not done.
        assert_eq!(records(&out), [(fast.clone(), String::new())], "{ext}");
        assert!(
            stdout.contains("2 host(s) cut by the interrupt are left for the resume"),
            "{ext}: {stdout}"
        );
        if ext == "jsonl" {
            let summary = json_lines(&out).pop().unwrap();
            assert_eq!(summary["left_for_resume"], 2, "{summary}");
            assert_eq!(summary["total"], 1, "{summary}");
        }

        let second = relayscan().args(&args).arg("-q").output().unwrap();
        assert!(
            !matches!(second.status.code(), Some(130) | Some(101) | None),
            "{ext}: {}",
            String::from_utf8_lossy(&second.stderr)
        );
        let got = records(&out);
        let mut ips: Vec<&str> = got.iter().map(|(ip, _)| ip.as_str()).collect();
        ips.sort();
        let mut want = vec![fast.clone(), w.ip("silent"), w.ip("slowloris")];
        want.sort();
        assert_eq!(ips, want, "{ext}: every target exactly once");
        assert!(
            got.iter().all(|(_, e)| e != "interrupted"),
            "{ext}: {got:?}"
        );
        if ext == "jsonl" {
            let summary = json_lines(&out).pop().unwrap();
            assert_eq!(summary["total"], 3, "the whole scan: {summary}");
            assert_eq!(summary["left_for_resume"], 0);
        }
    }
}

#[test]
fn a_name_with_several_addresses_killed_mid_job_is_not_written_twice() {
    let w = World::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let cp = dir.path().join("scan.checkpoint");
    // The tarpit answers after a second: its record comes after a periodic
    // checkpoint is due, which then lists the MX job's first address as
    // written while the job (its silent second address) is still open.
    let mut args = w.args(&out, &cp, &["-q"]);
    args.push(w.lab.addr("tarpit"));
    let mut child = relayscan()
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (fast, tarpit) = (w.ip("postfix-closed"), w.ip("tarpit"));
    wait_for_file(&out, "the fast exchanger's and the tarpit's records", |t| {
        t.contains(&fast) && t.contains(&format!("\"{tarpit}\""))
    });
    wait_for_file(&cp, "a checkpoint listing the open job", |t| {
        t.contains("fast.lab.example")
    });
    child.kill().unwrap(); // SIGKILL, the silent exchanger still in flight
    child.wait().unwrap();
    let before = records(&out);
    assert_eq!(before.len(), 2, "{before:?}");

    let status = relayscan().args(&args).status().unwrap();
    assert!(status.code().is_some_and(|c| c != 101 && c != 130));
    let lines = json_lines(&out);
    let mut names: Vec<String> = results(&lines)
        .iter()
        .map(|r| format!("{} {}", r["ip"].as_str().unwrap(), r["name"]))
        .collect();
    names.sort();
    let mut want = vec![
        format!("{fast} \"fast.lab.example\""),
        format!("{} \"slow.lab.example\"", w.ip("silent")),
        format!("{} null", w.ip("slowloris")),
        format!("{tarpit} null"),
    ];
    want.sort();
    assert_eq!(names, want, "every address once");
    assert_eq!(lines.last().unwrap()["total"], 4);
}

fn one_closed(lab: &TestLab, out: &Path, cp: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["scan", &lab.addr("postfix-closed"), "-q", "-o"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend([out.display().to_string(), "--resume".into()]);
    args.push(cp.display().to_string());
    args.extend(FAST.iter().map(|s| s.to_string()));
    args
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[test]
fn the_first_checkpoint_comes_before_any_record_and_a_failure_to_write_it_stops_the_scan() {
    let lab = TestLab::start(&["postfix-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let cp = dir.path().join("cp.json");
    let args = one_closed(&lab, &out, &cp);

    // A full disk when the first checkpoint is written (its temporary file
    // is /dev/full): the scan stops before anything else, naming the
    // user's checkpoint file, and leaves no output behind.
    std::os::unix::fs::symlink("/dev/full", tmp_of(&cp)).unwrap();
    let failed = relayscan().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write the checkpoint {}", cp.display()))
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains("cp.json.tmp"), "{stderr}");
    assert!(!out.exists(), "no output file was left");
    assert!(!cp.exists());

    // A stray temporary file from a crash is no obstacle.
    std::fs::write(tmp_of(&cp), "{ half a check").unwrap();
    // Killed after creating its output, before its first checkpoint: the
    // output is empty and the same command takes it over.
    std::fs::write(&out, "").unwrap();
    let ok = relayscan().args(&args).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2, "header and one row: {text}");
    let cp_text = std::fs::read_to_string(&cp).unwrap();
    assert!(cp_text.contains("\"complete\": true"), "{cp_text}");

    // Without --resume, an existing file still needs --force.
    let plain: Vec<&String> = args.iter().take(5).collect();
    let refused = relayscan()
        .args(plain.iter().map(|s| s.as_str()))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
}

#[test]
fn a_checkpoint_is_kept_to_its_scope() {
    let lab = TestLab::start(&["postfix-closed"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let cp = dir.path().join("cp.json");
    let args = one_closed(&lab, &out, &cp);
    let first = relayscan().args(&args).output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = std::fs::read_to_string(&out).unwrap();

    // The same command under another scope is another scan: refused, and
    // the output is left as it was.
    let other = relayscan()
        .args(&args)
        .env("RELAYSCAN_SCOPE", "127.0.0.0/8")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("different scan") && stderr.contains("scope"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);

    // The same scope again: the scan is already complete.
    let same = relayscan().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert_eq!(same.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already complete"), "{stderr}");
}

#[test]
fn resume_needs_a_file_it_can_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    for (output, needle) in [
        ("-", "--resume needs an output file"),
        ("/dev/stdout", "--resume needs an output file"),
        ("x.txt", "not the table"),
    ] {
        let out = relayscan()
            .args(["scan", "127.0.0.1", "-o", output, "--resume"])
            .arg(&cp)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{output}: {stderr}");
        assert!(stderr.contains(needle), "{output}: {stderr}");
        assert!(!cp.exists());
    }
}

/// Ctrl-C while records stream faster than one write each (`-c 512`, every
/// host refused at once: the writer gathers them in batches): no line is
/// cut, the summary counts what the file holds, and the resume writes every
/// remaining target once, each exactly once in the end.
#[test]
fn ctrl_c_in_a_stream_of_batched_records_then_resume_writes_each_target_once() {
    // A port nothing listens on: every address of the range is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let cp = dir.path().join("scan.checkpoint");
    let args: Vec<String> = [
        "scan",
        "127.0.0.0/17",
        "-p",
        &port,
        "-q",
        "-c",
        "512",
        "--grace",
        "200ms",
        "--resume",
        cp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut child = relayscan()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&out, "a few hundred records", |t| t.lines().count() > 300);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _) = wait_at_most(&mut child, Duration::from_secs(60));
    // 130 when the interrupt came first (2 if the scan had finished).
    assert!(matches!(code, 130 | 2), "{code}");

    let check = |interrupted: bool| {
        // Every line whole (json_lines panics on a cut one).
        let lines = json_lines(&out);
        let summary = lines.last().unwrap();
        assert_eq!(summary["type"], "summary", "{summary}");
        let found = results(&lines);
        let mut ips: Vec<&str> = found.iter().map(|r| r["ip"].as_str().unwrap()).collect();
        ips.sort_unstable();
        let n = ips.len();
        ips.dedup();
        assert_eq!(ips.len(), n, "no target written twice");
        assert_eq!(summary["total"], n as u64, "{summary}");
        if interrupted {
            assert_eq!(summary["interrupted"], true, "{summary}");
        }
        n
    };
    let first = check(code == 130);
    eprintln!("first run: exit {code}, {first} record(s)");
    if code == 130 {
        assert!(first < 32768, "{first}");
    }

    let second = relayscan().args(&args).output().unwrap();
    assert_eq!(
        second.status.code(),
        Some(2),
        "every target refused: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    // The resumed run appended its own summary; the records of both runs
    // together are every target of the /17, once each.
    let lines = json_lines(&out);
    let mut ips: Vec<&str> = results(&lines)
        .iter()
        .map(|r| r["ip"].as_str().unwrap())
        .collect();
    ips.sort_unstable();
    let n = ips.len();
    ips.dedup();
    assert_eq!((n, ips.len()), (32768, 32768), "every target exactly once");
    let summary = lines.last().unwrap();
    assert_eq!(summary["total"], 32768, "the whole scan: {summary}");
}
