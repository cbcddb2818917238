//! How the output reads (issue 14, item 4), through the binary against the
//! lab: `--color`, grouped help with examples, the sorted table, `check`'s
//! columns, C3 rows, `--transcript` and the overall line, `check --format`.

mod common;

use common::dns::{lab_world, TestDns};
use common::{relayscan, TestLab, FAST, QUICK};
use relayscan::output::style;
use relayscan::relay::Status;
use std::net::SocketAddr;

/// `text` with every escape sequence relayscan itself makes for a verdict
/// removed: what is left must hold no ESC at all.
fn without_our_colours(text: &str) -> String {
    let mut text = text.to_string();
    for status in Status::ALL {
        let s = style::verdict(status);
        text = text
            .replace(&format!("{s}"), "")
            .replace(&format!("{s:#}"), "");
    }
    text
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn color_always_paints_the_verdicts_and_never_or_no_color_or_a_pipe_do_not() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    let scan = |extra: &[&str], no_color: bool| {
        let mut cmd = relayscan();
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        cmd.args(["scan", "--format", "table", "-q"])
            .args(lab.addrs())
            .args(FAST)
            .args(extra);
        stdout_of(&mut cmd)
    };
    let red = style::verdict(Status::OpenRelay);
    let green = style::verdict(Status::Closed);
    let (code, table) = scan(&["--color", "always"], false);
    assert_eq!(code, Some(1), "{table}");
    assert!(
        table.contains(&format!("{red}open-relay{red:#}")),
        "{table:?}"
    );
    assert!(
        table.contains(&format!("{green}closed{green:#}")),
        "{table:?}"
    );
    // --color always wins over NO_COLOR, as no-color.org asks of an explicit flag.
    let (_, forced) = scan(&["--color=always"], true);
    assert!(forced.contains('\x1b'), "{forced:?}");
    // Columns line up with and without colour.
    assert_eq!(
        without_our_colours(&table),
        scan(&["--color", "never"], false).1
    );

    for (extra, no_color, why) in [
        (&["--color", "never"][..], false, "--color never"),
        (&[][..], true, "NO_COLOR"),
        (&[][..], false, "a pipe (auto)"),
        (&["--color", "auto"][..], false, "a pipe (--color auto)"),
    ] {
        let (_, text) = scan(extra, no_color);
        assert!(text.contains("open-relay"), "{why}: {text}");
        assert!(!text.contains('\x1b'), "{why}: {text:?}");
    }

    // With -o the summary is on standard output: coloured only when asked.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out.csv");
    let summary = |when: &str| {
        let mut cmd = relayscan();
        cmd.env_remove("NO_COLOR")
            .args(["scan", "--force", "--color", when, "-o"])
            .arg(&csv)
            .args(lab.addrs())
            .args(FAST);
        stdout_of(&mut cmd).1
    };
    let coloured = summary("always");
    assert!(coloured.contains(&format!("RELAYS FOUND: 1\n  {}", lab.addr("open-relay"))));
    assert!(
        coloured.contains(&format!("{red}open-relay{red:#}")),
        "{coloured:?}"
    );
    assert!(
        !std::fs::read_to_string(&csv).unwrap().contains('\x1b'),
        "CSV stays plain"
    );
    assert!(!summary("auto").contains('\x1b'));

    // The check report: the verdict line.
    let mut cmd = relayscan();
    cmd.args(["check", &lab.addr("open-relay"), "--color", "always"])
        .args(FAST);
    let (code, report) = stdout_of(&mut cmd);
    assert_eq!(code, Some(1));
    assert!(
        report.contains(&format!("  verdict     {red}OPEN-RELAY{red:#}")),
        "{report:?}"
    );
    let mut cmd = relayscan();
    cmd.env_remove("NO_COLOR")
        .args(["check", &lab.addr("open-relay")])
        .args(FAST);
    let (_, report) = stdout_of(&mut cmd);
    assert!(report.contains("  verdict     OPEN-RELAY"), "{report:?}");
    assert!(!report.contains('\x1b'), "{report:?}");
}

