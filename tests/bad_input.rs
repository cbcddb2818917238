//! Bad input from the user: a one-line error that names the problem, exit 2,
//! and no output file created or truncated.
//!
//! Network rule: every target here is loopback, except the whole-space
//! prefixes (`::/0`, `0.0.0.0/0`) whose refusal is the point. Those runs also
//! name an output file in a directory that does not exist, which fails
//! before any socket is opened: should the safety catch ever break, the run
//! still stops without dialling anything (and the test fails).

mod common;

use common::relayscan;

/// Run relayscan; expect exit 2 and a short error on stderr that mentions
/// `needle`. Returns stderr.
fn refused(args: &[&str], needle: &str) -> String {
    let out = relayscan().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} should mention {needle:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    // One style for ours and clap's: one `relayscan: error: …` line, then
    // at most clap's tips, each on a `relayscan: tip: …` line.
    let mut lines = stderr.trim_end().lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("relayscan: error: ")),
        "{args:?}: {stderr}"
    );
    assert!(
        lines.all(|l| l.starts_with("relayscan: tip: ")),
        "{args:?}: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "{args:?}: no raw escape in the error"
    );
    stderr
}

#[test]
fn whole_address_spaces_need_the_safety_catch() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("missing-dir").join("out.csv");
    let nowhere = nowhere.to_str().unwrap();
    for spec in ["::/0", "2001:db8::/0", "0.0.0.0/0", "127.0.0.0/0"] {
        refused(&["scan", spec, "-o", nowhere], "--allow-huge");
    }
    // Loopback only: 2^24 addresses × 2 ports.
    refused(
        &["scan", "127.0.0.0/8", "-p", "2525,2526", "-o", nowhere],
        "--allow-huge",
    );
}

#[test]
fn bad_targets_ports_and_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let o = out.to_str().unwrap();
    for (args, needle) in [
        (vec!["scan", "127.0.0.0/33"], "CIDR"),
        (vec!["scan", "127.0.0.300"], "127.0.0.300"),
        (vec!["scan", "127.0.0.20-10"], "reversed"),
        (vec!["scan", "127.0.0.1-::1"], "mix"),
        (vec!["scan", "127.0.0.1:0"], "port"),
        (vec!["scan", "127.0.0.1", "-p", "25-x"], "unknown port"),
        (vec!["scan", "127.0.0.1", "-p", "30-20"], "reversed"),
        (vec!["scan"], "no targets"),
        (
            vec!["scan", "127.0.0.1", "--host-timeout", "584542046090years"],
            "longer than a day",
        ),
        (
            vec![
                "scan",
                "127.0.0.1",
                "--host-timeout",
                "1s",
                "--read-timeout",
                "5s",
                "--connect-timeout",
                "5s",
            ],
            "--host-timeout",
        ),
        (
            vec!["scan", "127.0.0.1", "--exclude", "127.0.0.1:25"],
            "ports",
        ),
        (vec!["scan", "127.0.0.1", "--from", "a b"], "--from"),
        (
            vec!["scan", "127.0.0.1", "--foreign-domain", "x"],
            "--foreign-domain",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["-o", o]);
        refused(&all, needle);
        assert!(!out.exists(), "{args:?} created the output file");
    }
}

