//! The one writer: every record passes through here, is counted, shown on
//! the progress bar and written as a whole line, in a batch of whole lines
//! flushed as soon as the engine has no more ready (within `COALESCE` when
//! records come fast); a checkpoint is saved only after the batch before it
//! reached the sink. It runs on its own thread
//! (blocking I/O to a slow pipe must not stall the probes) and reads a
//! bounded channel, so a slow sink slows the scan instead of filling memory.

use super::checkpoint::{Checkpoint, Completion, Written};
use super::record::{Record, CSV_HEADER};
use super::sanitize::{json_line, terminal, truncate};
use super::schema::{Meta, SummaryLine, SummaryTag};
use crate::relay::Status;
use crate::targets::{Job, Schedule};
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// The same, already made into its line by the probe's task
    /// ([`Line::of`]): the record's memory is freed on the thread that
    /// allocated it, and the writer only counts and writes.
    Line {
        line: Box<Line>,
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
    /// What a resumed run found in the file (empty on a first run).
    pub earlier: Earlier,
}

/// What a resumed run takes over from the file it continues.
#[derive(Debug, Default)]
pub struct Earlier {
    /// Targets already in the file whose jobs are not marked done: their
    /// records are not written again. Carried into every checkpoint until
    /// their job is done.
    pub written: HashSet<Written>,
    /// Every record of the scan already in the file, counted: the summary
    /// describes the whole scan.
    pub summary: Summary,
    /// To tell which target a job skipped by address was.
    pub schedule: Option<Schedule>,
}

impl CheckpointWriter {
    /// Save the checkpoint as things stand: `written` bytes after the base,
    /// `pending` the targets written for jobs not done yet.
    pub fn save(&self, written: u64, pending: Vec<Written>, complete: bool) -> io::Result<()> {
        let mut state = self.template.clone();
        state.next = self.completion.next();
        state.done_above = self.completion.above();
        state.output_bytes = self.output_base + written;
        state.pending = pending;
        state.complete = complete;
        state.updated = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        state.save(&self.path)
    }
}

/// How often the checkpoint is rewritten: whichever comes first.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const CHECKPOINT_RECORDS: u64 = 1024;

/// The table is sorted in batches of this many rows (a few hundred bytes
/// each): a scan larger than that gets one sorted run per batch, and memory
/// stays bounded.
const TABLE_SORT_BATCH: usize = 1 << 18;

/// A batch of lines this long is written without waiting for more.
const BATCH_BYTES: usize = 64 * 1024;

/// Within this long of the last write, the writer gathers records for the
/// rest of it before writing again: at most this much later on the sink,
/// and one wake-up and one write per batch, not per record.
const COALESCE: Duration = Duration::from_millis(10);

/// Gathering only with room in the channel for far more records than come
/// in `COALESCE` (`-c 256` or more): a small channel would make the probes
/// wait for the writer.
const COALESCE_MIN_CAPACITY: usize = 256;

/// Most relays listed by address in the summary (all are counted).
const LISTED_RELAYS: usize = 1000;

/// What the scan found, for the summary table and the exit code.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub counts: BTreeMap<Status, u64>,
    pub total: u64,
    pub relays: Vec<(SocketAddr, Status, String)>,
    pub relay_count: u64,
    /// Of `relay_count`, the relays a delivered canary proved.
    pub proven: u64,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// Addresses excluded after resolution (names, `mx:`): never dialled,
    /// not among `total`.
    pub excluded: u64,
    /// Of `total`, the records a resumed run read back from its output.
    pub earlier: u64,
    /// Hosts cut by the interrupt and left for `--resume` to probe again
    /// (not written, not counted above).
    pub left_for_resume: u64,
}

impl Summary {
    fn add(&mut self, line: &Line) {
        self.add_result(line.verdict, line.addr, &line.accepted, line.proven);
    }

