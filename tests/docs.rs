//! The documentation stays true: every ```console block of the files below
//! is run by trycmd against the built-in lab (`relayscan lab`, on its
//! default addresses 127.0.0.11 upwards, port 2525, as the docs show), and
//! every relative link in README.md and docs/*.md must lead to a file (and
//! heading) that exists.
//!
//! A block that cannot run here (real MTAs, nmap, the internet's DNS, a
//! shell pipe or a Ctrl-C) is fenced ```console,ignore and says that its
//! output was recorded. After a deliberate change of output:
//! `TRYCMD=overwrite cargo test --test docs`, then put the `[..]` wildcards
//! back where times, ports and random local parts vary, and review the diff.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The files whose console blocks run, named one by one: a new docs file
/// is added here deliberately, once its examples run.
const RUN: &[&str] = &[
    "README.md",
    "docs/usage.md",
    "docs/output.md",
    "docs/safety.md",
    "docs/tls-auth.md",
    "docs/large-scans.md",
    "docs/lab.md",
    "docs/testing.md",
    "docs/dns.md",
    "docs/terminal.md",
];

/// The name server the DNS examples ask (`--resolver 127.0.0.1:2553`): the
/// tests' own, with the `lab.example` zone whose MX hosts are the lab's
/// open relay (mx1, 127.0.0.11) and closed Postfix (mx2, 127.0.0.12), and
/// `scope.example`, whose second MX host and `far.scope.example` point at
/// 127.0.0.200, outside the scope the examples give (never dialled).
const DOCS_RESOLVER: &str = "127.0.0.1:2553";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `relayscan lab` as a child process, stopped when dropped; the read end
/// of its standard output stays open as long as it runs.
struct LabProcess(Child, Option<BufReader<std::process::ChildStdout>>);

impl LabProcess {
    /// Start the whole lab on 127.0.0.11:2525 onwards. Another worktree's
    /// lab may hold the port for a while: retry for a minute.
    fn start() -> LabProcess {
        let bin = trycmd::cargo::cargo_bin("relayscan");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(&bin)
                .arg("lab")
                .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("relayscan lab starts");
            let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
            let ready = (&mut stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.starts_with("lab running on port 2525"));
            if ready {
                return LabProcess(child, Some(stdout));
            }
            let _ = child.kill();
            let out = child.wait_with_output().expect("lab exits");
            assert!(
                Instant::now() < deadline,
                "relayscan lab did not start on 127.0.0.11:2525: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        drop(self.1.take());
    }
}

#[test]
fn console_examples_in_the_docs_run_against_the_lab() {
    let _lab = LabProcess::start();
    let _dns = common::dns::TestDns::start_on(
        common::dns::lab_world(
            "127.0.0.11".parse().expect("mx1"),
            "127.0.0.12".parse().expect("mx2"),
        )
        .zone("scope.example")
        .mx("scope.example", 10, "mx1.scope.example")
        .mx("scope.example", 20, "mx2.scope.example")
        .addr("mx1.scope.example", "127.0.0.11".parse().expect("mx1"))
        .addr("mx2.scope.example", "127.0.0.200".parse().expect("mx2"))
        .addr("far.scope.example", "127.0.0.200".parse().expect("far")),
        DOCS_RESOLVER,
    );
    // The examples run in a directory of their own, holding what they read:
    // the lab account's password file.
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("pw.txt"), "labpass\n").expect("pw.txt");
    std::env::set_current_dir(work.path()).expect("cd into the temp dir");

    let cases = trycmd::TestCases::new();
    cases
        .register_bin("relayscan", trycmd::cargo::cargo_bin("relayscan"))
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60));
    for file in RUN {
        cases.case(root().join(file));
    }
    cases.run();
}

/// Every markdown file whose links are checked.
fn linted() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        let ticks = t.chars().take_while(|&c| c == '`').count();
        match &fence {
            Some(f) if t.starts_with(f.as_str()) => fence = None,
            Some(_) => {}
            None if ticks >= 3 => fence = Some("`".repeat(ticks)),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text).lines() {
        if let Some(h) = line.strip_prefix('#') {
            let base = slug(h.trim_start_matches('#'));
            let mut s = base.clone();
            let mut n = 1;
            while !seen.insert(s.clone()) {
                s = format!("{base}-{n}");
                n += 1;
            }
        }
    }
    seen
}

/// The targets of `[text](target)` links in the prose, in inline code too.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}

fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("readable markdown");
    let dir = file.parent().expect("a directory");
    let mut broken = Vec::new();
    for link in links(&text) {
        if link.contains("://") || link.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match link.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.as_str(), None),
        };
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !target.exists() {
            broken.push(format!("{link}: no file {}", target.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            let is_md = target.extension().is_some_and(|x| x == "md");
            if is_md {
                let body = std::fs::read_to_string(&target).expect("readable target");
                if !anchors(&body).contains(anchor) {
                    broken.push(format!(
                        "{link}: no heading #{anchor} in {}",
                        target.display()
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    for file in linted() {
        for b in broken_links(&file) {
            broken.push(format!("{}: {b}", file.display()));
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_checker_finds_what_it_should() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.md");
    std::fs::write(
        dir.path().join("b.md"),
        "# Exit codes\n## TLS, AUTH & fixes\n",
    )
    .expect("b.md");
    std::fs::write(
        &a,
        "[ok](b.md#exit-codes) [ok2](b.md#tls-auth--fixes) [gone](c.md) [bad](b.md#nope)\n\
         [web](https://example.org/x) [self](#top)\n# Top\n```text\n[code](nowhere.md)\n```\n",
    )
    .expect("a.md");
    let broken = broken_links(&a);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].starts_with("c.md"), "{broken:?}");
    assert!(broken[1].starts_with("b.md#nope"), "{broken:?}");
}

#[test]
fn every_file_the_docs_test_runs_exists_and_has_a_console_block_or_says_why_not() {
    for file in RUN {
        let text = std::fs::read_to_string(root().join(file)).expect("listed file exists");
        assert!(
            text.contains("```console\n"),
            "{file} is listed in RUN but has no runnable console block"
        );
        // trycmd reads a fence without a language as a console block: give
        // every block its language.
        for (n, line) in text.lines().enumerate() {
            assert!(
                line.trim() != "```" || is_closing(&text, n),
                "{file}:{}: a code fence without a language",
                n + 1
            );
        }
    }
}

/// Whether the bare fence on line `n` closes a block (an odd count of
/// fences before it).
fn is_closing(text: &str, n: usize) -> bool {
    text.lines()
        .take(n)
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
        % 2
        == 1
}

/// docs/lab.md's tables name every profile of `relayscan lab` at its
/// address, in order, with the verdict the profile expects.
#[test]
fn the_lab_tables_match_the_lab() {
    let text = std::fs::read_to_string(root().join("docs/lab.md")).expect("docs/lab.md");
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with("| 127."))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    let base = u32::from(relayscan::lab::DEFAULT_BASE);
    assert_eq!(rows.len(), relayscan::lab::PROFILES.len(), "{rows:?}");
    for (i, (row, p)) in rows.iter().zip(relayscan::lab::PROFILES).enumerate() {
        let addr = std::net::Ipv4Addr::from(base + i as u32).to_string();
        assert_eq!(row[0], addr, "{row:?}");
        assert_eq!(row[1], p.name, "{row:?}");
        let expected = row.last().expect("a verdict cell");
        assert!(
            expected.starts_with(p.expected.as_str()),
            "{}: the table says {expected}, the profile expects {}",
            p.name,
            p.expected.as_str()
        );
    }
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Mail-server settings the docs quote, which look like test names.
const MTA_SETTINGS: &[&str] = &[
    "smtpd_soft_error_limit",
    "smtpd_error_sleep_time",
    "smtp_max_synprot_errors",
    "smtpd_tls_auth_only",
];

/// The docs name tests as evidence (`a_slow_quit_never_makes_a_fourth_connection`)
/// and source files (`src/smtp/pacer.rs`): each must still exist.
#[test]
fn every_test_and_source_file_the_docs_cite_exists() {
    let mut sources = Vec::new();
    for dir in ["src", "tests", "examples"] {
        rust_files(&root().join(dir), &mut sources);
    }
    let code: String = sources
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable source"))
        .collect();
    let mut missing = Vec::new();
    for file in linted() {
        let text = std::fs::read_to_string(&file).expect("readable markdown");
        for span in text.split('`').skip(1).step_by(2) {
            // `tests/scale.rs::rate_paces_every_connection_not_every_host`
            for part in span.split("::") {
                let part = part.trim();
                let is_path = ["src/", "tests/", "examples/"]
                    .iter()
                    .any(|d| part.starts_with(d))
                    && !part.contains(' ')
                    && !part.contains('*');
                if is_path && !root().join(part).exists() {
                    missing.push(format!("{}: file {part}", file.display()));
                }
                let is_test_name = part.matches('_').count() >= 3
                    && !MTA_SETTINGS.contains(&part)
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if is_test_name && !code.contains(&format!("fn {part}(")) {
                    missing.push(format!("{}: fn {part}", file.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited but gone:\n{}",
        missing.join("\n")
    );
}
