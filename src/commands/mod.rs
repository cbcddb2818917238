//! One module per subcommand. Each turns its arguments into validated
//! settings, runs, and returns the process exit code.

pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod diff;
pub(crate) mod dispatch;
pub(crate) mod docs;
pub(crate) mod lab;
pub(crate) mod merge;
pub(crate) mod report;
pub(crate) mod scan;

use crate::engine::{self, EngineConfig, Skip};
use crate::output::writer::{self, Summary, Writer};
use crate::output::Format;
use crate::relay::ProbeConfig;
use crate::targets::{Order, Plan, Schedule, Shard};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Exit codes (README, "Exit codes").
pub(crate) const EXIT_CLEAN: i32 = 0;
pub(crate) const EXIT_RELAY: i32 = 1;
pub(crate) const EXIT_ERROR: i32 = 2;
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Which jobs a run does: the schedule, where to start, what to skip.
pub(crate) struct Work {
    pub schedule: Schedule,
    pub start: u128,
    pub skip: Skip,
}

impl Work {
    /// All of a plan, in address order.
    pub(crate) fn sequential(plan: Plan) -> Work {
        Work {
            schedule: Schedule::new(Arc::new(plan), Order::Sequential, 0, Shard::default()),
            start: 0,
            skip: Skip::default(),
        }
    }
}

/// Run the work through the engine into the writer and return the summary.
pub(crate) async fn execute(
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
pub(crate) fn exit_code(summary: &Summary) -> i32 {
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
pub(crate) fn out(text: impl AsRef<str>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_ref().as_bytes())?;
    stdout.flush()
}

pub(crate) use crate::config::{format_for, is_stdout};

/// Where records go, decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    Stdout,
    /// A regular file: created, replaced (`replace`) or appended to.
    File {
        path: PathBuf,
        replace: bool,
    },
    /// A device or FIFO (`/dev/null`, a named pipe): written as it is,
    /// never truncated, renamed or read.
    Special(PathBuf),
}

impl Destination {
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Destination::Stdout => None,
            Destination::File { path, .. } | Destination::Special(path) => Some(path),
        }
    }
}

/// What a command asks of its output file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputRules {
    pub format: Format,
    pub force: bool,
    pub append: bool,
    /// The command has `--append` (merge has not: its message must not offer it).
    pub can_append: bool,
    /// The file may be replaced without `--force` (demo's own default file).
    pub replaceable: bool,
    /// An existing empty file may be taken over: a `--resume` scan killed
    /// after creating its output but before its first checkpoint.
    pub take_empty: bool,
}

impl OutputRules {
    pub(crate) fn new(format: Format) -> Self {
        OutputRules {
            format,
            force: false,
            append: false,
            can_append: true,
            replaceable: false,
            take_empty: false,
        }
    }
}

/// Check the output path before the scan starts, without touching it: a
/// directory, a missing directory or an existing file (without `--force`)
/// is refused here, naming the user's path.
pub(crate) fn check_output(
    path: Option<&Path>,
    rules: &OutputRules,
) -> anyhow::Result<Destination> {
    let Some(path) = path.filter(|p| !is_stdout(Some(p))) else {
        return Ok(Destination::Stdout);
    };
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            anyhow::bail!("--output {shown} is a directory: give the name of a file in it")
        }
        Ok(m) if m.is_file() => {
            if rules.append {
                check_format(path, rules.format)?;
                return Ok(Destination::File {
                    path: path.into(),
                    replace: false,
                });
            }
            if rules.force || rules.replaceable || (rules.take_empty && m.len() == 0) {
                return Ok(Destination::File {
                    path: path.into(),
                    replace: true,
                });
            }
            if rules.can_append {
                anyhow::bail!(
                    "output file {shown} exists: pass --force to overwrite it or --append to add to it"
                )
            }
            anyhow::bail!("output file {shown} exists: pass --force to overwrite it")
        }
        Ok(_) => Ok(Destination::Special(path.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                anyhow::bail!(
                    "cannot write {shown}: the directory {} does not exist",
                    parent.display()
                );
            }
            Ok(Destination::File {
                path: path.into(),
                replace: false,
            })
        }
        Err(e) => anyhow::bail!("cannot write {shown}: {e}"),
    }
}