#[test]
fn server_text_cannot_bring_its_own_escapes_even_in_colour() {
    let lab = TestLab::start(&["escape-codes", "open-relay"]);
    let mut cmd = relayscan();
    cmd.args(["scan", "--format", "table", "-q", "--color", "always"])
        .args(lab.addrs())
        .args(QUICK);
    let (_, table) = stdout_of(&mut cmd);
    assert!(table.contains('\x1b'), "our colour is there: {table:?}");
    let rest = without_our_colours(&table);
    assert!(!rest.contains('\x1b'), "a foreign escape: {rest:?}");
    assert!(!rest.contains('\u{9b}'), "a C1 CSI: {rest:?}");
    assert!(
        rest.contains("\\x1B"),
        "the server's escapes shown inert: {rest}"
    );

    let mut cmd = relayscan();
    cmd.args(["check", &lab.addr("escape-codes"), "--color", "always"])
        .args(["--transcript"])
        .args(QUICK);
    let (code, report) = stdout_of(&mut cmd);
    assert_eq!(code, Some(0), "{report}");
    let rest = without_our_colours(&report);
    assert!(report.contains('\x1b'), "{report:?}");
    assert!(
        !rest.contains('\x1b') && !rest.contains('\u{9b}'),
        "{rest:?}"
    );
    assert!(rest.contains("S: 220"), "{rest}");
    assert!(rest.contains("\\x1B]52;c;"), "{rest}");
}

#[test]
fn help_is_grouped_with_examples_and_styled_only_when_asked() {
    let help = |args: &[&str]| {
        let mut cmd = relayscan();
        cmd.env_remove("NO_COLOR").args(args);
        let (code, text) = stdout_of(&mut cmd);
        assert_eq!(code, Some(0), "{args:?}");
        text
    };
    let scan = help(&["scan", "--help"]);
    for heading in [
        "\nTargets:\n",
        "\nOutput:\n",
        "\nRun:\n",
        "\nProbe:\n",
        "\nTLS/AUTH:\n",
        "\nDNS:\n",
        "\nSafety:\n",
        "\nExamples:\n",
    ] {
        assert!(scan.contains(heading), "scan --help lacks {heading:?}");
    }
    // Options sit under their heading: --scope under Safety, --resolver under DNS.
    let section = |text: &str, heading: &str| -> String {
        let start = text.find(&format!("\n{heading}:\n")).unwrap();
        let rest = &text[start + heading.len() + 3..];
        rest[..rest
            .find("\n\n\n")
            .or(rest.find("\n\nExamples"))
            .unwrap_or(rest.len())]
            .to_string()
    };
    assert!(section(&scan, "Safety").contains("--scope"));
    assert!(section(&scan, "DNS").contains("--resolver"));
    assert!(section(&scan, "TLS/AUTH").contains("--auth-insecure"));
    assert!(section(&scan, "Output").contains("--format"));
    assert!(scan.contains("relayscan scan -i hosts.txt -p 25,465,587"));

    let check = help(&["check", "-h"]);
    for heading in [
        "\nTarget:\n",
        "\nOutput:\n",
        "\nProbe:\n",
        "\nTLS/AUTH:\n",
        "\nDNS:\n",
        "\nSafety:\n",
        "\nExamples:\n",
    ] {
        assert!(check.contains(heading), "check -h lacks {heading:?}");
    }
    assert!(check.contains("The ONE port"), "{check}");
    assert!(check.contains("relayscan check example.org"), "{check}");
    assert!(
        !check.contains('\x1b') && !scan.contains('\x1b'),
        "a pipe: no colour"
    );

    // clap's help in colour when asked, in the verdicts' palette.
    let coloured = help(&["--color", "always", "scan", "--help"]);
    let header = relayscan::output::style::HELP.get_header();
    assert!(
        coloured.contains(&format!("{header}Targets:{header:#}")),
        "{coloured:?}"
    );
    let never = help(&["scan", "--help", "--color=never"]);
    assert!(!never.contains('\x1b'));
}

