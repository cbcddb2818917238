//! The HTML report in a real browser: headless Chromium opens the file and
//! hands back the DOM after the page's script ran (`--dump-dom`); its
//! console goes to stderr (`--enable-logging=stderr`). Sorting and
//! filtering are driven through the URL fragment, the page's shareable
//! view state.
//!
//! Chromium phones home (component updates, safe browsing, …), so it runs
//! only in a network namespace of its own (`unshare -n`: loopback only,
//! and down), with every background service switched off. Without
//! Chromium or without the right to make a namespace the test skips, with
//! the reason printed; under `CI` or `RELAYSCAN_REAL_MTA=1` it fails
//! instead (`.ci/run` installs Debian's chromium).

mod common;

use common::{relayscan, wait_at_most, TestLab, FAST};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Must the browser test run here (CI), or may it skip?
fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("RELAYSCAN_REAL_MTA").is_ok_and(|v| v == "1")
}

fn skip_or_fail(reason: &str) {
    if required() {
        panic!("browser test cannot run: {reason} (CI or RELAYSCAN_REAL_MTA=1 is set)");
    }
    eprintln!("skipping the browser test: {reason}");
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn can_unshare_network() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What Chromium made of the page: the DOM after the script ran, and its log.
struct Seen {
    dom: String,
    log: String,
}

/// Open `page#fragment` headless, in a network namespace of its own.
fn open(chromium: &Path, page: &Path, fragment: &str) -> Seen {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let dom_file = tmp.path().join("dom.html");
    let log_file = tmp.path().join("log.txt");
    let url = format!("file://{}{fragment}", page.display());
    let mut child = Command::new("unshare")
        .args(["-n", "--"])
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        // Whatever else it writes stays in the temporary directory.
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path())
        .env("XDG_CACHE_HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_file).unwrap())
        .stderr(std::fs::File::create(&log_file).unwrap())
        .spawn()
        .expect("unshare starts");
    let (code, _) = wait_at_most(&mut child, Duration::from_secs(90));
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert_eq!(code, 0, "chromium failed on {url}: {log}");
    assert!(dom.contains("</html>"), "no DOM for {url}: {log}");
    Seen { dom, log }
}

/// A row of the host table as the reader sees it.
#[derive(Debug)]
struct Row {
    target: String,
    verdict: String,
    hidden: bool,
}

fn rows(dom: &str) -> Vec<Row> {
    let table = &dom[dom.find("<table id=\"hosts\"").expect("the host table")..];
    let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    body.split("<tr ")
        .skip(1)
        .map(|tr| {
            let open_tag = &tr[..tr.find('>').unwrap()];
            let between = |a: &str, b: &str| {
                let from = tr.find(a).unwrap() + a.len();
                tr[from..from + tr[from..].find(b).unwrap()].to_string()
            };
            Row {
                target: between("<code>", "</code>"),
                verdict: between("data-verdict=\"", "\""),
                hidden: open_tag.contains("hidden"),
            }
        })
        .collect()
}

fn text_of(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let from = at + dom[at..].find('>').unwrap() + 1;
    dom[from..from + dom[from..].find('<').unwrap()].to_string()
}

fn no_console_messages(seen: &Seen, what: &str) {
    let console: Vec<&str> = seen
        .log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "{what}: console messages: {console:#?}");
    assert!(
        seen.dom.contains("data-ready=\"1\""),
        "{what}: the page's script did not finish (blocked by its own policy?)"
    );
}

#[test]
fn a_reader_sees_counts_relays_and_can_sort_and_filter() {
    let Some(chromium) = find_chromium() else {
        return skip_or_fail("no chromium on PATH (apt-get install chromium)");
    };
    if !can_unshare_network() {
        return skip_or_fail("cannot make a network namespace (unshare -n needs root)");
    }
    let profiles = [
        "open-relay",
        "percent-hack",
        "postfix-closed",
        "exim-closed",
        "sendmail-closed",
    ];
    let lab = TestLab::start(&profiles);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("scan.jsonl");
    let out = relayscan()
        .arg("scan")
        .args(lab.addrs())
        .args(["-q", "--transcript", "-o"])
        .arg(&results)
        .args(FAST)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let page = dir.path().join("report.html");
    relayscan()
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&page)
        .assert()
        .code(0);
    let addr = |name: &str| lab.addr(name);

    // As opened: the counts, the relays first, every row shown.
    let seen = open(&chromium, &page, "");
    no_console_messages(&seen, "plain");
    assert_eq!(text_of(&seen.dom, "count-total"), "5");
    assert_eq!(text_of(&seen.dom, "count-relays"), "2");
    assert_eq!(text_of(&seen.dom, "shown"), "5 of 5 targets shown");
    for relay in ["open-relay", "percent-hack"] {
        assert!(
            seen.dom.contains(&format!(
                "<article class=\"relay\" data-target=\"{}\">",
                addr(relay)
            )),
            "{relay}'s evidence"
        );
    }
    let all = rows(&seen.dom);
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.target.as_str(), r.verdict.as_str()))
        .collect();
    assert_eq!(
        order[..2],
        [
            (addr("open-relay").as_str(), "open-relay"),
            (addr("percent-hack").as_str(), "possible-relay")
        ]
    );
    assert!(all.iter().all(|r| !r.hidden));

    // Sorted by target, descending: the last address first.
    let seen = open(&chromium, &page, "#sort=target&dir=desc");
    no_console_messages(&seen, "sorted");
    let got: Vec<String> = rows(&seen.dom).into_iter().map(|r| r.target).collect();
    let mut want = lab.addrs();
    want.reverse();
    assert_eq!(got, want);
    assert!(seen
        .dom
        .contains("<th data-col=\"target\" aria-sort=\"descending\">"));

    // Filtered: closed targets whose row mentions exim.
    let seen = open(&chromium, &page, "#verdict=closed&q=exim");
    no_console_messages(&seen, "filtered");
    let visible: Vec<String> = rows(&seen.dom)
        .into_iter()
        .filter(|r| !r.hidden)
        .map(|r| r.target)
        .collect();
    assert_eq!(visible, [addr("exim-closed")]);
    assert_eq!(text_of(&seen.dom, "shown"), "1 of 5 targets shown");
}
