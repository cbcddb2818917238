//! One module per subcommand. Each turns its arguments into validated
//! settings, runs, and returns the process exit code.

pub mod check;
pub mod demo;
pub mod lab;
pub mod merge;
pub mod scan;

use crate::engine::{self, EngineConfig, Skip};
use crate::output::writer::{self, Summary, Writer};
use crate::output::Format;
use crate::relay::ProbeConfig;
use crate::targets::{Order, Plan, Schedule, Shard};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Exit codes (README, "Exit codes").
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_RELAY: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;

/// Which jobs a run does: the schedule, where to start, what to skip.
pub struct Work {
    pub schedule: Schedule,
    pub start: u128,
    pub skip: Skip,
}

impl Work {
    /// All of a plan, in address order.
    pub fn sequential(plan: Plan) -> Work {
        Work {
            schedule: Schedule::new(Arc::new(plan), Order::Sequential, 0, Shard::default()),
            start: 0,
            skip: Skip::default(),
        }
    }
}

/// Run the work through the engine into the writer and return the summary.
pub async fn execute(
    work: Work,
    probe: ProbeConfig,
    engine_cfg: EngineConfig,
    writer_cfg: Writer,
    sink: Box<dyn Write + Send>,
) -> anyhow::Result<Summary> {
    // Enough room to keep every probe busy while the writer flushes.
    let (tx, rx) = mpsc::channel(engine_cfg.concurrency.clamp(16, 4096));
    let interrupted = writer_cfg.interrupted.clone();
    let started = Instant::now();
    let writer = tokio::task::spawn_blocking(move || writer::run(writer_cfg, rx, sink, started));
    let schedule = Arc::new(work.schedule);
    engine::run(
        schedule,
        work.start,
        work.skip,
        Arc::new(probe),
        engine_cfg,
        tx,
        interrupted,
    )
    .await;
    let summary = writer
        .await
        .map_err(|e| anyhow::anyhow!("the writer failed: {e}"))??;
    Ok(summary)
}

/// The exit code for a finished scan or check (README, "Exit codes"): a
/// relay outranks everything; then an interrupt; then any target that could
/// not be tested (a CI gate must not pass on a server it never examined).
pub fn exit_code(summary: &Summary) -> i32 {
    if summary.relay_count > 0 {
        EXIT_RELAY
    } else if summary.interrupted {
        EXIT_INTERRUPTED
    } else if summary.untested() > 0 || summary.total == 0 {
        EXIT_ERROR
    } else {
        EXIT_CLEAN
    }
}

/// Write to standard output, returning errors (a closed pipe) instead of
/// panicking as `print!` does.
pub fn out(text: impl AsRef<str>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_ref().as_bytes())?;
    stdout.flush()
}

/// `.jsonl`/`.json`/`.ndjson` → JSON Lines, `.txt` → table, anything else CSV.
pub fn format_for(path: Option<&Path>) -> Format {
    match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("jsonl" | "json" | "ndjson") => Format::Jsonl,
        Some("txt") => Format::Table,
        _ => Format::Csv,
    }
}

/// Open the output: standard output, or a file that is never silently
/// overwritten. Returns the sink, whether a CSV header is needed, and the
/// file's length before this run.
pub fn open_output(
    path: Option<&Path>,
    force: bool,
    append: bool,
) -> anyhow::Result<(Box<dyn Write + Send>, bool, u64)> {
    let Some(path) = path else {
        return Ok((Box::new(std::io::stdout()), true, 0));
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
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((Box::new(std::io::BufWriter::new(file)), len == 0, len))
}

/// The summary table at the end: on stdout when the data went to a file,
/// else on stderr (stdout holds nothing but data).
pub fn print_summary(summary: &Summary, data_on_stdout: bool) -> std::io::Result<()> {
    let table = summary.render();
    if data_on_stdout {
        eprint!("{table}");
        Ok(())
    } else {
        out(&table)
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