#[test]
fn the_table_is_sorted_by_address_then_port() {
    // Two labs on the same addresses, each on its own port: completion
    // order would interleave them any way; sorted, each address's two
    // ports come together, the lower first.
    let a = TestLab::start(&[
        "open-relay",
        "postfix-closed",
        "exim-closed",
        "auth-required",
    ]);
    let b = TestLab::start(&[
        "open-relay",
        "postfix-closed",
        "exim-closed",
        "auth-required",
    ]);
    let mut cmd = relayscan();
    cmd.args([
        "scan", "--format", "table", "-q", "--order", "random", "--seed", "7",
    ])
    .args(b.addrs().iter().rev())
    .args(a.addrs())
    .args(FAST);
    let (code, table) = stdout_of(&mut cmd);
    assert_eq!(code, Some(1), "{table}");
    let rows: Vec<SocketAddr> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows.len(), 8, "{table}");
    let mut sorted = rows.clone();
    sorted.sort_by_key(|a| (a.ip(), a.port()));
    assert_eq!(rows, sorted, "{table}");
    assert!(table.starts_with("ADDRESS "), "the header first: {table}");
}

#[test]
fn check_columns_use_the_width_and_never_cut_an_address() {
    let lab = TestLab::start(&["percent-hack"]);
    let addr = lab.addr("percent-hack");
    let ip = addr.split(':').next().unwrap();
    let report = |columns: &str| {
        let mut cmd = relayscan();
        cmd.env("COLUMNS", columns)
            .args(["check", &addr])
            .args(FAST);
        let (code, text) = stdout_of(&mut cmd);
        assert_eq!(code, Some(1), "{text}");
        text
    };
    // R1, R2, R3 differ only at the end of the recipient: all three whole.
    let wanted = [
        format!("<relaytest%example.net@[{ip}]>"),
        "<relaytest%example.net@percent-hack.lab.example>".to_string(),
        "<relaytest%example.net@lab.example>".to_string(),
    ];
    for columns in ["60", "100", "200"] {
        let text = report(columns);
        let start = text.find("\n  test ").expect("a test table") + 1;
        let table = &text[start..];
        let table = &table[..table.find("\n\n").unwrap_or(table.len())];
        for (id, rcpt) in ["R1", "R2", "R3"].iter().zip(&wanted) {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("  {id} ")))
                .unwrap_or_else(|| panic!("{id} row at {columns}: {table}"));
            assert!(row.contains(rcpt.as_str()), "{columns} cols: {row}");
        }
        assert!(
            !table.contains('…'),
            "{columns} cols cut something: {table}"
        );
        for line in table.lines() {
            // Only a row's addresses may pass the width (they are never cut).
            if !line.contains('→') {
                assert!(
                    line.chars().count() <= columns.parse().unwrap(),
                    "{columns} cols: {line:?}"
                );
            }
        }
    }
    // Wide: the reply on the test's own line; narrow: on the line under it.
    let wide = report("200");
    assert!(
        wide.lines()
            .any(|l| l.starts_with("  R1 ") && l.ends_with("250 2.1.5 Ok")),
        "{wide}"
    );
    let narrow = report("60");
    let mut lines = narrow.lines().skip_while(|l| !l.starts_with("  R1 "));
    assert!(!lines.next().unwrap().contains("250 2.1.5"), "{narrow}");
    assert_eq!(lines.next().unwrap().trim(), "250 2.1.5 Ok", "{narrow}");

    // One C3 row per place a trick named, each saying which tricks it controls.
    for (control, tricks) in [
        ("C3-ip", "R1"),
        ("C3-host", "R2"),
        ("C3-domain", "R3"),
        ("C3-local", "R5"),
    ] {
        let mut rows = wide
            .lines()
            .skip_while(|l| !l.starts_with(&format!("  {control} ")));
        assert!(rows.next().is_some(), "{control} row: {wide}");
        // Under the row (after its wrapped reply), before the next test.
        let under: Vec<&str> = rows.take_while(|l| l.starts_with("      ")).collect();
        assert!(
            under
                .iter()
                .any(|l| l.trim() == format!("controls {tricks}: any local part there?")),
            "{control}: {under:?}"
        );
    }
}