/// Each message names the cause and a fix that exists (issue 10's list).
#[test]
fn each_error_names_its_cause_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out.csv");
    let o = o.to_str().unwrap();
    for (args, needles) in [
        (
            vec!["check", "127.0.0.1", "-p", "2525,587"],
            &["check takes one", "scan -p 2525,587"][..],
        ),
        (
            vec!["scan", "127.0.0.1", "--seed", "abc", "-o", o],
            &["not a seed", "whole number"][..],
        ),
        (
            vec!["scan", "127.0.0.1", "--rate", "1e-19", "-o", o],
            &["out of range", "0.001"][..],
        ),
        (
            vec!["scan", "127.0.0.1", "--rate", "1e9", "-o", o],
            &["out of range", "1000000"][..],
        ),
        (
            vec!["scan", "::1", "--source-ip", "127.0.0.1", "-o", o],
            &["IPv4 but target ::1 is IPv6", "separate runs"][..],
        ),
        (
            vec!["check", "127.0.0.1:2525", "-p", "25"],
            &["names port 2525 and --port says 25"][..],
        ),
        (
            vec!["scan", "127.0.0.1", "--transcript", "-o", o],
            &["--format jsonl"][..],
        ),
    ] {
        let stderr = refused(&args, needles[0]);
        for n in needles {
            assert!(
                stderr.contains(n),
                "{args:?}: {stderr:?} should mention {n:?}"
            );
        }
        assert!(
            !stderr.contains("invalid digit") && !stderr.contains("os error"),
            "{args:?}: raw library text: {stderr}"
        );
        assert!(
            !dir.path().join("out.csv").exists(),
            "{args:?} created the output"
        );
    }
    // Contradicting flags are refused before anything runs.
    for pair in [
        ["--ptr", "--no-ptr"],
        ["--tls", "--starttls=never"],
        ["--tls", "--starttls=always"],
    ] {
        let mut args = vec!["scan", "127.0.0.1", "-o", o];
        args.extend(pair);
        refused(&args, "cannot be used with");
    }
}

#[test]
fn conflicting_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out.csv");
    let o = o.to_str().unwrap();
    refused(
        &["scan", "127.0.0.1", "-o", o, "--force", "--append"],
        "cannot be used with",
    );
    // Overwrite or append what? Standard output cannot be either.
    refused(&["scan", "127.0.0.1", "--force"], "--output");
    refused(&["scan", "127.0.0.1", "--append"], "--output");
    refused(&["check", "127.0.0.0/24"], "one server");
    refused(&["lab", "--profiles", ",", "--port", "0"], "no profile");
    refused(
        &["lab", "--profiles", "nope", "--port", "0"],
        "unknown lab profile",
    );
}

#[test]
fn bad_target_files_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out.csv");
    let o = o.to_str().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let empty = file("empty.txt", b"# nothing here\n\n");
    refused(&["scan", "-i", &empty, "-o", o], "no targets");
    let bad = file("bad.txt", b"127.0.0.1\n# ok\n127.0.0.0/40\n");
    let e = refused(&["scan", "-i", &bad, "-o", o], "bad.txt:3");
    assert!(e.contains("CIDR"), "{e}");
    let binary = file("binary.txt", b"127.0.0.1\n\xff\xfe\x00\n");
    refused(&["scan", "-i", &binary, "-o", o], "binary.txt:2");
    let escapes = file("escapes.txt", b"127.0.0.1\x1b]52;c;eA==\x07\n");
    refused(&["scan", "-i", &escapes, "-o", o], "escapes.txt:1");
    refused(
        &["scan", "-i", "/nonexistent/targets.txt", "-o", o],
        "cannot read target file",
    );
    refused(
        &["scan", "-i", dir.path().to_str().unwrap(), "-o", o],
        "cannot read target file",
    );
    // An endless line is cut, not read into memory.
    refused(&["scan", "-i", "/dev/zero", "-o", o], "line longer than");
    refused(
        &[
            "scan",
            "127.0.0.1",
            "--exclude-file",
            "/nonexistent/x",
            "-o",
            o,
        ],
        "cannot read target file",
    );
    assert!(!std::path::Path::new(o).exists());
}

#[test]
fn a_bad_run_never_truncates_or_touches_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.csv");
    std::fs::write(&file, "precious\n").unwrap();
    let f = file.to_str().unwrap();
    for extra in [&["--force"][..], &["--append"][..], &[][..]] {
        let mut args = vec!["scan", "127.0.0.0/33", "-o", f];
        args.extend_from_slice(extra);
        refused(&args, "CIDR");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "precious\n",
            "{extra:?}"
        );
    }
    // A good run without --force or --append refuses to overwrite it.
    refused(&["scan", "127.0.0.1", "-o", f], "--force");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
}
