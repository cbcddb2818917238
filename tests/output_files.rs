//! Output files that never lie: `-o -`, devices and FIFOs, `--append` of
//! the same format only, extensions that name the format, bad paths refused
//! before the scan, `demo`'s overwrite rule, whole lines per write (two
//! appenders on one file; batches to a pipe and a full disk), and `merge`
//! reading with a line cap. Against the lab on loopback.

mod common;

use common::{csv_rows, TestLab, FAST};
use relayscan::output::CSV_HEADER;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn relayscan() -> assert_cmd::Command {
    let mut cmd = common::relayscan();
    cmd.env("RELAYSCAN_SCOPE", "127.0.0.0/8,::1");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    relayscan().args(args).current_dir(dir).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn dash_dev_stdout_dev_null_and_fifos_are_outputs() {
    let lab = TestLab::start(&["postfix-closed"]);
    let target = lab.addr("postfix-closed");
    let dir = tempfile::tempdir().unwrap();
    let header = CSV_HEADER.join(",");

    for o in ["-", "/dev/stdout"] {
        let out = relayscan()
            .args(["scan", &target, "-q", "-o", o])
            .args(FAST)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{o}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with(&header), "{o}: {text}");
        assert_eq!(text.lines().count(), 2, "{o}");
    }
    assert!(!dir.path().join("-").exists(), "-o - made no file named -");

    // Without -q the summary goes to stderr: stdout holds only data.
    let out = run(
        dir.path(),
        &[
            "scan",
            &target,
            "-o",
            "-",
            "--format",
            "jsonl",
            "--ehlo",
            "scanner.relayscan.example",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().all(|l| l.starts_with('{')), "{text}");
    assert!(stderr(&out).contains("No relay found"));

    for extra in [&[][..], &["--append"], &["--force"]] {
        let out = relayscan()
            .args(["scan", &target, "-q", "-o", "/dev/null"])
            .args(extra)
            .args(FAST)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::metadata("/dev/null").unwrap().len(), 0);

    // Its name need not be one of a format: it stores nothing.
    let fifo = dir.path().join("results.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = relayscan()
        .args(["scan", &target, "-q", "-o"])
        .arg(&fifo)
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = reader.join().unwrap();
    assert!(got.starts_with(&header), "{got}");
    assert_eq!(got.lines().count(), 2);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO is still a FIFO"
    );
}

#[test]
fn append_refuses_a_file_of_another_format() {
    let lab = TestLab::start(&["postfix-closed"]);
    let target = lab.addr("postfix-closed");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let jsonl = dir.path().join("results.jsonl");
    for (file, format) in [(&csv, "csv"), (&jsonl, "jsonl")] {
        let out = relayscan()
            .args(["scan", &target, "-q", "-o"])
            .arg(file)
            .args(["--format", format])
            .args(FAST)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let (csv_before, jsonl_before) = (std::fs::read(&csv).unwrap(), std::fs::read(&jsonl).unwrap());
    for (file, format, holds) in [(&csv, "jsonl", "csv"), (&jsonl, "csv", "jsonl")] {
        let out = relayscan()
            .args(["scan", &target, "-q", "--append", "--format", format, "-o"])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let e = stderr(&out);
        assert!(
            e.contains(&format!(
                "cannot append {format} to {}: it holds {holds}",
                file.display()
            )),
            "{e}"
        );
    }
    let notes = dir.path().join("notes.csv");
    std::fs::write(&notes, "my own notes\n").unwrap();
    let out = relayscan()
        .args(["scan", &target, "-q", "--append", "-o"])
        .arg(&notes)
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("not a relayscan csv file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&csv).unwrap(), csv_before);
    assert_eq!(std::fs::read(&jsonl).unwrap(), jsonl_before);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my own notes\n");

    // The same format appends.
    let out = relayscan()
        .args(["scan", &target, "-q", "--append", "-o"])
        .arg(&csv)
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, rows) = csv_rows(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 2);
}

#[test]
fn unknown_extensions_and_bad_paths_are_refused_before_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there; the refusals come before any connection.
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (&["-o", "x.xlsx"], "--format"),
        (&["-o", "x.XLSX"], "not .xlsx"),
        (&["-o", "/tmp"], "/tmp is a directory"),
        (&["-o", "."], ". is a directory"),
        (
            &["-o", "no/such/dir/x.csv"],
            "the directory no/such/dir does not exist",
        ),
    ];
    for (args, needle) in cases {
        let out = run(d, &[&["scan", "127.0.0.1", "-q"][..], args].concat());
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(
            !e.contains("--force"),
            "{args:?} does not suggest --force: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{args:?}: one line: {e}");
    }
    assert!(!d.join("x.xlsx").exists());
    // An explicit format makes any name fine.
    let lab = TestLab::start(&["postfix-closed"]);
    let out = relayscan()
        .args([
            "scan",
            &lab.addr("postfix-closed"),
            "-q",
            "-o",
            "x.xlsx",
            "--format",
            "jsonl",
        ])
        .args(FAST)
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(d.join("x.xlsx")).unwrap();
    assert!(
        text.starts_with('{') && text.contains("\"type\":\"meta\""),
        "{text}"
    );
}

