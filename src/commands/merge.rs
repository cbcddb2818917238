//! `relayscan merge FILE…`: combine the JSON Lines outputs of a sharded (or
//! resumed) scan into one CSV or JSON Lines file and a summary, after
//! checking that they all come from the same scan.

use super::{check_output, exit_code, format_for, open_output, OutputRules};
use crate::cli::MergeArgs;
use crate::output::lines::Lines;
use crate::output::record::{csv_row, CSV_HEADER};
use crate::output::{Format, Summary};
use crate::relay::Status;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::io::{BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Read every JSON line of a file, naming file and line on bad JSON or a
/// line longer than any record (`merge /dev/zero`). A torn last line (an
/// interrupted write, no newline) is skipped with a warning.
fn each_line(path: &Path, mut f: impl FnMut(Value) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = Lines::new(BufReader::new(file), path);
    while let Some(line) = lines.next_line()? {
        if line.text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&line.text) {
            Ok(v) => f(v)?,
            Err(_) if !line.terminated => {
                eprintln!(
                    "relayscan: {}:{}: skipping a torn last line",
                    path.display(),
                    lines.number
                )
            }
            Err(e) => bail!(
                "{}:{}: not a relayscan JSON Lines file ({e})",
                path.display(),
                lines.number
            ),
        }
    }
    Ok(())
}

pub(crate) fn run(args: MergeArgs) -> anyhow::Result<i32> {
    // The output is checked before any input is read.
    let format = format_for(args.format.map(Format::from), args.output.as_deref())?;
    if format == Format::Table {
        bail!("merge writes csv or jsonl: name the output .csv or .jsonl, or pass --format");
    }
    let dest = check_output(
        args.output.as_deref(),
        &OutputRules {
            force: args.force,
            can_append: false,
            ..OutputRules::new(format)
        },
    )?;

    // Pass 1: the meta lines must agree.
    let mut hash: Option<(String, String)> = None;
    let mut shards: BTreeSet<(u64, u64)> = BTreeSet::new();
    for path in &args.files {
        let mut metas = 0;
        each_line(path, |v| {
            if v["type"] != "meta" {
                return Ok(());
            }
            metas += 1;
            let h = v["config_hash"].as_str().unwrap_or("").to_string();
            match &hash {
                None => hash = Some((h, path.display().to_string())),
                Some((first, from)) if *first != h => bail!(
                    "{} comes from a different scan than {from} (config hash {h} ≠ {first}): \
                     shards must share targets, ports, tests and seed",
                    path.display()
                ),
                Some(_) => {}
            }
            if let Some((k, n)) = v["shard"].as_str().and_then(|s| s.split_once('/')) {
                if let (Ok(k), Ok(n)) = (k.parse(), n.parse()) {
                    shards.insert((k, n));
                }
            }
            Ok(())
        })?;
        if metas == 0 {
            bail!(
                "{} has no meta line: merge reads relayscan's JSON Lines output (--format jsonl)",
                path.display()
            );
        }
    }
    let counts: BTreeSet<u64> = shards.iter().map(|(_, n)| *n).collect();
    if counts.len() > 1 {
        bail!("the files were cut into different numbers of shards: {counts:?}");
    }
    if let Some(&n) = counts.iter().next() {
        let missing: Vec<String> = (0..n)
            .filter(|k| !shards.contains(&(*k, n)))
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "relayscan: warning: shard(s) {} missing: the merge is partial",
                missing.join(", ")
            );
        }
    }

    // Pass 2: results, each target once (a resumed run may repeat one).
    let sink = open_output(&dest, false)?.sink;
    let mut csv_out = None;
    let mut json_out = None;
    if format == Format::Csv {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(sink);
        w.write_record(CSV_HEADER)?;
        csv_out = Some(w);
    } else {
        let mut w = std::io::BufWriter::new(sink);
        let meta = json!({
            "type": "meta",
            "tool": "relayscan",
            "version": env!("CARGO_PKG_VERSION"),
            "merged": args.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "config_hash": hash.as_ref().map(|(h, _)| h.clone()),
            "shards": shards.iter().map(|(k, n)| format!("{k}/{n}")).collect::<Vec<_>>(),
        });
        writeln!(w, "{meta}")?;
        json_out = Some(w);
    }
    let mut seen: HashSet<(Option<String>, u64, Option<String>)> = HashSet::new();
    let mut summary = Summary::default();
    let started = std::time::Instant::now();
    for path in &args.files {
        each_line(path, |v| {
            if v["type"] != "result" {
                return Ok(());
            }
            let key = (
                v["ip"].as_str().map(String::from),
                v["port"].as_u64().unwrap_or(0),
                v["name"].as_str().map(String::from),
            );
            if !seen.insert(key) {
                return Ok(());
            }
            let verdict: Status = serde_json::from_value(v["verdict"].clone())
                .with_context(|| format!("{}: unknown verdict {}", path.display(), v["verdict"]))?;
            let ip: IpAddr = v["ip"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let port = u16::try_from(v["port"].as_u64().unwrap_or(0)).unwrap_or(0);
            let accepted: Vec<&str> = v["accepted"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            summary.add_result(verdict, SocketAddr::new(ip, port), &accepted);
            if let Some(w) = csv_out.as_mut() {
                w.write_record(csv_row(&v))?;
            }
            if let Some(w) = json_out.as_mut() {
                writeln!(w, "{v}")?;
            }
            Ok(())
        })?;
    }
    if let Some(mut w) = csv_out {
        w.flush()?;
    }
    if let Some(mut w) = json_out {
        summary.elapsed = started.elapsed();
        writeln!(w, "{}", summary.json())?;
        w.flush()?;
    }
    if !args.quiet {
        super::print_summary(&summary, super::is_stdout(args.output.as_deref()))?;
    }
    Ok(exit_code(&summary))
}