#[test]
fn check_transcript_shows_the_dialogue_with_auth_redacted() {
    let lab = TestLab::start(&["auth-required"]);
    let secret = relayscan::lab::LAB_PASSWORD;
    let out = relayscan()
        .args(["check", &lab.addr("auth-required"), "--transcript"])
        .args(["--auth", relayscan::lab::LAB_USER, "--auth-insecure"])
        .env("RELAYSCAN_AUTH_PASSWORD", secret)
        .args(FAST)
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    let dialogue = &report[report.find("\n  transcript\n").expect("a transcript")..];
    for line in [
        "  S: 220 ",
        "  C: EHLO scanner.relayscan.example",
        "  C: MAIL FROM:<",
        "  C: AUTH PLAIN <redacted>",
        "  S: 235 ",
        "  C: QUIT",
    ] {
        assert!(
            dialogue.lines().any(|l| l.starts_with(line)),
            "{line:?} missing: {dialogue}"
        );
    }
    assert!(!report.contains(secret), "the password in the report");
    assert!(
        !report.contains("AGxhYnVzZXIAbGFicGFzcw=="),
        "the PLAIN response"
    );
    // Without --transcript, no dialogue.
    let out = relayscan()
        .args(["check", &lab.addr("auth-required")])
        .args(FAST)
        .output()
        .unwrap();
    assert!(!String::from_utf8(out.stdout)
        .unwrap()
        .contains("transcript"));
}

/// A check of an open relay runs the trick batch on connections that overlap
/// the first one: each must still read as one block, connect to close.
#[test]
fn check_transcript_shows_each_connection_as_one_block() {
    let lab = TestLab::start(&["open-relay"]);
    let out = relayscan()
        .args(["check", &lab.addr("open-relay"), "--transcript"])
        .args(FAST)
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    let dialogue = &report[report.find("\n  transcript\n").expect("a transcript")..];
    let mut open: Option<String> = None;
    let mut blocks = 0;
    let mut previous = "";
    for line in dialogue.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("* connect ") {
            assert!(open.is_none(), "{line:?} inside another block:\n{dialogue}");
            let number = rest.rsplit_once("(connection ").expect("a number").1;
            open = Some(number.trim_end_matches(')').to_string());
            blocks += 1;
        } else if let Some(rest) = line.strip_prefix("* close connection ") {
            let number = rest.split_whitespace().next().expect("a number");
            assert_eq!(open.as_deref(), Some(number), "{line:?}:\n{dialogue}");
            open = None;
        } else if line.starts_with("S: 220 ") {
            assert!(
                previous.starts_with("* connect "),
                "a greeting outside its block:\n{dialogue}"
            );
        } else if line.starts_with("C: ") || line.starts_with("S: ") {
            assert!(open.is_some(), "{line:?} outside any block:\n{dialogue}");
        }
        previous = line;
    }
    assert!(
        blocks >= 2,
        "the open relay was tested on {blocks} connection(s):\n{dialogue}"
    );
}

