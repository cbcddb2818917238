//! Fuzz-style property tests (run in CI with every `cargo test`): arbitrary
//! bytes in, no panic and valid output out — the SMTP reply reader (framing
//! and parser together), the target parser, and whole result records as CSV
//! and JSON Lines. The EHLO parser and the sanitiser have their own
//! properties next to their code; `fuzz/` holds cargo-fuzz targets for
//! longer runs.

use proptest::prelude::*;
use relayscan::output::sanitize::json_line;
use relayscan::output::Record;
use relayscan::relay::facts::Greeting;
use relayscan::relay::{catalogue, classify, Facts, TestFacts};
use relayscan::smtp::reply::decode;
use relayscan::smtp::{Capabilities, Connection, Limits, Reply, SessionError};
use relayscan::targets::Spec;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Bytes that look like SMTP often enough to get past the first line:
/// codes, separators, line ends, text, and raw junk, in any order.
fn smtp_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        "[2-5][0-9][0-9][ -]".prop_map(String::into_bytes),
        "[0-9x]{1,4}[ -]?".prop_map(String::into_bytes),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        "[ -~]{0,30}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..30),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

/// Read replies from `bytes` until the reader reports an error; the stream
/// ends after the bytes, so it must.
fn read_all(bytes: Vec<u8>, limits: Limits) -> (Vec<Reply>, SessionError) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let _ = server.write_all(&bytes).await;
            // Dropped here: the client sees the end of the stream.
        });
        let mut conn = Connection::new(
            Box::new(client),
            limits,
            tokio::time::Instant::now() + Duration::from_secs(60),
        );
        let mut replies = Vec::new();
        loop {
            match conn.read_reply().await {
                Ok(r) => replies.push(r),
                Err(e) => return (replies, e),
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_reply_reader_takes_any_bytes(bytes in smtp_ish()) {
        let limits = Limits::default();
        let (replies, end) = read_all(bytes, limits);
        prop_assert!(matches!(end, SessionError::Closed | SessionError::Protocol(_)), "{:?}", end);
        for r in &replies {
            prop_assert!((200..=599).contains(&r.code));
            prop_assert!(!r.lines.is_empty() && r.lines.len() <= limits.max_reply_lines);
            prop_assert!(r.lines.iter().all(|l| !l.contains('\n')));
        }
    }

    #[test]
    fn the_reply_reader_keeps_tight_caps(bytes in smtp_ish()) {
        let limits = Limits { max_line: 40, max_reply: 120, max_reply_lines: 3, ..Limits::default() };
        let (replies, _) = read_all(bytes, limits);
        for r in &replies {
            prop_assert!(r.lines.len() <= 3);
            let size: usize = r.lines.iter().map(|l| l.len() + 6).sum();
            prop_assert!(size <= 120, "{:?}", r);
        }
    }

    #[test]
    fn the_target_parser_takes_any_text(s in ".{0,80}") {
        if let Ok(spec) = s.parse::<Spec>() {
            prop_assert_ne!(spec.len(), 0);
            // What it prints is what it parsed.
            let again: Spec = spec.to_string().parse().unwrap();
            prop_assert_eq!(again, spec);
        }
    }

    /// Near-valid targets, built from the pieces real ones are made of.
    #[test]
    fn the_target_parser_round_trips_what_it_accepts(
        pieces in proptest::collection::vec(prop_oneof![
            Just("127.0.0.1"), Just("127.255.0.7"), Just("::1"), Just("::"), Just("2001:db8::"),
            Just("ffff"), Just("/"), Just("0"), Just("24"), Just("33"), Just("128"), Just("-"),
            Just(":"), Just("["), Just("]"), Just("25"), Just("65536"), Just("mail"), Just("."),
            Just("example"), Just("Org"), Just("255"), Just("_x"), Just(" "),
        ], 1..7)
    ) {
        let s = pieces.concat();
        if let Ok(spec) = s.parse::<Spec>() {
            prop_assert_ne!(spec.len(), 0);
            let again: Spec = spec.to_string().parse().unwrap();
            prop_assert_eq!(again, spec);
        }
    }

    #[test]
    fn the_target_parser_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = String::from_utf8_lossy(&bytes).parse::<Spec>();
    }

    /// Whatever a server sends ends up in a record whose CSV row is valid,
    /// inert CSV and whose JSON line is valid JSON with the text intact.
    #[test]
    fn records_of_any_server_text_stay_valid_and_inert(
        banner in proptest::collection::vec(any::<u8>(), 0..120),
        ehlo in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 1..6),
        rcpt in proptest::collection::vec(any::<u8>(), 0..120),
        code in 200u16..600,
    ) {
        let banner = decode(&banner);
        let mut facts = Facts::new("127.0.0.1:25".parse().unwrap(), None);
        let hello = Reply { code: 250, lines: ehlo.iter().map(|l| decode(l)).collect() };
        facts.greeting = Greeting {
            banner: Some(Reply::new(220, &banner)),
            hello_command: Some(relayscan::relay::facts::Hello::Ehlo),
            capabilities: Capabilities::from_reply(&hello),
            hello: Some(hello),
            ..Greeting::default()
        };
        let s1 = catalogue::find("S1").unwrap();
        let mut t = TestFacts::skipped(s1.id, s1.kind, "");
        t.skipped = None;
        t.mail_from = Some("<>".into());
        t.rcpt_to = Some("<relaytest@example.net>".into());
        t.mail_reply = Some(Reply::new(250, "ok"));
        t.rcpt_reply = Some(Reply::new(code, &decode(&rcpt)));
        facts.tests.push(t);
        facts.error = Some(format!("protocol-error: {}", decode(&rcpt)).into());
        let verdict = classify(&facts);
        let record = Record::new(facts, verdict);

        // CSV: parses back to the same cells, none of them active.
        let row = record.csv_row();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
        let back = rdr.records().next().unwrap().unwrap();
        prop_assert_eq!(back.iter().collect::<Vec<_>>(), row.iter().map(String::as_str).collect::<Vec<_>>());
        for cell in &row {
            prop_assert!(!cell.chars().any(char::is_control), "{:?}", cell);
            prop_assert!(!cell.starts_with(['=', '+', '-', '@']), "{:?}", cell);
        }

        // JSON Lines: one line, valid, nothing a terminal acts on, text intact.
        let line = json_line(&record.json(true)).unwrap();
        prop_assert!(!line.contains('\n'));
        prop_assert!(!line.chars().any(|c| c.is_control()));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let expected = if banner.is_empty() { "220".to_string() } else { format!("220 {banner}") };
        prop_assert_eq!(value["banner"].as_str().unwrap(), expected.as_str());
    }
}