    /// Count one result (also used by `merge`, which reads results back).
    pub fn add_result(
        &mut self,
        verdict: Status,
        addr: SocketAddr,
        accepted: &[&str],
        proven: bool,
    ) {
        if verdict == Status::Excluded {
            self.excluded += 1;
            return;
        }
        *self.counts.entry(verdict).or_default() += 1;
        self.total += 1;
        if verdict.is_relay() {
            self.relay_count += 1;
            self.proven += u64::from(proven);
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

    /// The closing JSON Lines line.
    pub fn line(&self) -> SummaryLine {
        SummaryLine {
            counts: self.counts.clone(),
            duration_ms: u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
            excluded_after_resolution: self.excluded,
            interrupted: self.interrupted,
            left_for_resume: self.left_for_resume,
            proven_relays: self.proven,
            relays: self.relay_count,
            total: self.total,
            kind: SummaryTag::Tag,
            untested: self.untested(),
        }
    }

    /// The end-of-scan table, for a human.
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// The end-of-scan table, its verdicts coloured when `color`.
    pub fn render_styled(&self, color: bool) -> String {
        let paint = |s: Status, width: usize| {
            super::style::paint_padded(s.as_str(), width, super::style::verdict(s), color)
        };
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64();
        // A resumed run's rate is this run's: the earlier records took no time here.
        let this_run = self.total - self.earlier.min(self.total);
        let rate = if secs > 0.0 {
            this_run as f64 / secs
        } else {
            0.0
        };
        let earlier = if self.earlier > 0 {
            format!(" ({} written before the resume)", self.earlier)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n{} target(s){earlier} in {:.1}s ({:.0}/s){}\n",
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
                out.push_str(&format!("  {} {:>6}\n", paint(status, 16), n));
            }
        }
        if self.excluded > 0 {
            out.push_str(&format!(
                "  {} address(es) excluded after resolution (not dialled)\n",
                self.excluded
            ));
        }
        if self.left_for_resume > 0 {
            out.push_str(&format!(
                "{} host(s) cut by the interrupt are left for the resume\n",
                self.left_for_resume
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
            if self.proven > 0 {
                out.push_str(&format!(
                    "  {} proven by delivery, {} unproven (RCPT or DATA only)\n",
                    self.proven,
                    self.relay_count - self.proven
                ));
            }
            let mut relays = self.relays.clone();
            relays.sort();
            for (addr, status, accepted) in &relays {
                out.push_str(&format!("  {addr:<24} {} {accepted}\n", paint(*status, 15)));
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

/// How records become lines: the writer's settings that a probe's task
/// needs to make its record's line itself ([`Event::Line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFormat {
    pub format: Format,
    pub transcript: bool,
    pub color: bool,
}

/// A record made into what the writer needs of it: its line (a table row
/// for `--format table`) and what the summary and the checkpoint keep.
#[derive(Debug)]
pub struct Line {
    bytes: Vec<u8>,
    addr: SocketAddr,
    key: Written,
    cut_by_interrupt: bool,
    verdict: Status,
    proven: bool,
    accepted: Vec<&'static str>,
}

impl Line {
    pub fn of(r: &Record, how: LineFormat) -> io::Result<Line> {
        let bytes = match how.format {
            Format::Csv => csv_line(r.csv_row())?,
            Format::Jsonl => jsonl(&r.json(how.transcript))?.into_bytes(),
            Format::Table => table_row(r, how.color),
        };
        Ok(Line {
            bytes,
            addr: r.facts.addr,
            key: Written::of(r, how.format),
            cut_by_interrupt: crate::engine::cut_by_interrupt(r),
            verdict: r.verdict.verdict,
            proven: r.verdict.confidence == Some(crate::relay::Confidence::Delivered),
            accepted: if r.verdict.verdict.is_relay() {
                r.verdict.accepted.clone()
            } else {
                Vec::new()
            },
        })
    }
}

pub struct Writer {
    pub format: Format,
    pub transcript: bool,
    /// The JSONL meta line (written first in JSONL; the demo writes CSV).
    pub meta: Option<Meta>,
    /// Write the CSV header (false when appending to a non-empty file).
    pub header: bool,
    pub progress: Option<ProgressBar>,
    /// Set by the engine when Ctrl-C stopped the scan early.
    pub interrupted: Arc<AtomicBool>,
    /// Also shown every record (the demo keeps its table this way).
    pub tap: Option<Tap>,
    /// Keep a `--resume` checkpoint.
    pub checkpoint: Option<CheckpointWriter>,
    /// Colour the verdicts of the table (`--color`, see [`super::style`]).
    pub color: bool,
}

impl Writer {
    /// How this writer makes a record's line.
    pub fn line_format(&self) -> LineFormat {
        LineFormat {
            format: self.format,
            transcript: self.transcript,
            color: self.color,
        }
    }

    /// The lines the engine may make for this writer ([`Event::Line`]):
    /// none when a tap must see every record whole.
    pub fn lines(&self) -> Option<LineFormat> {
        self.tap.is_none().then(|| self.line_format())
    }

    /// A writer of `format` with a header, and nothing else: no meta line,
    /// progress bar, tap, checkpoint or colour.
    pub fn plain(format: Format) -> Writer {
        Writer {
            format,
            transcript: false,
            meta: None,
            header: true,
            progress: None,
            interrupted: Arc::new(AtomicBool::new(false)),
            tap: None,
            checkpoint: None,
            color: false,
        }
    }
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
    let mut summary = cfg
        .checkpoint
        .as_mut()
        .map(|cp| std::mem::take(&mut cp.earlier.summary))
        .unwrap_or_default();
    let written = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: sink,
        written: written.clone(),
    };
    let mut out = Sink::new(cfg.format, Box::new(counting));
    // Through the bar: on a terminal the header must not land on its line.
    match &cfg.progress {
        Some(pb) => pb.suspend(|| out.start(&cfg))?,
        None => out.start(&cfg)?,
    }
    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    // Targets written for jobs not done yet (a name with several
    // addresses): a checkpoint lists them, so a resume never writes them twice.
    let mut open: HashMap<u128, Vec<Written>> = HashMap::new();
    // (`Instant - Duration` panics below the clock's zero: checked.)
    let mut last_hand_over = Instant::now()
        .checked_sub(COALESCE)
        .unwrap_or_else(Instant::now);
    let mut next = rx.blocking_recv();
    while let Some(event) = next {
        let (position, last) = match event {
            Event::Skipped { position } => {
                if let Some(cp) = cfg.checkpoint.as_mut() {
                    forget_skipped(cp, position);
                }
                (position, true)
            }
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
                let line = Line::of(&record, cfg.line_format())?;
                let at = (position, last);
                take(
                    &mut cfg,
                    &mut out,
                    &mut summary,
                    &mut open,
                    line,
                    Some(&record),
                    at,
                )?
            }
            Event::Line {
                line,
                position,
                last,
            } => {
                let at = (position, last);
                take(&mut cfg, &mut out, &mut summary, &mut open, *line, None, at)?
            }
        };
        if let Some(cp) = cfg.checkpoint.as_mut() {
            if last {
                cp.completion.done(position);
                open.remove(&position);
            }
            since_checkpoint += 1;
            if since_checkpoint >= CHECKPOINT_RECORDS
                || last_checkpoint.elapsed() >= CHECKPOINT_EVERY
            {
                // The checkpoint counts what reached the sink: the batch first.
                hand_over(&mut out, &cfg.progress)?;
                cp.save(written.load(Ordering::SeqCst), pending(cp, &open), false)?;
                last_checkpoint = Instant::now();
                since_checkpoint = 0;
            }
        }
        // More records ready go into the same batch; when the engine has
        // none (or the batch is full), the batch goes out before waiting.
        next = match rx.try_recv() {
            Ok(event) if !out.batch_full() => Some(event),
            Ok(event) => {
                hand_over(&mut out, &cfg.progress)?;
                last_hand_over = Instant::now();
                Some(event)
            }
            // The engine is done: `finish` hands the batch over, at once.
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Records coming fast: gather for a moment instead of being
                // woken, and writing, once per record.
                let since = last_hand_over.elapsed();
                if since < COALESCE && rx.max_capacity() >= COALESCE_MIN_CAPACITY {
                    std::thread::sleep(COALESCE - since);
                }
                match rx.try_recv() {
                    Ok(event) => Some(event),
                    Err(_) => {
                        hand_over(&mut out, &cfg.progress)?;
                        last_hand_over = Instant::now();
                        rx.blocking_recv()
                    }
                }
            }
        };
    }
    summary.elapsed = started.elapsed();
    summary.interrupted = cfg.interrupted.load(Ordering::SeqCst);
    match &cfg.progress {
        Some(pb) => pb.suspend(|| out.finish(&summary))?,
        None => out.finish(&summary)?,
    }
    if let Some(cp) = cfg.checkpoint.as_mut() {
        let complete = !summary.interrupted && cp.completion.next() >= cp.template.total;
        cp.save(written.load(Ordering::SeqCst), pending(cp, &open), complete)?;
    }
    Ok(summary)
}

/// Write the batch, under the progress bar when there is one (on a
/// terminal the lines must not land on the bar's line).
fn hand_over(out: &mut Sink, progress: &Option<ProgressBar>) -> io::Result<()> {
    match progress {
        Some(pb) => pb.suspend(|| out.hand_over()),
        None => out.hand_over(),
    }
}

/// A job the engine skipped: if it was skipped by address (not already
/// done by position), its target no longer needs carrying.
fn forget_skipped(cp: &mut CheckpointWriter, position: u128) {
    if cp.completion.contains(position) {
        return;
    }
    if let Some(Job::Addr(addr)) = cp.earlier.schedule.as_ref().and_then(|s| s.get(position)) {
        cp.earlier.written.remove(&Written { name: None, addr });
    }
}

/// The targets a checkpoint must list: those written for jobs not done.
fn pending(cp: &CheckpointWriter, open: &HashMap<u128, Vec<Written>>) -> Vec<Written> {
    let mut keys: Vec<Written> = cp.earlier.written.iter().cloned().collect();
    keys.extend(open.values().flatten().cloned());
    keys
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

/// The output. Each record is built whole and added to a batch of whole
/// lines, handed over in one `write_all` when the engine has nothing more
/// ready (at once, when records come one by one) or the batch is full: on a
/// file opened with `O_APPEND` (POSIX `write()`), a line from another
/// relayscan appending to the same file can then come before or after a
/// line, never inside it; and a busy scan makes one system call per batch,
/// not one per record.
struct Sink {
    out: Box<dyn Write + Send>,
    /// Whole lines not handed over yet.
    batch: Vec<u8>,
    format: Format,
    /// The table's rows, kept to be written sorted by address then port
    /// when the scan ends (the other formats stream in completion order).
    rows: Vec<(SocketAddr, Vec<u8>)>,
}

impl Sink {
    fn new(format: Format, out: Box<dyn Write + Send>) -> Sink {
        Sink {
            out,
            batch: Vec::new(),
            format,
            rows: Vec::new(),
        }
    }

    /// Add a whole line to the batch.
    fn put(&mut self, line: &[u8]) {
        self.batch.extend_from_slice(line);
    }

    /// The batch is worth a write of its own.
    fn batch_full(&self) -> bool {
        self.batch.len() >= BATCH_BYTES
    }

    /// Hand the batch over and flush it.
    fn hand_over(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.out.write_all(&self.batch)?;
            self.batch.clear();
            if self.batch.capacity() > 4 * BATCH_BYTES {
                self.batch = Vec::new();
            }
        }
        self.out.flush()
    }

    fn start(&mut self, cfg: &Writer) -> io::Result<()> {
        match self.format {
            Format::Csv if cfg.header => self.put(&csv_line(CSV_HEADER)?),
            Format::Csv => {}
            Format::Jsonl => {
                if let Some(meta) = &cfg.meta {
                    self.put(jsonl(meta)?.as_bytes());
                }
            }
            Format::Table => self.put(
                format!(
                    "{:<24} {:<15} {:<11} {:<10} REPLY\n",
                    "ADDRESS", "VERDICT", "CONFIDENCE", "ACCEPTED"
                )
                .as_bytes(),
            ),
        }
        self.hand_over()
    }

    fn write(&mut self, line: Line) {
        match self.format {
            // Written sorted when the scan ends or [`Sink::rows_full`].
            Format::Table => self.rows.push((line.addr, line.bytes)),
            Format::Csv | Format::Jsonl => self.put(&line.bytes),
        }
    }

    /// The table holds a batch of rows to sort and write now.
    fn rows_full(&self) -> bool {
        self.rows.len() >= TABLE_SORT_BATCH
    }

    /// Write the table rows kept so far, sorted by address then port
    /// (stable: a name's several records keep their order).
    fn flush_rows(&mut self) -> io::Result<()> {
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by_key(|(addr, _)| (addr.ip(), addr.port()));
        self.hand_over()?;
        for (_, row) in rows {
            self.out.write_all(&row)?;
        }
        self.out.flush()
    }

    /// The closing JSONL summary line.
    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                self.put(jsonl(&summary.line())?.as_bytes());
                self.hand_over()
            }
            Format::Table => self.flush_rows(),
            Format::Csv => self.hand_over(),
        }
    }
}

