//! `relayscan scan`: many targets in, one record per target out.

use super::{execute, exit_code, out, runtime};
use crate::cli::{parse_ports, ScanArgs};
use crate::config::{self, probe_config};
use crate::engine::EngineConfig;
use crate::output::{Format, Writer};
use crate::targets::{self, Plan, Spec};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Most hosts probed at once; beyond this the machine's file limit and the
/// network, not relayscan, are the bottleneck.
const MAX_CONCURRENCY: usize = 10_000;

pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    // Everything is validated before any file is created or socket opened.
    let mut include: Vec<Spec> = Vec::new();
    for t in &args.targets {
        include.push(t.parse()?);
    }
    for file in &args.input {
        include.extend(targets::read_list(file)?);
    }
    let mut exclude: Vec<Spec> = Vec::new();
    for e in &args.exclude {
        exclude.push(e.parse().context("--exclude")?);
    }
    for file in &args.exclude_file {
        exclude.extend(targets::read_list(file)?);
    }
    if let Some(e) = exclude.iter().find(|e| e.port().is_some()) {
        bail!("--exclude {e}: exclusions take addresses or names, not ports");
    }
    let ports = parse_ports(&args.ports).map_err(|e| anyhow::anyhow!("--ports: {e}"))?;
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        bail!("--concurrency must be from 1 to {MAX_CONCURRENCY}");
    }
    let probe = probe_config(&args.probe, args.all_tests)?;
    let plan = Plan::new(&include, &exclude, &ports)?;
    let format = args
        .format
        .unwrap_or_else(|| format_for(args.output.as_deref()));

    let test_ids: Vec<&str> = probe.tests.iter().map(|t| t.id).collect();
    let specs: Vec<String> = include.iter().map(Spec::to_string).collect();
    let excluded: Vec<String> = exclude.iter().map(Spec::to_string).collect();
    let hash = config::config_hash(&[
        &specs.join(","),
        &excluded.join(","),
        &format!("{ports:?}"),
        &test_ids.join(","),
        &probe.foreign_domain,
        &probe.sender,
        &probe.recipient,
        probe.target_domain.as_deref().unwrap_or(""),
        &probe.ehlo,
        &format!("{:?} {}", probe.starttls, probe.implicit_tls),
        probe.auth.as_ref().map_or("", |a| a.user.as_str()),
    ]);
    let meta = json!({
        "type": "meta",
        "tool": "relayscan",
        "version": env!("CARGO_PKG_VERSION"),
        "argv": std::env::args().collect::<Vec<_>>(),
        "started": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        "config_hash": hash,
        "seed": null,
        "shard": null,
        "jobs": plan.len().to_string(),
        "ports": ports,
        "tests": test_ids,
        "foreign_domain": probe.foreign_domain,
        "ehlo": probe.ehlo,
        "starttls": format!("{:?}", probe.starttls).to_lowercase(),
        "implicit_tls": probe.implicit_tls,
        "auth_user": probe.auth.as_ref().map(|a| a.user.clone()),
    });

    let (sink, header) = open_output(args.output.as_deref(), args.force, args.append)?;
    let interactive = !args.quiet && std::io::stderr().is_terminal();
    let progress = interactive.then(|| progress_bar(plan.len()));
    let writer = Writer {
        format,
        transcript: args.probe.transcript,
        meta,
        header,
        progress: progress.clone(),
        interrupted: Arc::new(AtomicBool::new(false)),
        tap: None,
    };
    let engine = EngineConfig {
        concurrency: args.concurrency,
        resolve_timeout: args.probe.connect_timeout.max(Duration::from_secs(5)),
    };
    let summary = runtime()?.block_on(execute(plan, probe, engine, writer, sink))?;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if !args.quiet {
        let table = summary.render();
        if args.output.is_some() {
            out(&table)?;
        } else {
            eprint!("{table}");
        }
    }
    Ok(exit_code(&summary))
}

/// `.jsonl`/`.json`/`.ndjson` → JSON Lines, `.txt` → table, anything else CSV.
fn format_for(path: Option<&Path>) -> Format {
    match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("jsonl" | "json" | "ndjson") => Format::Jsonl,
        Some("txt") => Format::Table,
        _ => Format::Csv,
    }
}

/// Open the output: standard output, or a file that is never silently
/// overwritten. Returns the sink and whether a CSV header is needed.
fn open_output(
    path: Option<&Path>,
    force: bool,
    append: bool,
) -> anyhow::Result<(Box<dyn Write + Send>, bool)> {
    let Some(path) = path else {
        return Ok((Box::new(std::io::stdout()), true));
    };
    let mut options = OpenOptions::new();
    options.write(true);
    if append {
        options.append(true).create(true);
    } else if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "output file {} exists: pass --force to overwrite it or --append to add to it",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        }
    })?;
    let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
    Ok((Box::new(std::io::BufWriter::new(file)), empty))
}

fn progress_bar(total: u128) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    let style =
        ProgressStyle::with_template("{spinner} {pos}/{len} hosts  {per_sec}  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message("relays: 0");
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}
