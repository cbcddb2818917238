//! One module per subcommand. Each turns its arguments into validated
//! settings, runs, and returns the process exit code.

pub mod check;
pub mod demo;
pub mod lab;
pub mod scan;

use crate::engine::{self, EngineConfig, Skip};
use crate::output::writer::{self, Summary, Writer};
use crate::relay::ProbeConfig;
use crate::targets::{Order, Plan, Schedule, Shard};
use std::io::Write;
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

/// The exit code for a finished scan.
pub fn exit_code(summary: &Summary) -> i32 {
    if summary.relay_count > 0 {
        EXIT_RELAY
    } else if summary.interrupted {
        EXIT_INTERRUPTED
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

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