#[test]
fn demo_follows_the_overwrite_rule_and_refuses_bad_paths_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("mine.csv"), "precious\n").unwrap();
    // A name the temporary file (NAME.PID.tmp) cannot have: longer than
    // NAME_MAX (255 bytes) once the suffix is added.
    let long = format!("{}.csv", "b".repeat(246));
    let cannot = format!("cannot write {long}");
    for (args, needle) in [
        (&["demo", "-o", "/tmp"][..], "/tmp is a directory"),
        (&["demo", "-o", "mine.csv"], "mine.csv exists: pass --force"),
        (&["demo", "-o", "gone/x.csv"], "gone does not exist"),
        // Its temporary file cannot be made: the error names the user's file.
        (&["demo", "-o", long.as_str()], cannot.as_str()),
    ] {
        let started = Instant::now();
        let out = run(d, args);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains(".tmp"), "{args:?}: {e}");
        assert!(!e.contains("--append"), "demo has no --append: {e}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: refused before the lab started"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?}: up front"
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("mine.csv")).unwrap(),
        "precious\n"
    );
    assert!(!d.join(&long).exists());

    // Its own default file is replaced; --force replaces any other.
    std::fs::write(d.join("relayscan-demo.csv"), "an old demo\n").unwrap();
    let out = run(d, &["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(d.join("relayscan-demo.csv")).unwrap();
    assert!(text.starts_with(&CSV_HEADER.join(",")), "{text}");
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let out = run(d, &["demo", "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn two_appenders_on_one_jsonl_file_never_interleave() {
    let lab = TestLab::start(&[]);
    let port = lab.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.jsonl");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_relayscan"))
                .env("RELAYSCAN_SCOPE", "127.0.0.0/8,::1")
                .args([
                    "scan",
                    "127.0.0.0/24",
                    "-p",
                    &port,
                    "-q",
                    "-c",
                    "300",
                    "--append",
                    "-o",
                ])
                .arg(&file)
                .args(FAST)
                .args(["--transcript"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let mut kinds = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line:.200}", n + 1));
        *kinds
            .entry(v["type"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(kinds["meta"], 2);
    assert_eq!(kinds["summary"], 2);
    assert_eq!(kinds["result"], 512, "{kinds:?}");
}

#[test]
fn merge_caps_lines_names_no_missing_flag_and_offers_only_what_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let started = Instant::now();
    let out = run(d, &["merge", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/dev/zero:1: line longer than 1 MiB"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(10), "ends quickly");

    let shard = d.join("shard.jsonl");
    // A meta and a result line as relayscan writes them (the schema's
    // golden examples), the result moved to 127.0.0.9:25.
    let example = |name: &str| -> serde_json::Value {
        let path = format!("{}/docs/schema/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut result = example("result-closed.json");
    result["ip"] = "127.0.0.9".into();
    result["port"] = 25.into();
    std::fs::write(&shard, format!("{}\n{result}\n", example("meta.json"))).unwrap();
    std::fs::write(d.join("merged.csv"), "precious\n").unwrap();
    let out = run(d, &["merge", "shard.jsonl", "-o", "merged.csv"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(e.contains("merged.csv exists: pass --force"), "{e}");
    assert!(!e.contains("--append"), "merge has no --append: {e}");

    let out = run(d, &["merge", "shard.jsonl", "--format", "table"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'table'"),
        "{}",
        stderr(&out)
    );
    let help = run(d, &["merge", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("csv") && help.contains("jsonl") && !help.contains("table"),
        "{help}"
    );
    let out = run(d, &["merge", "shard.jsonl", "-o", "m.txt"]);
    assert!(
        stderr(&out).contains("merge writes csv or jsonl"),
        "{}",
        stderr(&out)
    );
    let out = run(d, &["merge", "shard.jsonl", "-o", "-", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.9,25"));
}

/// Records come faster than one write each (`-c 512`: the writer gathers
/// them into batches): to a pipe, in every format, every record arrives
/// once and whole, the same targets with the same verdicts.
#[test]
fn batched_records_reach_a_pipe_whole_and_once_in_every_format() {
    let lab = TestLab::start(&["open-relay", "postfix-closed", "exim-closed"]);
    let port = lab.port().to_string();
    let scan = |format: &str| {
        let out = relayscan()
            .args(["scan", "127.0.0.0/22", "-p", &port, "-q", "-c", "512"])
            .args(["--order", "sequential", "--format", format, "-o", "-"])
            .args(FAST)
            // `output()` reads stdout through a pipe.
            .output()
            .unwrap();
        // Most addresses have no server (refused): untested, exit 2;
        // 1 if the lab's open relay lies in the range.
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{format}: {}",
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all: std::collections::BTreeSet<String> = (0..1024)
        .map(|i| format!("127.0.{}.{}", i / 256, i % 256))
        .collect();

    let jsonl = scan("jsonl");
    let mut results = std::collections::BTreeMap::new();
    let mut lines = jsonl.lines();
    let first: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(first["type"], "meta");
    let mut summary = None;
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("cut line ({e}): {line:.200}"));
        match v["type"].as_str() {
            Some("result") => {
                let ip = v["ip"].as_str().unwrap().to_string();
                let verdict = v["verdict"].as_str().unwrap().to_string();
                assert!(results.insert(ip, verdict).is_none(), "{line:.200}");
            }
            Some("summary") => summary = Some(v),
            _ => panic!("{line:.200}"),
        }
    }
    assert_eq!(
        results
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        all
    );
    assert_eq!(summary.expect("a summary line, last")["total"], 1024);
    assert!(jsonl.ends_with("}\n"));

    let csv = scan("csv");
    let (_, rows) = csv_rows(&csv);
    let by_csv: std::collections::BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r["ip"].clone(), r["verdict"].clone()))
        .collect();
    assert_eq!(rows.len(), 1024);
    assert_eq!(by_csv, results, "the same verdicts in CSV as in JSON Lines");

    let table = scan("table");
    let mut table_lines = table.lines();
    assert!(table_lines.next().unwrap().starts_with("ADDRESS"));
    let by_table: Vec<(std::net::SocketAddr, String)> = table_lines
        .map(|l| {
            let mut words = l.split_whitespace();
            let addr = words
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("{l}"));
            (addr, words.next().unwrap().to_string())
        })
        .collect();
    assert_eq!(by_table.len(), 1024);
    assert!(
        by_table.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted by address"
    );
    let by_table: std::collections::BTreeMap<String, String> = by_table
        .into_iter()
        .map(|(a, v)| (a.ip().to_string(), v))
        .collect();
    assert_eq!(by_table, results, "the same verdicts in the table");
}

/// A sink that cannot take the output (a full disk: `/dev/full`) stops the
/// scan with the error, in every format: nothing is swallowed.
#[test]
fn a_full_disk_stops_the_scan_and_says_so() {
    let lab = TestLab::start(&["postfix-closed"]);
    let port = lab.port().to_string();
    for format in ["csv", "jsonl", "table"] {
        let out = relayscan()
            .args(["scan", "127.0.0.0/24", "-p", &port, "-q", "-c", "300"])
            .args(["--format", format, "-o", "/dev/full"])
            .args(FAST)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{format}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("No space left on device"),
            "{format}: {}",
            stderr(&out)
        );
    }
}
