//! The one writer: every record passes through here, is written and flushed
//! at once, counted, and shown on the progress bar. It runs on its own thread
//! (blocking I/O to a slow pipe must not stall the probes) and reads a
//! bounded channel, so a slow sink slows the scan instead of filling memory.

use super::record::{Record, CSV_HEADER};
use super::sanitize::{json_line, terminal, truncate};
use crate::engine::checkpoint::{Checkpoint, Completion};
use crate::relay::Status;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Output formats for `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One flat row per target (spreadsheets).
    Csv,
    /// A meta line, one result object per target, a summary line (jq, pipelines).
    Jsonl,
    /// Aligned columns for reading in a terminal.
    Table,
}

/// What the engine sends the writer.
#[derive(Debug)]
pub enum Event {
    /// A record for the job at `position`; `last` on the job's final record
    /// (a host name can give several addresses, so several records).
    Record {
        record: Box<Record>,
        position: u128,
        last: bool,
    },
    /// A job a resumed run skips: it was written before the interruption.
    Skipped { position: u128 },
    /// An address of the job at `position` excluded after resolution: not
    /// dialled, not written, counted.
    Excluded { position: u128, last: bool },
}

/// Where and how the writer keeps the `--resume` checkpoint.
pub struct CheckpointWriter {
    pub path: std::path::PathBuf,
    /// Everything but the progress fields, which the writer fills in.
    pub template: Checkpoint,
    pub completion: Completion,
    /// Bytes in the output file before this run wrote to it.
    pub output_base: u64,
}

/// How often the checkpoint is rewritten: whichever comes first.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const CHECKPOINT_RECORDS: u64 = 1024;

/// Most relays listed by address in the summary (all are counted).
const LISTED_RELAYS: usize = 1000;

/// What the scan found, for the summary table and the exit code.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub counts: BTreeMap<Status, u64>,
    pub total: u64,
    pub relays: Vec<(SocketAddr, Status, String)>,
    pub relay_count: u64,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// Addresses excluded after resolution (names, `mx:`): never dialled,
    /// not among `total`.
    pub excluded: u64,
}

impl Summary {
    fn add(&mut self, r: &Record) {
        self.add_result(r.verdict.verdict, r.facts.addr, &r.verdict.accepted);
    }

    /// Count one result (also used by `merge`, which reads results back).
    pub fn add_result(&mut self, verdict: Status, addr: SocketAddr, accepted: &[&str]) {
        if verdict == Status::Excluded {
            self.excluded += 1;
            return;
        }
        *self.counts.entry(verdict).or_default() += 1;
        self.total += 1;
        if verdict.is_relay() {
            self.relay_count += 1;
            if self.relays.len() < LISTED_RELAYS {
                self.relays.push((addr, verdict, accepted.join(" ")));
            }
        }
    }

    /// Targets that could not be tested ([`Status::is_untested`]).
    pub fn untested(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(s, _)| s.is_untested())
            .map(|(_, n)| n)
            .sum()
    }

    /// "3 refused, 1 timeout": the untested verdicts and their counts.
    fn untested_verdicts(&self) -> String {
        self.counts
            .iter()
            .filter(|(s, _)| s.is_untested())
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn json(&self) -> Value {
        let counts: BTreeMap<&str, u64> =
            self.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        json!({
            "type": "summary",
            "total": self.total,
            "relays": self.relay_count,
            "untested": self.untested(),
            "counts": counts,
            "duration_ms": self.elapsed.as_millis() as u64,
            "interrupted": self.interrupted,
            "excluded_after_resolution": self.excluded,
        })
    }

    /// The end-of-scan table, for a human.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.total as f64 / secs
        } else {
            0.0
        };
        out.push_str(&format!(
            "\n{} target(s) in {:.1}s ({:.0}/s){}\n",
            self.total,
            secs,
            rate,
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            }
        ));
        out.push_str("  verdict           count\n");
        for status in Status::ALL {
            if let Some(n) = self.counts.get(&status) {
                out.push_str(&format!("  {:<16} {:>6}\n", status.as_str(), n));
            }
        }
        if self.excluded > 0 {
            out.push_str(&format!(
                "  {} address(es) excluded after resolution (not dialled)\n",
                self.excluded
            ));
        }
        let untested = self.untested();
        if untested > 0 {
            out.push_str(&format!(
                "{untested} of {} target(s) could not be tested ({}).\n",
                self.total,
                self.untested_verdicts()
            ));
        }
        if self.relay_count == 0 {
            out.push_str(if untested > 0 {
                "No relay found among the targets tested.\n"
            } else if self.total == 0 {
                "No target was tested.\n"
            } else {
                "No relay found.\n"
            });
        } else {
            out.push_str(&format!("RELAYS FOUND: {}\n", self.relay_count));
            let mut relays = self.relays.clone();
            relays.sort();
            for (addr, status, accepted) in &relays {
                out.push_str(&format!(
                    "  {addr:<24} {:<15} {accepted}\n",
                    status.as_str()
                ));
            }
            if self.relay_count as usize > self.relays.len() {
                out.push_str(&format!(
                    "  … and {} more\n",
                    self.relay_count as usize - self.relays.len()
                ));
            }
        }
        out
    }
}

/// A callback that sees every record as it is written.
pub type Tap = Box<dyn FnMut(&Record) + Send>;

pub struct Writer {
    pub format: Format,
    pub transcript: bool,
    /// The JSONL meta line (written first in JSONL).
    pub meta: Value,
    /// Write the CSV header (false when appending to a non-empty file).
    pub header: bool,
    pub progress: Option<ProgressBar>,
    /// Set by the engine when Ctrl-C stopped the scan early.
    pub interrupted: Arc<AtomicBool>,
    /// Also shown every record (the demo keeps its table this way).
    pub tap: Option<Tap>,
    /// Keep a `--resume` checkpoint.
    pub checkpoint: Option<CheckpointWriter>,
}

/// Run the writer on the current (blocking) thread until the channel closes.
/// An error (a full disk, a closed pipe) is returned at once; the caller then
/// stops the scan.
pub fn run(
    mut cfg: Writer,
    mut rx: mpsc::Receiver<Event>,
    sink: Box<dyn Write + Send>,
    started: Instant,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let written = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: sink,
        written: written.clone(),
    };
    let mut out = Sink::new(cfg.format, Box::new(counting));
    out.start(&cfg)?;
    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    while let Some(event) = rx.blocking_recv() {
        let (position, last) = match event {
            Event::Skipped { position } => (position, true),
            Event::Excluded { position, last } => {
                summary.excluded += 1;
                if let (Some(pb), true) = (&cfg.progress, last) {
                    pb.inc(1);
                }
                (position, last)
            }
            Event::Record {
                record,
                position,
                last,
            } => {
                summary.add(&record);
                if let Some(tap) = cfg.tap.as_mut() {
                    tap(&record);
                }
                match &cfg.progress {
                    Some(pb) => pb.suspend(|| out.write(&record, cfg.transcript))?,
                    None => out.write(&record, cfg.transcript)?,
                }
                if let Some(pb) = &cfg.progress {
                    if last {
                        pb.inc(1);
                    }
                    if summary.relay_count > 0 {
                        pb.set_message(format!("relays: {}", summary.relay_count));
                    }
                }
                (position, last)
            }
        };
        if let Some(cp) = cfg.checkpoint.as_mut() {
            if last {
                cp.completion.done(position);
            }
            since_checkpoint += 1;
            if since_checkpoint >= CHECKPOINT_RECORDS
                || last_checkpoint.elapsed() >= CHECKPOINT_EVERY
            {
                save_checkpoint(cp, written.load(Ordering::SeqCst), false)?;
                last_checkpoint = Instant::now();
                since_checkpoint = 0;
            }
        }
    }
    summary.elapsed = started.elapsed();
    summary.interrupted = cfg.interrupted.load(Ordering::SeqCst);
    out.finish(&summary)?;
    if let Some(cp) = cfg.checkpoint.as_mut() {
        let complete = !summary.interrupted && cp.completion.next() >= cp.template.total;
        save_checkpoint(cp, written.load(Ordering::SeqCst), complete)?;
    }
    Ok(summary)
}

fn save_checkpoint(cp: &mut CheckpointWriter, written: u64, complete: bool) -> io::Result<()> {
    let mut state = cp.template.clone();
    state.next = cp.completion.next();
    state.done_above = cp.completion.above();
    state.output_bytes = cp.output_base + written;
    state.complete = complete;
    state.updated = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    state.save(&cp.path)
}

/// Counts the bytes that reach the sink, for the checkpoint's output offset.
struct Counting {
    inner: Box<dyn Write + Send>,
    written: Arc<AtomicU64>,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write + Send>>>),
    Lines(Box<dyn Write + Send>, Format),
}

impl Sink {
    fn new(format: Format, sink: Box<dyn Write + Send>) -> Sink {
        match format {
            Format::Csv => Sink::Csv(Box::new(
                csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(sink),
            )),
            other => Sink::Lines(sink, other),
        }
    }

    fn start(&mut self, cfg: &Writer) -> io::Result<()> {
        match self {
            Sink::Csv(w) if cfg.header => {
                w.write_record(CSV_HEADER)?;
                w.flush()
            }
            Sink::Csv(_) => Ok(()),
            Sink::Lines(w, Format::Jsonl) => {
                writeln!(w, "{}", json_line(&cfg.meta))?;
                w.flush()
            }
            Sink::Lines(w, _) => {
                writeln!(
                    w,
                    "{:<24} {:<15} {:<11} {:<10} REPLY",
                    "ADDRESS", "VERDICT", "CONFIDENCE", "ACCEPTED"
                )?;
                w.flush()
            }
        }
    }

    fn write(&mut self, r: &Record, transcript: bool) -> io::Result<()> {
        match self {
            Sink::Csv(w) => {
                w.write_record(r.csv_row())?;
                w.flush()
            }
            Sink::Lines(w, Format::Jsonl) => {
                writeln!(w, "{}", json_line(&r.json(transcript)))?;
                w.flush()
            }
            Sink::Lines(w, _) => {
                let v = &r.verdict;
                let reply = v.reply.clone().or_else(|| r.error()).unwrap_or_default();
                writeln!(
                    w,
                    "{:<24} {:<15} {:<11} {:<10} {}",
                    r.facts.addr.to_string(),
                    v.verdict.as_str(),
                    v.confidence.map(|c| c.as_str()).unwrap_or("-"),
                    truncate(&v.accepted.join(","), 10),
                    truncate(&terminal(&reply), 100)
                )?;
                w.flush()
            }
        }
    }

    /// The closing JSONL summary line.
    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        match self {
            Sink::Csv(w) => w.flush(),
            Sink::Lines(w, Format::Jsonl) => {
                writeln!(w, "{}", json_line(&summary.json()))?;
                w.flush()
            }
            Sink::Lines(w, _) => w.flush(),
        }
    }
}
