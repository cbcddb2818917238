//! `relayscan merge FILE…`: combine the JSON Lines outputs of a sharded (or
//! resumed) scan into one CSV or JSON Lines file and a summary, after
//! checking that they all come from the same scan.

use super::{check_output, exit_code, format_for, open_output, OutputRules};
use crate::cli::MergeArgs;
use crate::output::lines::each_line;
use crate::output::record::{csv_row, CSV_HEADER};
use crate::output::sanitize::json_line;
use crate::output::schema::{Line, LineType, MergeMeta, Meta, MetaTag, SCHEMA_VERSION};
use crate::output::{Format, Summary};
use crate::targets::Shard;
use anyhow::bail;
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

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
        each_line(path, LineType::Meta, |line| {
            let Line::Meta(meta) = line else {
                return Ok(());
            };
            metas += 1;
            if meta.schema_version() > SCHEMA_VERSION {
                bail!(
                    "{} was written with output schema version {}; this relayscan reads {SCHEMA_VERSION}",
                    path.display(),
                    meta.schema_version()
                );
            }
            let h = meta.config_hash().unwrap_or("").to_string();
            match &hash {
                None => hash = Some((h, path.display().to_string())),
                Some((first, from)) if *first != h => bail!(
                    "{} comes from a different scan than {from} (config hash {h} ≠ {first}): \
                     shards must share targets, ports, tests and seed",
                    path.display()
                ),
                Some(_) => {}
            }
            if let Meta::Scan(scan) = &meta {
                shards.insert((scan.shard.index, scan.shard.count));
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
        let meta = Meta::Merge(MergeMeta {
            config_hash: hash.as_ref().map(|(h, _)| h.clone()),
            merged: args.files.iter().map(|p| p.display().to_string()).collect(),
            schema_version: Some(SCHEMA_VERSION),
            shards: shards
                .iter()
                .map(|&(index, count)| Shard { index, count })
                .collect(),
            tool: "relayscan".into(),
            kind: MetaTag::Tag,
            version: env!("CARGO_PKG_VERSION").into(),
        });
        writeln!(w, "{}", json_line(&meta)?)?;
        json_out = Some(w);
    }
    let mut seen: HashSet<(Option<IpAddr>, u16, Option<String>)> = HashSet::new();
    let mut summary = Summary::default();
    let started = std::time::Instant::now();
    for path in &args.files {
        each_line(path, LineType::Result, |line| {
            let Line::Result(r) = line else {
                return Ok(());
            };
            if !seen.insert((r.ip, r.port, r.name.clone())) {
                return Ok(());
            }
            let ip = r.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let accepted: Vec<&str> = r.accepted.iter().map(String::as_str).collect();
            let proven = r.confidence == Some(crate::relay::Confidence::Delivered);
            summary.add_result(r.verdict, SocketAddr::new(ip, r.port), &accepted, proven);
            if let Some(w) = csv_out.as_mut() {
                w.write_record(csv_row(&r))?;
            }
            if let Some(w) = json_out.as_mut() {
                writeln!(w, "{}", json_line(&r)?)?;
            }
            Ok(())
        })?;
    }
    if let Some(mut w) = csv_out {
        w.flush()?;
    }
    if let Some(mut w) = json_out {
        summary.elapsed = started.elapsed();
        writeln!(w, "{}", json_line(&summary.line())?)?;
        w.flush()?;
    }
    if !args.quiet {
        super::print_summary(&summary, super::is_stdout(args.output.as_deref()))?;
    }
    Ok(exit_code(&summary))
}