/// Take one record's line (and the record itself, when it came whole): count
/// it, write it unless a resumed run wrote it before, show it to the tap.
/// Returns the job's position and whether the job is done.
fn take(
    cfg: &mut Writer,
    out: &mut Sink,
    summary: &mut Summary,
    open: &mut HashMap<u128, Vec<Written>>,
    line: Line,
    record: Option<&Record>,
    (position, last): (u128, bool),
) -> io::Result<(u128, bool)> {
    let mut write = true;
    let mut done = last;
    if let Some(cp) = cfg.checkpoint.as_mut() {
        if cp.earlier.written.remove(&line.key) {
            // Written before the interruption: counted already.
            write = false;
            open.entry(position).or_default().push(line.key.clone());
        } else if line.cut_by_interrupt {
            // Probed again on resume: neither written nor done.
            write = false;
            done = false;
            summary.left_for_resume += 1;
        } else {
            open.entry(position).or_default().push(line.key.clone());
        }
    }
    if write {
        summary.add(&line);
        if let (Some(tap), Some(record)) = (cfg.tap.as_mut(), record) {
            tap(record);
        }
        out.write(line);
        if out.rows_full() {
            // A sorted run of the table: under the bar, as every write.
            match &cfg.progress {
                Some(pb) => pb.suspend(|| out.flush_rows())?,
                None => out.flush_rows()?,
            }
        }
    }
    if let Some(pb) = &cfg.progress {
        if last {
            pb.inc(1);
        }
        if summary.relay_count > 0 {
            pb.set_message(format!("relays: {}", summary.relay_count));
        }
    }
    Ok((position, done))
}