/// `--append` adds to a file of the same format only: the first bytes
/// tell (JSON Lines starts with `{`, CSV with our header, the table with
/// its heading). An empty file takes any format.
fn check_format(path: &Path, format: Format) -> anyhow::Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(256).read_to_end(&mut head))
        .map_err(|e| anyhow::anyhow!("cannot read {} to append to it: {e}", path.display()))?;
    if head.is_empty() {
        return Ok(());
    }
    let csv_header = crate::output::CSV_HEADER.join(",");
    let found = if head.starts_with(b"{") {
        Some(Format::Jsonl)
    } else if head.starts_with(csv_header.as_bytes()) {
        Some(Format::Csv)
    } else if head.starts_with(b"ADDRESS ") {
        Some(Format::Table)
    } else {
        None
    };
    let name = |f: Format| match f {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
        Format::Table => "table",
    };
    match found {
        Some(f) if f == format => Ok(()),
        Some(f) => anyhow::bail!(
            "cannot append {} to {}: it holds {} (pass --format {} or choose another file)",
            name(format),
            path.display(),
            name(f),
            name(f)
        ),
        None => anyhow::bail!(
            "cannot append to {}: it is not a relayscan {} file",
            path.display(),
            name(format)
        ),
    }
}

/// An opened output: the sink, whether it needs a CSV header, and its
/// length before this run.
pub(crate) struct Opened {
    pub sink: Box<dyn Write + Send>,
    pub header: bool,
    pub base: u64,
}

/// Open a checked destination. Unbuffered on purpose: the writer hands
/// each record over in one `write`, which `O_APPEND` keeps whole even with
/// another relayscan appending to the same file.
pub(crate) fn open_output(dest: &Destination, append: bool) -> anyhow::Result<Opened> {
    let (path, replace) = match dest {
        Destination::Stdout => {
            return Ok(Opened {
                sink: Box::new(std::io::stdout()),
                header: true,
                base: 0,
            })
        }
        Destination::Special(path) => {
            let file = OpenOptions::new()
                .write(true)
                .append(append)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            return Ok(Opened {
                sink: Box::new(file),
                header: true,
                base: 0,
            });
        }
        Destination::File { path, replace } => (path, *replace),
    };
    let mut options = OpenOptions::new();
    options.write(true);
    if append {
        options.append(true).create(true);
    } else if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "output file {} appeared while relayscan started: pass --force to overwrite it",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        }
    })?;
    let base = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Opened {
        sink: Box::new(file),
        header: base == 0,
        base,
    })
}

/// The summary table at the end: on stdout when the data went to a file,
/// else on stderr (stdout holds nothing but data).
pub(crate) fn print_summary(summary: &Summary, data_on_stdout: bool) -> std::io::Result<()> {
    let table = summary.render_styled(if data_on_stdout {
        crate::output::style::stderr_on()
    } else {
        crate::output::style::stdout_on()
    });
    if data_on_stdout {
        eprint!("{table}");
        Ok(())
    } else {
        out(&table)
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Run `work` as a task of the runtime, not on the thread that waits for
/// it: the dispatcher and the probes it starts then share the workers, and
/// each probe that ends wakes a worker, not a thread parked outside the
/// runtime (a futex wake and a context switch per target).
pub(crate) fn on_a_worker<F>(rt: &tokio::runtime::Runtime, work: F) -> anyhow::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match rt.block_on(rt.spawn(work)) {
        Ok(output) => Ok(output),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a cancelled task gives no panic: the runtime is being
            // shut down, which nothing here does while it waits.
            Err(e) => Err(anyhow::anyhow!("the scan task ended early: {e}")),
        },
    }
}

/// Start the catcher of `--catch`/`--catch-maildir` (inside the runtime) and
/// tell the probe to name its tokens to it.
pub(crate) async fn start_catcher(
    settings: Option<&crate::config::CatchSettings>,
    probe: &mut crate::relay::ProbeConfig,
) -> anyhow::Result<Option<crate::engine::CatchWait>> {
    use crate::config::CatchPlace;
    let Some(c) = settings else {
        return Ok(None);
    };
    let catcher = match &c.place {
        CatchPlace::Listen(addr) => crate::catch::Catcher::listen(*addr, &c.address).await?,
        CatchPlace::Maildir(dir) => crate::catch::Catcher::maildir(dir.clone())?,
    };
    let catcher = std::sync::Arc::new(catcher);
    probe.canaries = Some(catcher.clone());
    Ok(Some(crate::engine::CatchWait::new(catcher, c.wait)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_a_worker_hands_back_the_scans_result_its_error_and_its_panic() {
        let rt = runtime().unwrap();
        // The work runs on a worker, not on the thread that waits.
        let caller = std::thread::current().id();
        let ran_on = on_a_worker(&rt, async { std::thread::current().id() }).unwrap();
        assert_ne!(ran_on, caller);
        // An error the scan returns is the scan's, untouched.
        let failed = on_a_worker(&rt, async { Err::<(), _>(anyhow::anyhow!("disk full")) });
        assert_eq!(failed.unwrap().unwrap_err().to_string(), "disk full");
        // A panic in the scan goes on in the caller, with its message.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            on_a_worker(&rt, async { panic!("the scan broke") })
        }));
        let payload = panicked.expect_err("the panic must reach the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the scan broke"));
        // And the runtime is still good for more work.
        assert_eq!(on_a_worker(&rt, async { 7 }).unwrap(), 7);
    }
}
