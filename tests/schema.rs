//! The output schema: the committed JSON Schema is the one the structs
//! generate, and a real scan of the lab (an open relay, a closed Postfix, a
//! name that does not resolve, through the tests' own DNS server on
//! loopback) writes exactly the golden lines in docs/schema/examples/, each
//! of which reads back into the typed line and writes out unchanged.
//!
//! After a deliberate change, `RELAYSCAN_BLESS=1 cargo test --test schema`
//! rewrites the committed files; review the diff.

mod common;

use common::dns::{lab_world, TestDns};
use common::{relayscan, TestLab, FAST};
use relayscan::output::schema::{json_schema, Line, SCHEMA_VERSION};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

fn bless() -> bool {
    std::env::var_os("RELAYSCAN_BLESS").is_some()
}

/// Compare `got` with the committed file (or write it when blessing).
fn golden(file: &str, got: &str) {
    let path = docs().join(file);
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (RELAYSCAN_BLESS=1 writes it)", path.display()));
    assert!(
        want == got,
        "{} differs from what relayscan writes now; if the change is meant, \
         RELAYSCAN_BLESS=1 cargo test --test schema and review the diff\n--- committed\n{want}\n--- now\n{got}",
        path.display()
    );
}

#[test]
fn committed_schema_is_the_one_the_structs_generate() {
    let text = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    golden("relayscan.schema.json", &text);
    // It is a real schema of the three line types, with the enums spelled
    // as the output spells them.
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let defs = &schema["$defs"];
    let names = |def: &Value| -> Vec<String> {
        // A plain `enum`, or a `oneOf` of enums and consts (variants with docs).
        let mut out = Vec::new();
        let mut stack = vec![def];
        while let Some(v) = stack.pop() {
            if let Some(s) = v["const"].as_str() {
                out.push(s.to_string());
            }
            for x in v["enum"].as_array().into_iter().flatten() {
                out.extend(x.as_str().map(String::from));
            }
            stack.extend(v["oneOf"].as_array().into_iter().flatten());
        }
        out
    };
    let mut status = names(&defs["Status"]);
    status.sort();
    let mut want: Vec<String> = relayscan::relay::Status::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    want.sort();
    assert_eq!(status, want, "{}", defs["Status"]);
    for ty in ["ScanMeta", "MergeMeta", "ResultLine", "SummaryLine"] {
        assert!(defs[ty]["required"].is_array(), "{ty}: {}", defs[ty]);
    }
    let test_ids = defs["TestId"]["enum"].as_array().unwrap();
    assert!(test_ids.iter().any(|v| v == "S1") && test_ids.iter().any(|v| v == "A2"));
}

/// Fields that differ from run to run (times, ports, the local address,
/// the command line) set to fixed values; nothing else is touched.
fn normalise(mut v: Value, lab_port: u16, resolver: &str) -> Value {
    let set = |v: &mut Value, k: &str, to: Value| {
        if v.get(k).is_some_and(|x| !x.is_null()) {
            v[k] = to;
        }
    };
    match v["type"].as_str() {
        Some("meta") => {
            v["argv"] = Value::from(vec!["relayscan", "scan", "…"]);
            v["started"] = "2026-01-01T00:00:00.000Z".into();
            v["config_hash"] = "0000000000000000".into();
            v["seed"] = "0".into();
            v["ports"] = Value::from(vec![2525]);
            v["dns"]["resolvers"] = Value::from(vec!["127.0.0.1:53"]);
        }
        Some("result") => {
            set(&mut v, "timestamp", "2026-01-01T00:00:00.000Z".into());
            v["duration_ms"] = 0.into();
            if v["port"] == lab_port {
                v["port"] = 2525.into();
            }
            let port_zero = |src: &mut Value| {
                if let Some(addr) = src.as_str() {
                    let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip);
                    *src = format!("{ip}:0").into();
                }
            };
            port_zero(&mut v["source"]);
            port_zero(&mut v["vantage"]["source"]);
        }
        Some("summary") => v["duration_ms"] = 0.into(),
        _ => {}
    }
    let text = serde_json::to_string(&v)
        .unwrap()
        .replace(&format!(":{lab_port}"), ":2525")
        .replace(resolver, "127.0.0.1:53");
    serde_json::from_str(&fixed_local_parts(&text)).unwrap()
}