/// One row of `--format table`. The reply is server text: neutralised
/// before the verdict is coloured, so the only escapes are ours.
fn table_row(r: &Record, color: bool) -> Vec<u8> {
    let v = &r.verdict;
    let reply = v.reply.clone().or_else(|| r.error()).unwrap_or_default();
    format!(
        "{:<24} {} {:<11} {:<10} {}\n",
        r.facts.addr.to_string(),
        super::style::paint_padded(
            v.verdict.as_str(),
            15,
            super::style::verdict(v.verdict),
            color
        ),
        v.confidence.map(|c| c.as_str()).unwrap_or("-"),
        truncate(&v.accepted.join(","), 10),
        truncate(&terminal(&reply), 100)
    )
    .into_bytes()
}

/// One JSON Lines line with its line end.
fn jsonl<T: serde::Serialize>(line: &T) -> io::Result<String> {
    let mut text = json_line(line)?;
    text.push('\n');
    Ok(text)
}

/// One CSV row, quoted as needed, with its line end.
fn csv_line<I, T>(row: I) -> io::Result<Vec<u8>>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    // A row is a few hundred bytes: the default 8 KB buffer would be
    // allocated (and dropped) for every record.
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .buffer_capacity(512)
        .from_writer(Vec::with_capacity(512));
    w.write_record(row)?;
    w.into_inner().map_err(|e| e.into_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::checkpoint::Completion;
    use crate::relay::{classify, Facts};
    use std::sync::Mutex;

    /// What the sink saw: each `write` call as a piece of its own, and for
    /// each, the bytes it held before and the checkpoint's offset then.
    #[derive(Default)]
    struct Seen {
        pieces: Vec<Vec<u8>>,
        /// `(bytes in the sink before this write, the checkpoint's
        /// output_bytes and next)`.
        checkpoints: Vec<(u64, Option<(u64, u128)>)>,
    }

    /// A sink that keeps every piece it is handed, reads the checkpoint
    /// (if any) before each, and fails with a full disk after `budget` bytes.
    struct Recording {
        seen: Arc<Mutex<Seen>>,
        checkpoint: Option<std::path::PathBuf>,
        budget: usize,
    }

    impl Write for Recording {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut seen = self.seen.lock().unwrap();
            let before: usize = seen.pieces.iter().map(Vec::len).sum();
            let cp = self
                .checkpoint
                .as_ref()
                .and_then(|p| Checkpoint::load(p).ok())
                .map(|c| (c.output_bytes, c.next));
            seen.checkpoints.push((before as u64, cp));
            let room = self.budget.saturating_sub(before);
            if room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            // A full disk takes what fits, as write(2) does.
            let n = buf.len().min(room);
            seen.pieces.push(buf[..n].to_vec());
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The record of job `i`: its address names it (127.x.y.z). Every
    /// third is a relay.
    fn record(i: u32) -> Record {
        let addr = SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 25));
        let facts = Facts::new(addr, None);
        let mut verdict = classify(&facts);
        if i % 3 == 0 {
            verdict.verdict = Status::OpenRelay;
            verdict.accepted = vec!["S1", "R4"];
        }
        Record {
            // One time for all: the records of two runs compare equal.
            timestamp: std::time::UNIX_EPOCH,
            ..Record::new(facts, verdict)
        }
    }

    /// Job `i`'s event: the whole record for even `i`, its CSV line made
    /// beforehand (as the engine does) for odd `i`, so that every test
    /// below runs the writer over both kinds.
    fn event(i: u32) -> Event {
        let record = record(i);
        let (position, last) = (u128::from(i), true);
        if i % 2 == 0 {
            return Event::Record {
                record: Box::new(record),
                position,
                last,
            };
        }
        let line = Line::of(&record, Writer::plain(Format::Csv).line_format()).unwrap();
        Event::Line {
            line: Box::new(line),
            position,
            last,
        }
    }

    /// The writer writes the same bytes, and counts the same, whether the
    /// engine sends records or the lines it made of them: in every format.
    #[test]
    fn a_line_made_by_the_engine_is_written_as_the_writer_would_write_its_record() {
        for format in [Format::Csv, Format::Jsonl, Format::Table] {
            let written = |as_lines: bool| {
                let cfg = Writer {
                    transcript: true,
                    ..Writer::plain(format)
                };
                let how = cfg.line_format();
                let (tx, rx) = mpsc::channel(64);
                for i in 0..40u32 {
                    let (record, position, last) = (record(39 - i), u128::from(i), true);
                    let event = if as_lines {
                        let line = Box::new(Line::of(&record, how).unwrap());
                        Event::Line {
                            line,
                            position,
                            last,
                        }
                    } else {
                        let record = Box::new(record);
                        Event::Record {
                            record,
                            position,
                            last,
                        }
                    };
                    tx.try_send(event).unwrap();
                }
                drop(tx);
                let out = Arc::new(Mutex::new(Vec::new()));
                let sink = Shared(out.clone());
                let summary = run(cfg, rx, Box::new(sink), Instant::now()).unwrap();
                let bytes = std::mem::take(&mut *out.lock().unwrap());
                (bytes, summary)
            };
            let (records, by_record) = written(false);
            let (lines, by_line) = written(true);
            // Every line but JSONL's closing summary, which holds the time taken.
            let results = |b: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(b)
                    .lines()
                    .filter(|l| !l.contains("\"type\":\"summary\""))
                    .map(String::from)
                    .collect()
            };
            let text = String::from_utf8_lossy(&records).into_owned();
            assert_eq!(results(&records), results(&lines), "{format:?}");
            // 40 results, and a header but in JSONL (no meta line here).
            let header = usize::from(format != Format::Jsonl);
            assert_eq!(results(&records).len(), 40 + header, "{format:?}: {text}");
            assert!(text.contains("127.0.0.39"), "{format:?}: {text}");
            assert_eq!(by_record.total, 40);
            assert_eq!((by_line.total, by_line.relay_count), (40, 14));
            assert_eq!(by_line.relays, by_record.relays);
            assert_eq!(by_line.relays[0].2, "S1 R4");
            assert_eq!(by_line.counts, by_record.counts);
        }
    }

    /// A sink that keeps what it is given.
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn writer(checkpoint: Option<CheckpointWriter>) -> Writer {
        Writer {
            checkpoint,
            ..Writer::plain(Format::Csv)
        }
    }

    fn checkpoint_writer(path: &std::path::Path, total: u128) -> CheckpointWriter {
        CheckpointWriter {
            path: path.to_path_buf(),
            template: Checkpoint {
                version: crate::output::checkpoint::VERSION,
                config_hash: "0123456789abcdef".into(),
                seed: 1,
                order: crate::targets::Order::Sequential,
                shard: "0/1".parse().unwrap(),
                total,
                next: 0,
                done_above: Vec::new(),
                output_bytes: 0,
                output_start: 0,
                pending: Vec::new(),
                complete: false,
                updated: String::new(),
            },
            completion: Completion::starting_at(0, []),
            output_base: 0,
            earlier: Earlier::default(),
        }
    }

    /// Run the writer over `n` records all waiting in the channel at once.
    fn run_all_at_once(
        n: u32,
        checkpoint: Option<CheckpointWriter>,
        budget: usize,
    ) -> (io::Result<Summary>, Seen) {
        let (tx, rx) = mpsc::channel(4096);
        for i in 0..n {
            tx.try_send(event(i)).unwrap();
        }
        drop(tx);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Recording {
            seen: seen.clone(),
            checkpoint: checkpoint.as_ref().map(|c| c.path.clone()),
            budget,
        };
        let result = run(writer(checkpoint), rx, Box::new(sink), Instant::now());
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        (result, seen)
    }

    /// The addresses of the CSV rows in `bytes`, header left out.
    fn rows(bytes: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(bytes).unwrap();
        text.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn many_records_at_once_reach_the_sink_whole_in_batches_each_line_in_one_piece() {
        let n = 3000;
        let (result, seen) = run_all_at_once(n, None, usize::MAX);
        assert_eq!(result.unwrap().total, u64::from(n));
        // Batched: far fewer writes than records, and none far past the
        // batch size (a batch is written once it reaches BATCH_BYTES).
        assert!(seen.pieces.len() < 100, "{} writes", seen.pieces.len());
        for piece in &seen.pieces {
            // Whole lines only: no line is split over two writes.
            assert_eq!(piece.last(), Some(&b'\n'));
            assert!(piece.len() < 2 * BATCH_BYTES, "{}", piece.len());
        }
        let all = seen.pieces.concat();
        let expected: Vec<String> = (0..n)
            .map(|i| format!("127.{}.{}.{}", (i >> 16) as u8, (i >> 8) as u8, i as u8))
            .collect();
        assert_eq!(rows(&all), expected, "every record once, in order");
    }

    #[test]
    fn a_checkpoint_saved_mid_stream_counts_exactly_the_bytes_in_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.checkpoint");
        let n = 3000;
        let (result, seen) =
            run_all_at_once(n, Some(checkpoint_writer(&path, n.into())), usize::MAX);
        result.unwrap();
        // Before each write, the checkpoint (once there is one) never counts
        // bytes the sink does not hold; each time it changed, it counted
        // exactly what the sink held when it was saved; and the jobs it
        // calls done are exactly the records in those bytes.
        let all = seen.pieces.concat();
        let mut mid_stream = 0;
        let mut previous = None;
        for &(before, cp) in &seen.checkpoints {
            if let Some((offset, next)) = cp {
                assert!(offset <= before, "checkpoint at {offset}, sink {before}");
                if cp != previous {
                    assert_eq!(offset, before, "a new checkpoint counts the whole sink");
                    let held = rows(&all[..usize::try_from(offset).unwrap()]).len();
                    assert_eq!(next, held as u128, "done jobs are the rows it counts");
                    mid_stream += 1;
                }
            }
            previous = cp;
        }
        // 3000 records: saved after 1024 and 2048 (CHECKPOINT_RECORDS).
        assert!(mid_stream >= 2, "{mid_stream} checkpoints seen mid-stream");
        // The last one counts every byte, and every job is done.
        let last = Checkpoint::load(&path).unwrap();
        assert_eq!(last.output_bytes, all.len() as u64);
        assert_eq!(last.next, u128::from(n));
        assert!(last.complete);
    }

    #[test]
    fn records_that_trickle_in_are_gathered_and_all_written() {
        let (tx, rx) = mpsc::channel(1024);
        let sender = std::thread::spawn(move || {
            for i in 0..60 {
                tx.blocking_send(event(i)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Recording {
            seen: seen.clone(),
            checkpoint: None,
            budget: usize::MAX,
        };
        let summary = run(writer(None), rx, Box::new(sink), Instant::now()).unwrap();
        sender.join().unwrap();
        assert_eq!(summary.total, 60);
        let seen = seen.lock().unwrap();
        // However the records and the gathering fall, whole lines, all of them.
        assert!(seen.pieces.iter().all(|p| p.last() == Some(&b'\n')));
        assert_eq!(rows(&seen.pieces.concat()).len(), 60);
    }

    #[test]
    fn a_full_disk_is_an_error_mid_stream_and_at_the_last_batch() {
        // Mid-stream: the sink fills after 10 KB of many batches.
        let (result, seen) = run_all_at_once(3000, None, 10 * 1024);
        let e = result.expect_err("a full disk must surface");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(seen.pieces.concat().len(), 10 * 1024);
        // Only the header fits: the records' one batch, written at the
        // end, fails, and says so.
        let header = csv_line(CSV_HEADER).unwrap().len();
        let (result, seen) = run_all_at_once(5, None, header);
        let e = result.expect_err("the last batch's failure must surface");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(seen.pieces.concat().len(), header);
    }

    #[test]
    fn a_checkpoint_is_not_saved_past_a_failed_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.checkpoint");
        let budget = 100 * 1024;
        let (result, seen) = run_all_at_once(3000, Some(checkpoint_writer(&path, 3000)), budget);
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::StorageFull);
        // What the checkpoint on disk counts is whole lines the sink holds,
        // and the jobs it calls done are all among them.
        let all = seen.pieces.concat();
        if let Ok(cp) = Checkpoint::load(&path) {
            let offset = usize::try_from(cp.output_bytes).unwrap();
            assert!(offset <= all.len());
            assert!(offset == 0 || all[offset - 1] == b'\n');
            let done = rows(&all[..offset]).len() as u128;
            assert_eq!(
                cp.next, done,
                "done jobs are exactly the rows before the offset"
            );
            assert!(!cp.complete);
        }
    }
}