#[test]
fn check_format_json_is_the_json_alias_and_text_the_report() {
    let lab = TestLab::start(&["open-relay"]);
    let run = |extra: &[&str]| {
        let mut cmd = relayscan();
        cmd.args(["check", &lab.addr("open-relay")])
            .args(extra)
            .args(FAST);
        stdout_of(&mut cmd)
    };
    let (code, json) = run(&["--format", "json"]);
    assert_eq!(code, Some(1));
    let line: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(line["verdict"], "open-relay");
    let (_, alias) = run(&["--json"]);
    let alias: serde_json::Value = serde_json::from_str(alias.trim_end()).unwrap();
    assert_eq!(alias["verdict"], line["verdict"]);
    assert_eq!(alias["accepted"], line["accepted"]);
    let (code, text) = run(&["--format", "text"]);
    assert_eq!(code, Some(1));
    assert!(text.starts_with("relayscan check "), "{text}");
    // --format json with --transcript keeps the dialogue in JSON.
    let (_, json) = run(&["--format=json", "--transcript"]);
    let line: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert!(line["transcript"].as_array().is_some_and(|t| !t.is_empty()));
    // The two spellings together are refused, like every contradiction.
    let out = relayscan()
        .args([
            "check",
            &lab.addr("open-relay"),
            "--json",
            "--format",
            "text",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot be used with"));
}

#[test]
fn check_of_a_domain_ends_with_one_overall_line() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    let ip = |name: &str| lab.addr(name).split(':').next().unwrap().parse().unwrap();
    let dns = TestDns::start(lab_world(ip("open-relay"), ip("postfix-closed")));
    let mut cmd = relayscan();
    cmd.args(["check", "lab.example", "--dnsbl", "none"])
        .args([
            "--resolver",
            &dns.resolver_arg(),
            "-p",
            &lab.port().to_string(),
        ])
        .args(["--dns-timeout", "500ms"])
        .args(FAST);
    let (code, report) = stdout_of(&mut cmd);
    assert_eq!(code, Some(1), "{report}");
    let last = report.lines().last().unwrap_or_default();
    assert_eq!(
        last, "overall       OPEN-RELAY (worst of 2 servers: 1 open-relay, 1 closed; 1 relay)",
        "{report}"
    );
    assert_eq!(report.matches("overall ").count(), 1, "{report}");
    // One server: no overall line.
    let mut cmd = relayscan();
    cmd.args(["check", &lab.addr("postfix-closed")]).args(FAST);
    let (code, report) = stdout_of(&mut cmd);
    assert_eq!(code, Some(0));
    assert!(!report.contains("overall"), "{report}");
}

#[test]
fn on_a_terminal_the_bar_counts_jobs_and_the_header_gets_its_own_line() {
    // util-linux `script` gives the scan a pseudo-terminal; without it
    // there is no terminal to test on (the unit tests in
    // src/output/progress.rs cover the rate and ETA texts).
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no `script` here: the terminal test is skipped");
        return;
    }
    let lab = TestLab::start(&["open-relay", "postfix-closed", "exim-closed"]);
    let command = format!(
        "{} scan --format table {} {}",
        env!("CARGO_BIN_EXE_relayscan"),
        lab.addrs().join(" "),
        FAST.join(" ")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("RELAYSCAN_SCOPE", common::TEST_SCOPE)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The bar knows the total from the plan and shows a rounded rate.
    assert!(text.contains("/3 hosts"), "{text:?}");
    assert!(text.contains("3/3 hosts"), "{text:?}");
    assert!(text.contains(" hosts/s"), "{text:?}");
    assert!(!text.contains("ETA 0s"), "{text:?}");
    // The bar is drawn with `\r` and cleared with ESC[2K; the table header
    // must begin a line of its own, not follow the bar's text.
    let header = text
        .split(['\r', '\n'])
        .find(|s| s.contains("ADDRESS"))
        .expect("the table header");
    assert!(
        header.trim_start_matches("\x1b[2K").starts_with("ADDRESS "),
        "{header:?}"
    );
    // NO_COLOR: the verdicts are plain even on a terminal.
    assert!(text.contains(" open-relay "), "{text:?}");
    assert!(!text.contains("\x1b[31m"), "{text:?}");
}
