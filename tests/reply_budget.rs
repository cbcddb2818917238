//! The per-host budget for reply text: a server that answers every command
//! with a reply just inside the caps (about 60 KB) must not make its record
//! a multi-megabyte line. An in-test server on loopback plays it.

mod common;

use common::{relayscan, FAST};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// Lines of a maximal reply, each of `LINE` characters of text: 15 × 4,004
/// bytes, inside the 64 KB reply cap and the 4,096-byte line cap.
const LINES: usize = 15;
const LINE: usize = 4000;

/// A reply of `LINES` lines: `first` and then filler.
fn maximal(code: u16, first: &str) -> Vec<u8> {
    let mut out = format!("{code}-{first}\r\n");
    for i in 1..LINES {
        let sep = if i + 1 == LINES { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{}\r\n", "x".repeat(LINE)));
    }
    out.into_bytes()
}

/// A closed server (PIPELINING, relaying refused) whose every reply is maximal.
fn serve(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    if writer
        .write_all(&maximal(220, "mx.budget.example ESMTP"))
        .is_err()
    {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => {
                let mut r = b"250-mx.budget.example\r\n250-PIPELINING\r\n".to_vec();
                r.extend(maximal(250, "8BITMIME"));
                r
            }
            "MAIL" | "RSET" => maximal(250, "2.1.0 Ok"),
            "RCPT" => maximal(554, "5.7.1 Relay access denied"),
            "QUIT" => {
                let _ = writer.write_all(b"221 2.0.0 Bye\r\n");
                return;
            }
            _ => maximal(502, "5.5.2 Error: command not recognized"),
        };
        if writer.write_all(&reply).is_err() {
            return;
        }
    }
}

#[test]
fn maximal_replies_to_every_command_keep_the_record_under_256_kb_and_say_what_was_cut() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    let out = relayscan()
        .args(["scan", &addr.to_string(), "--format", "jsonl", "-q"])
        .args(FAST)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"type\":\"result\""))
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    let result: serde_json::Value = serde_json::from_str(line).expect("JSON");
    eprintln!("result line: {} bytes", line.len());
    assert_eq!(result["verdict"], "closed", "{}", &line[..2000]);
    // Without the budget every test's MAIL and RCPT reply would be kept
    // whole: dozens of 60 KB replies, several MB on one line.
    assert!(
        line.len() <= 256 * 1024,
        "the record is {} bytes",
        line.len()
    );
    let notes: Vec<&str> = result["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let cut = notes
        .iter()
        .find(|n| n.starts_with("replies cut: "))
        .unwrap_or_else(|| panic!("no note on the cut: {notes:?}"));
    assert!(cut.contains("per-host budget of 96 KB"), "{cut}");
    // The refusals stay readable: every RCPT reply keeps its code and the
    // start of its first line.
    let tests = result["tests"].as_array().expect("tests");
    let refused = tests
        .iter()
        .filter(|t| {
            t["replies"][1]
                .as_str()
                .is_some_and(|r| r.starts_with("554 5.7.1 Relay access denied"))
        })
        .count();
    let answered = tests
        .iter()
        .filter(|t| t["replies"].as_array().is_some_and(|r| r.len() == 2))
        .count();
    assert!(answered > 10, "{answered} tests answered");
    assert_eq!(
        refused, answered,
        "every RCPT reply keeps its code and phrase"
    );
}