/// The random local part of a control recipient (`rs` and 16 hex digits)
/// made fixed.
fn fixed_local_parts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<rs") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let hex = tail
            .get(..16)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        match hex {
            Some(_) => {
                out.push_str("0123456789abcdef");
                rest = &tail[16..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_lab_scan_writes_the_golden_lines_and_each_reads_back_unchanged() {
    let lab = TestLab::start(&["open-relay", "postfix-closed"]);
    let ip = |name: &str| -> IpAddr { lab.addr(name).split(':').next().unwrap().parse().unwrap() };
    let (open, closed) = (ip("open-relay"), ip("postfix-closed"));
    let dns = TestDns::start(lab_world(open, closed));
    let port = lab.port();
    let out = relayscan()
        .args([
            "scan",
            &open.to_string(),
            &closed.to_string(),
            "nosuch.lab.example",
        ])
        .args(["--format", "jsonl", "--order", "sequential", "--seed", "1"])
        .args(["--resolver", &dns.resolver_arg(), "-p", &port.to_string()])
        .args(FAST)
        .args(["--dns-timeout", "500ms", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an open relay → exit 1\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "meta, three results, summary\n{text}");

    // Every line reads into the typed line and writes back byte for byte:
    // the structs hold every field, with the type the output has.
    for line in &lines {
        let typed: Line = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{e}: does not read as a typed line:\n{line}"));
        assert_eq!(&serde_json::to_string(&typed).unwrap(), line);
    }

    let values: Vec<Value> = lines
        .iter()
        .map(|l| normalise(serde_json::from_str(l).unwrap(), port, &dns.resolver_arg()))
        .collect();
    assert_eq!(values[0]["schema_version"], SCHEMA_VERSION);
    let pick = |f: &dyn Fn(&Value) -> bool| -> &Value {
        values
            .iter()
            .find(|v| v["type"] == "result" && f(v))
            .unwrap_or_else(|| panic!("no such result in\n{text}"))
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
    golden("examples/meta.json", &pretty(&values[0]));
    golden(
        "examples/result-open-relay.json",
        &pretty(pick(&|v| v["verdict"] == "open-relay")),
    );
    golden(
        "examples/result-closed.json",
        &pretty(pick(&|v| v["verdict"] == "closed")),
    );
    golden(
        "examples/result-unresolved.json",
        &pretty(pick(&|v| v["name"] == "nosuch.lab.example")),
    );
    golden("examples/summary.json", &pretty(&values[4]));

    // `merge` reads the file back through the same types: its result lines
    // are the scan's, byte for byte; its meta line is a merge's, versioned.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scan.jsonl"), &text).unwrap();
    let out = relayscan()
        .current_dir(dir.path())
        .args(["merge", "scan.jsonl", "-o", "-", "--format", "jsonl", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = String::from_utf8(out.stdout).unwrap();
    let merged: Vec<&str> = merged.lines().collect();
    assert_eq!(merged.len(), 5, "{merged:?}");
    assert_eq!(merged[1..4], lines[1..4]);
    let meta: Value = serde_json::from_str(merged[0]).unwrap();
    assert_eq!(meta["merged"], Value::from(vec!["scan.jsonl"]));
    assert_eq!(meta["schema_version"], SCHEMA_VERSION);
    assert_eq!(meta["shards"], Value::from(vec!["0/1"]));
    let summary: Value = serde_json::from_str(merged[4]).unwrap();
    assert_eq!(summary["counts"], values[4]["counts"]);
}

#[test]
fn merge_refuses_a_file_of_a_later_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let example = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(docs().join("examples").join(name)).unwrap())
            .unwrap()
    };
    let mut meta = example("meta.json");
    meta["schema_version"] = (SCHEMA_VERSION + 1).into();
    let result = example("result-closed.json");
    std::fs::write(
        dir.path().join("later.jsonl"),
        format!("{meta}\n{result}\n"),
    )
    .unwrap();
    let out = relayscan()
        .current_dir(dir.path())
        .args(["merge", "later.jsonl", "-o", "-", "--format", "csv", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "later.jsonl was written with output schema version {}; this relayscan reads {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        )),
        "{err}"
    );
    // The same file at this version merges.
    meta["schema_version"] = SCHEMA_VERSION.into();
    std::fs::write(dir.path().join("now.jsonl"), format!("{meta}\n{result}\n")).unwrap();
    let out = relayscan()
        .current_dir(dir.path())
        .args(["merge", "now.jsonl", "-o", "-", "--format", "csv", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A result line that is not relayscan's shape is named by file and line.
    std::fs::write(
        dir.path().join("bad.jsonl"),
        format!("{meta}\n{{\"type\":\"result\",\"verdict\":\"maybe\"}}\n"),
    )
    .unwrap();
    let out = relayscan()
        .current_dir(dir.path())
        .args(["merge", "bad.jsonl", "-o", "-", "--format", "csv", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: not a relayscan JSON Lines file"),
        "{err}"
    );
}

#[test]
fn golden_examples_read_as_typed_lines() {
    let dir = docs().join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let typed: Line = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            value,
            "{}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 5, "{n} examples in {}", dir.display());
}
