//! The engine: walks the schedule (the plan in scan order, one shard of it,
//! from a checkpoint on), runs up to `concurrency` probes at once (their
//! connections paced by `--rate`, see `smtp::pacer`), and hands every record
//! to the writer through a bounded channel.
//!
//! Backpressure comes from two places: the semaphore (no more than N probes
//! in flight) and the channel (a slow writer blocks new records). Memory is
//! therefore bounded by the concurrency, not by the size of the plan.
//!
//! Shutdown escalates, one step per Ctrl-C (or SIGTERM): the first stops new
//! connections and gives the probes in flight a grace period to finish; when
//! it ends (or at the second signal) they are told to stop, and each is
//! recorded with what it had found so far — a relay already proven stays a
//! relay, anything else is `error` with error `interrupted`; a third signal
//! aborts whatever is left. When the output goes away (`| head`), the probes
//! are stopped at once: there is no one left to tell.
//!
//! Every probe also runs under a hard stop a little after its host deadline,
//! so no code path, present or future, can hold a host longer than that.

pub mod guard;
pub mod resume;

use crate::catch::Catcher;
use crate::dns::{Dns, Resolved, Unresolved};
use crate::interrupt::Interrupts;
use crate::output::writer::{Line, LineFormat};
use crate::output::{Event, Record};
use crate::relay::judge::cut::{self, SessionFailure};
pub use crate::relay::Cut;
use crate::relay::{classify, probe_until, Connect, Facts, ProbeConfig, Status, Target};
use crate::targets::{Job, Schedule};
pub use guard::{Admit, Guard};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{Id, JoinSet};
use tokio::time::{sleep_until, Instant};

/// Settings for one run of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub concurrency: usize,
    /// How long a host name may take to resolve.
    pub resolve_timeout: Duration,
    /// The DNS handle: names, MX, PTR and blocklists (see `crate::dns`).
    pub dns: Dns,
    /// After the first interrupt, how long the probes in flight may go on.
    pub grace: Duration,
    /// Scope, exclusions and reserved space, judged after resolution.
    pub guard: Arc<Guard>,
    /// `--catch`, `--catch-maildir`: wait for each accepted canary.
    pub catch: Option<CatchWait>,
    /// Make each record's line in the probe's own task, in this format
    /// ([`Event::Line`]); `None` sends the whole record ([`Event::Record`]).
    pub lines: Option<LineFormat>,
}

/// Waiting for canaries (`--confirm … --catch …`): a host whose message was
/// accepted waits up to `wait` for it to arrive, without its probe slot (the
/// scan goes on), at most `waiting` hosts at once (each holds only its facts).
#[derive(Debug, Clone)]
pub struct CatchWait {
    pub catcher: Arc<Catcher>,
    pub wait: Duration,
    pub waiting: Arc<Semaphore>,
}

/// Hosts waiting for their canary at once, at most: beyond, the next host
/// keeps its probe slot until one is done (backpressure, not memory).
pub const MAX_WAITING: usize = 1024;

impl CatchWait {
    pub fn new(catcher: Arc<Catcher>, wait: Duration) -> CatchWait {
        CatchWait {
            catcher,
            wait,
            waiting: Arc::new(Semaphore::new(MAX_WAITING)),
        }
    }
}

/// A job's probe slot (one of `concurrency`): held while it probes, given
/// back early by a host that only waits for its canary.
#[derive(Debug, Clone)]
pub struct Slot(Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>);

impl Slot {
    fn new(permit: OwnedSemaphorePermit) -> Slot {
        Slot(Arc::new(std::sync::Mutex::new(Some(permit))))
    }

    /// Give the slot back: the engine may start the next job.
    pub fn release(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// The grace period when the user does not choose one (`--grace`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A probe still running this long after its host deadline is stopped by
/// force: the probe keeps its own deadline, this only backs it up.
const OVERRUN: Duration = Duration::from_secs(2);

/// Resolves when the engine tells the probes in flight to stop.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub async fn wait(mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            // The engine is gone without a word: nothing will stop us.
            std::future::pending::<()>().await;
        }
    }
}

/// Jobs already done before a resumed run: by position, or (for the records
/// written after the last checkpoint) by address.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    pub positions: HashSet<u128>,
    pub addrs: HashSet<SocketAddr>,
}

/// Run the schedule from position `start`. Returns when every job is
/// recorded, the writer has gone away (e.g. a closed pipe), or the user
/// interrupted.
pub async fn run(
    schedule: Arc<Schedule>,
    start: u128,
    skip: Skip,
    probe_cfg: Arc<ProbeConfig>,
    cfg: EngineConfig,
    tx: mpsc::Sender<Event>,
    interrupted: Arc<AtomicBool>,
) {
    let interrupts = Interrupts::from_signals();
    let resolve_timeout = cfg.resolve_timeout;
    let dns = cfg.dns.clone();
    let guard = cfg.guard.clone();
    let catch = cfg.catch.clone();
    let lines = cfg.lines;
    let work = move |position: u128, job: Job, stop: Stop, tx: mpsc::Sender<Event>, slot: Slot| {
        let (probe_cfg, dns, guard, catch) =
            (probe_cfg.clone(), dns.clone(), guard.clone(), catch.clone());
        async move {
            let resolver = Resolve {
                dns: &dns,
                timeout: resolve_timeout,
                guard: &guard,
            };
            let catch = catch.as_ref().map(|c| (c, slot));
            let out = Outbox { tx: &tx, lines };
            run_job(position, job, &probe_cfg, resolver, stop, out, catch).await
        }
    };
    drive(
        schedule,
        start,
        skip,
        &cfg,
        tx,
        interrupted,
        interrupts,
        work,
    )
    .await;
}

/// The engine proper, with the work for one job given: [`run`] probes, the
/// tests give stand-ins (that panic, or never finish).
#[allow(clippy::too_many_arguments)]
pub async fn drive<W, F>(
    schedule: Arc<Schedule>,
    start: u128,
    skip: Skip,
    cfg: &EngineConfig,
    tx: mpsc::Sender<Event>,
    interrupted: Arc<AtomicBool>,
    mut interrupts: Interrupts,
    work: W,
) where
    W: Fn(u128, Job, Stop, mpsc::Sender<Event>, Slot) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<Id, (u128, Job)> = HashMap::new();
    let (stop_all, stop) = watch::channel(false);
    let mut grace_until: Option<Instant> = None;

    for (position, job) in schedule.iter_from(start) {
        let skipped = skip.positions.contains(&position)
            || matches!(&job, Job::Addr(a) if skip.addrs.contains(a));
        if skipped {
            if tx.send(Event::Skipped { position }).await.is_err() {
                break;
            }
            continue;
        }
        let permit = tokio::select! {
            biased;
            Some(()) = interrupts.recv() => {
                interrupted.store(true, Ordering::SeqCst);
                grace_until = Some(Instant::now() + cfg.grace);
                break;
            }
            () = tx.closed() => break,
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        while let Some(done) = tasks.try_join_next_with_id() {
            reap(done, &mut running, &tx).await;
        }
        let slot = Slot::new(permit);
        let probe = work(
            position,
            job.clone(),
            Stop(stop.clone()),
            tx.clone(),
            slot.clone(),
        );
        let handle = tasks.spawn(async move {
            let _slot = slot;
            probe.await;
        });
        running.insert(handle.id(), (position, job));
    }

    // Drain: the probes in flight finish, or are stopped (see the module doc).
    let mut stopped = false;
    loop {
        tokio::select! {
            biased;
            Some(()) = interrupts.recv() => {
                interrupted.store(true, Ordering::SeqCst);
                if grace_until.is_none() {
                    grace_until = Some(Instant::now() + cfg.grace);
                } else if !stopped {
                    stop_all.send_replace(true);
                    stopped = true;
                } else {
                    tasks.abort_all();
                }
            }
            () = sleep_until(grace_until.unwrap_or_else(Instant::now)),
                if grace_until.is_some() && !stopped => {
                stop_all.send_replace(true);
                stopped = true;
            }
            () = tx.closed(), if !stopped => {
                stop_all.send_replace(true);
                stopped = true;
            }
            done = tasks.join_next_with_id() => match done {
                Some(done) => reap(done, &mut running, &tx).await,
                None => break,
            },
        }
    }
}

/// Account for a finished task. A panic in a probe, or an abort, becomes an
/// `error` record for its target: the scan goes on and nothing is lost.
async fn reap(
    done: Result<(Id, ()), tokio::task::JoinError>,
    running: &mut HashMap<Id, (u128, Job)>,
    tx: &mpsc::Sender<Event>,
) {
    let (id, why) = match done {
        Ok((id, ())) => {
            running.remove(&id);
            return;
        }
        Err(e) if e.is_panic() => (
            e.id(),
            SessionFailure::Other("internal-error: the probe panicked".into()),
        ),
        Err(e) => (e.id(), SessionFailure::Interrupted),
    };
    if let Some((position, job)) = running.remove(&id) {
        let record = Box::new(lost(&job, why));
        let _ = tx
            .send(Event::Record {
                record,
                position,
                last: true,
            })
            .await;
    }
}

/// The record for a job whose task ended without one (it panicked, or was
/// aborted): what is known is the target, and why.
fn lost(job: &Job, why: SessionFailure) -> Record {
    let (addr, name) = match job {
        Job::Addr(a) => (*a, None),
        Job::Name { host, port } | Job::Mx { domain: host, port } => {
            (unresolved(*port), Some(host.clone()))
        }
    };
    let (facts, verdict) = cut::lost(addr, name, why);
    Record::new(facts, verdict)
}

fn unresolved(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// A record for an address that is not dialled: outside the scope, or
/// excluded (with `--show-excluded`).
fn not_dialled_record(target: Target, connect: Connect) -> Record {
    let mut facts = Facts::new(target.addr, target.name);
    facts.connect = connect;
    facts.mx = target.mx;
    let verdict = classify(&facts);
    Record::new(facts, verdict)
}

/// How a job's names become addresses that may be dialled.
#[derive(Clone, Copy)]
struct Resolve<'a> {
    dns: &'a Dns,
    timeout: Duration,
    guard: &'a Guard,
}

/// A record for a name that led to no address.
fn unresolved_record(u: Unresolved) -> Record {
    let mut facts = Facts::new(unresolved(u.port), Some(u.name));
    facts.connect = Connect::Unresolved { message: u.message };
    facts.mx = u.mx;
    let verdict = classify(&facts);
    Record::new(facts, verdict)
}

/// Where a job's records go: the writer's channel, each record as its line
/// when the writer takes lines (made here, on the probe's thread, where the
/// record's memory was allocated and is freed).
#[derive(Clone, Copy)]
struct Outbox<'a> {
    tx: &'a mpsc::Sender<Event>,
    lines: Option<LineFormat>,
}

impl Outbox<'_> {
    /// The event for `record`. Not async: the record is moved into the
    /// event here, so a job's task (which holds the send while the channel
    /// is full) holds only the small event, never a whole record inline.
    fn event(self, record: Record, position: u128, last: bool) -> Event {
        match self.lines.map(|how| Line::of(&record, how)) {
            Some(Ok(line)) => Event::Line {
                line: Box::new(line),
                position,
                last,
            },
            // No line (or one that could not be made): the writer makes it,
            // and reports what went wrong.
            _ => Event::Record {
                record: Box::new(record),
                position,
                last,
            },
        }
    }
}

async fn run_job(
    position: u128,
    job: Job,
    cfg: &ProbeConfig,
    resolve: Resolve<'_>,
    stop: Stop,
    out: Outbox<'_>,
    catch: Option<(&CatchWait, Slot)>,
) {
    let Resolve {
        dns,
        timeout: resolve_timeout,
        guard,
    } = resolve;
    let send = |record: Record, last: bool| out.tx.send(out.event(record, position, last));
    let resolved = tokio::select! {
        biased;
        () = stop.clone().wait() => {
            let _ = send(lost(&job, SessionFailure::Interrupted), true).await;
            return;
        }
        // Boxed, as the lookups below: a slot waiting for its connection
        // does not hold the largest state of a resolver future.
        resolved = tokio::time::timeout(resolve_timeout, Box::pin(dns.targets(&job))) => resolved,
    };
    let targets = match resolved {
        Ok(targets) => targets,
        Err(_) => {
            let (name, port) = match &job {
                Job::Addr(a) => (a.ip().to_string(), a.port()),
                Job::Name { host, port } | Job::Mx { domain: host, port } => (host.clone(), *port),
            };
            vec![Err(Unresolved {
                message: crate::dns::DnsError::Timeout.describe(&name),
                name,
                port,
                mx: None,
            })]
        }
    };
    let count = targets.len();
    for (i, target) in targets.into_iter().enumerate() {
        let last = i + 1 == count;
        // Once stopped, each remaining address is recorded as interrupted.
        let record = match target {
            Ok(resolved) => match guard.admit(resolved.addr.ip(), resolved.name.as_deref()) {
                Admit::Dial => {
                    // Only the job's last host gives its slot back to wait.
                    let catch = catch.as_ref().map(|(c, slot)| (*c, last.then_some(slot)));
                    // Boxed: the job's task then holds 1.3 KB, not the 16 KB
                    // of a probe's state, which was copied into each task
                    // when it was spawned and, aligned as a task must be,
                    // took the allocator's slow path.
                    Box::pin(probe_one(
                        probe_target(resolved),
                        cfg,
                        dns,
                        stop.clone(),
                        catch,
                    ))
                    .await
                }
                Admit::OutOfScope(message) => {
                    not_dialled_record(probe_target(resolved), Connect::OutOfScope { message })
                }
                Admit::Excluded(message) if guard.show_excluded => {
                    not_dialled_record(probe_target(resolved), Connect::Excluded { message })
                }
                Admit::Excluded(_) => {
                    if out
                        .tx
                        .send(Event::Excluded { position, last })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            },
            Err(u) => unresolved_record(u),
        };
        if send(record, last).await.is_err() {
            return;
        }
    }
}

/// The probe's target for an address the DNS gave.
fn probe_target(resolved: Resolved) -> Target {
    Target {
        addr: resolved.addr,
        name: resolved.name,
        mx: resolved.mx,
        ptr: None,
        local_wait: Default::default(),
    }
}

/// Probe one target under the engine's stop and the hard deadline. Its PTR
/// name is looked up first (it may stand for `{H}`); its blocklist check
/// runs alongside the probe, in DNS only. Both run inside the host deadline
/// and end at the engine's stop: a silent resolver cannot hold a host (or a
/// Ctrl-C) longer than the probe may take. The PTR lookup gets at most a
/// quarter of the host's time; the probe gets the rest.
async fn probe_one(
    mut target: Target,
    cfg: &ProbeConfig,
    dns: &Dns,
    stop: Stop,
    catch: Option<(&CatchWait, Option<&Slot>)>,
) -> Record {
    let via_mx = target.mx.is_some();
    let ip = target.addr.ip();
    let started = Instant::now();
    let deadline = started + cfg.host_timeout;
    target.ptr = tokio::select! {
        biased;
        () = stop.clone().wait() => None,
        ptr = tokio::time::timeout(cfg.host_timeout / 4, Box::pin(dns.ptr_for(ip, via_mx))) => ptr.ok().flatten(),
    };
    let spent = started.elapsed();
    // The probe's own deadline starts now: it gets what the PTR lookup left.
    let shortened;
    let cfg = if spent >= Duration::from_millis(1) {
        let mut c = cfg.clone();
        c.host_timeout = cfg
            .host_timeout
            .saturating_sub(spent)
            .max(Duration::from_millis(1));
        shortened = c;
        &shortened
    } else {
        cfg
    };
    // The hard stop moves with the probe's own deadline when the probe
    // waited for resources of ours (see `Target::local_wait`).
    let local_wait = target.local_wait.clone();
    let hard_stop = async move {
        loop {
            let until = deadline + OVERRUN + local_wait.total();
            if Instant::now() >= until {
                break;
            }
            sleep_until(until).await;
        }
    };
    let probe_stop = stop.clone();
    let probing = probe_until(&target, cfg, async move {
        tokio::select! {
            biased;
            () = probe_stop.wait() => Cut::Interrupted,
            () = hard_stop => Cut::Overran,
        }
    });
    let blocklists = async {
        tokio::select! {
            biased;
            () = stop.clone().wait() => None,
            check = tokio::time::timeout_at(deadline, Box::pin(dns.blocklists_for(ip, via_mx))) => match check {
                Ok(check) => check,
                Err(_) => Some(dns.blocklists_unanswered("no answer within the host deadline")),
            },
        }
    };
    let ((mut facts, mut cut), dnsbl) = tokio::join!(probing, blocklists);
    facts.ptr = target.ptr;
    facts.mx = target.mx;
    facts.dnsbl = dnsbl;
    facts.duration_ms = started.elapsed().as_millis() as u64;
    if let (Some((catch, slot)), None) = (catch, &cut) {
        if await_canary(&mut facts, catch, slot, stop).await {
            // Ctrl-C ended the wait: the record says so (see `cut::judge`).
            cut = Some(Cut::Interrupted);
        }
    }
    record(facts, cut)
}

/// Wait for the canary of a message the server accepted (the catcher was
/// told its token before DATA), and record what came of it. The host gives
/// its probe slot back first, once there is room among the waiting hosts.
/// Whether the engine's stop cut the wait before the canary came.
async fn await_canary(
    facts: &mut Facts,
    catch: &CatchWait,
    slot: Option<&Slot>,
    stop: Stop,
) -> bool {
    let Some(confirmation) = facts.confirmation.as_mut().filter(|c| c.accepted) else {
        return false;
    };
    let _waiting = tokio::select! {
        biased;
        () = stop.clone().wait() => return true,
        permit = catch.waiting.clone().acquire_owned() => permit.ok(),
    };
    if let Some(slot) = slot {
        slot.release();
    }
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    let delivery = catch
        .catcher
        .wait(&confirmation.token, catch.wait, async move {
            stop.wait().await;
            flag.store(true, Ordering::SeqCst);
        })
        .await;
    let cut = stopped.load(Ordering::SeqCst)
        && delivery.status != crate::relay::facts::DeliveryStatus::Delivered;
    confirmation.delivery = Some(delivery);
    cut
}

/// Whether the user's interrupt cut this record's probe before it found
/// anything that stands (see [`record`]): `--resume` probes it again.
pub fn cut_by_interrupt(record: &Record) -> bool {
    record.verdict.verdict == Status::Error
        && record.facts.error == Some(SessionFailure::Interrupted)
}

/// The record for a probe's facts. A probe cut short says so in `error`;
/// its verdict stands only when it had already proven a relay.
pub fn record(facts: Facts, cut: Option<Cut>) -> Record {
    let (facts, verdict) = cut::judge(facts, cut);
    Record::new(facts, verdict)
}

#[cfg(test)]
mod tests {
    //! The engine with stand-in probes and hand-sent interrupts, on tokio's
    //! paused clock: grace periods and escalation are checked to the second
    //! without waiting for them. No sockets.
    use super::*;
    use crate::targets::{Order, Plan, Shard, Spec};

    /// Stand-in probe outcomes.
    #[derive(Clone, Copy)]
    enum Stand {
        /// Finishes after this long unless stopped first (then says so).
        Takes(Duration),
        /// Ignores the stop signal; only an abort ends it.
        Deaf,
        /// Panics.
        Panics,
    }

    fn plan(n: u8) -> Arc<Schedule> {
        let spec: Spec = format!("192.0.2.1-{n}").parse().unwrap();
        let plan = Arc::new(Plan::new(&[spec], &[], &[25]).unwrap());
        Arc::new(Schedule::new(plan, Order::Sequential, 0, Shard::default()))
    }

    /// A job's task holds its state while it waits for its turn to dial,
    /// for the DNS, and for room in the writer's channel: a thousand jobs
    /// in flight hold a thousand of them. It must stay small: the probe is
    /// boxed, and the record goes into its event before the send is
    /// awaited (a record held inline across that await made the peak RSS at
    /// `-c 1000` 70 MB, not 56 MB).
    #[test]
    fn a_jobs_task_stays_small() {
        let probe = ProbeConfig::default();
        let (dns, guard) = (Dns::default(), Guard::default());
        let (tx, _rx) = mpsc::channel::<Event>(1);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let resolve = Resolve {
            dns: &dns,
            timeout: Duration::from_secs(1),
            guard: &guard,
        };
        let out = Outbox {
            tx: &tx,
            lines: Some(crate::output::Writer::plain(crate::output::Format::Csv).line_format()),
        };
        let job = Job::Addr(SocketAddr::from(([127, 0, 0, 1], 25)));
        let task = run_job(0, job, &probe, resolve, Stop(stop_rx), out, None);
        let size = std::mem::size_of_val(&task);
        // 1,136 bytes in both profiles when this was written; a record is 2.5 KB.
        assert!(size <= 1536, "a job's task holds {size} bytes");
        assert!(size < std::mem::size_of::<Record>());
    }

    fn cfg(concurrency: usize) -> EngineConfig {
        EngineConfig {
            concurrency,
            resolve_timeout: Duration::from_secs(1),
            dns: Dns::default(),
            grace: Duration::from_secs(5),
            guard: Arc::default(),
            catch: None,
            lines: None,
        }
    }

    fn done(addr: SocketAddr, cut: Option<Cut>) -> Record {
        let mut facts = Facts::new(addr, None);
        facts.error = Some("done".into());
        record(facts, cut)
    }

    /// Run the engine over `n` stand-in jobs; `behaviour(i)` says what job i
    /// does; `interrupts_at` lists when (from the start) interrupts arrive.
    /// Returns the records (with the second they arrived) and the interrupted flag.
    async fn scan(
        n: u8,
        concurrency: usize,
        behaviour: fn(u8) -> Stand,
        interrupts_at: &[u64],
    ) -> (Vec<(u64, Record)>, bool) {
        let (tx, mut rx) = mpsc::channel(64);
        let (send, interrupts) = Interrupts::manual();
        let started = Instant::now();
        for &at in interrupts_at {
            let send = send.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(at)).await;
                let _ = send.send(());
            });
        }
        let collect = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(event) = rx.recv().await {
                if let Event::Record { record, .. } = event {
                    got.push((started.elapsed().as_secs(), *record));
                }
            }
            got
        });
        let interrupted = Arc::new(AtomicBool::new(false));
        let work = move |position: u128,
                         job: Job,
                         stop: Stop,
                         tx: mpsc::Sender<Event>,
                         _slot: Slot| async move {
            let Job::Addr(addr) = job else { return };
            let last_octet = match addr.ip() {
                IpAddr::V4(v4) => v4.octets()[3],
                IpAddr::V6(_) => 0,
            };
            let record = match behaviour(last_octet) {
                Stand::Panics => panic!("stand-in probe for {addr} panics"),
                Stand::Deaf => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    done(addr, None)
                }
                Stand::Takes(d) => tokio::select! {
                    () = stop.wait() => done(addr, Some(Cut::Interrupted)),
                    () = tokio::time::sleep(d) => done(addr, None),
                },
            };
            let _ = tx
                .send(Event::Record {
                    record: Box::new(record),
                    position,
                    last: true,
                })
                .await;
        };
        drive(
            plan(n),
            0,
            Skip::default(),
            &cfg(concurrency),
            tx,
            interrupted.clone(),
            interrupts,
            work,
        )
        .await;
        drop(send);
        (collect.await.unwrap(), interrupted.load(Ordering::SeqCst))
    }

    fn errors(records: &[(u64, Record)]) -> Vec<String> {
        let mut e: Vec<String> = records
            .iter()
            .map(|(_, r)| r.error().unwrap_or_default())
            .collect();
        e.sort();
        e
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_one_probe_becomes_an_error_record_and_the_scan_goes_on() {
        let (records, interrupted) = scan(
            5,
            2,
            |i| {
                if i == 3 {
                    Stand::Panics
                } else {
                    Stand::Takes(Duration::from_secs(1))
                }
            },
            &[],
        )
        .await;
        assert!(!interrupted);
        assert_eq!(records.len(), 5, "one record per target");
        let panicked: Vec<&Record> = records
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.facts.addr.to_string() == "192.0.2.3:25")
            .collect();
        assert_eq!(panicked.len(), 1);
        assert_eq!(panicked[0].verdict.verdict, Status::Error);
        assert_eq!(
            panicked[0].error().as_deref(),
            Some("internal-error: the probe panicked")
        );
        assert_eq!(errors(&records).iter().filter(|e| *e == "done").count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn first_interrupt_stops_new_work_and_gives_a_grace_period() {
        // 2 at a time, each needing an hour; Ctrl-C after 1 s.
        let (records, interrupted) =
            scan(6, 2, |_| Stand::Takes(Duration::from_secs(3600)), &[1]).await;
        assert!(interrupted);
        assert_eq!(records.len(), 2, "the jobs not started are not probed");
        for (at, r) in &records {
            assert_eq!(*at, 6, "stopped when the 5 s grace ended");
            assert_eq!(r.verdict.verdict, Status::Error);
            assert_eq!(r.error().as_deref(), Some("interrupted"));
            assert!(r.verdict.notes.iter().any(|n| n.contains("done")));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probes_that_finish_within_the_grace_are_recorded_normally() {
        let (records, _) = scan(2, 2, |_| Stand::Takes(Duration::from_secs(3)), &[1]).await;
        assert_eq!(errors(&records), ["done", "done"]);
        assert!(records.iter().all(|(at, _)| *at == 3));
    }

    #[tokio::test(start_paused = true)]
    async fn second_interrupt_ends_the_grace_at_once() {
        let (records, _) = scan(2, 2, |_| Stand::Takes(Duration::from_secs(3600)), &[1, 2]).await;
        assert_eq!(errors(&records), ["interrupted", "interrupted"]);
        assert!(records.iter().all(|(at, _)| *at == 2));
    }

    #[tokio::test(start_paused = true)]
    async fn third_interrupt_aborts_probes_that_do_not_stop() {
        let (records, _) = scan(2, 2, |_| Stand::Deaf, &[1, 2, 3]).await;
        assert_eq!(records.len(), 2, "aborted probes still get a record");
        assert_eq!(errors(&records), ["interrupted", "interrupted"]);
        assert!(records.iter().all(|(at, _)| *at == 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_output_stops_the_probes() {
        let (tx, rx) = mpsc::channel(4);
        let (_send, interrupts) = Interrupts::manual();
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(rx);
        });
        let work = |_position: u128,
                    _job: Job,
                    stop: Stop,
                    _tx: mpsc::Sender<Event>,
                    _slot: Slot| async move {
            tokio::select! {
                () = stop.wait() => {}
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        };
        let interrupted = Arc::new(AtomicBool::new(false));
        drive(
            plan(100),
            0,
            Skip::default(),
            &cfg(10),
            tx,
            interrupted,
            interrupts,
            work,
        )
        .await;
        assert_eq!(started.elapsed().as_secs(), 1);
    }

    #[test]
    fn a_cut_probe_keeps_a_proven_relay_and_says_so() {
        use crate::relay::{catalogue, facts::Greeting, facts::Hello, TestFacts};
        use crate::smtp::{code, Reply};
        let mut facts = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        facts.greeting = Greeting {
            banner: Some(Reply::new(code::SERVICE_READY, "mx.example.org ESMTP")),
            hello_command: Some(Hello::Ehlo),
            hello: Some(Reply::new(code::OK, "mx.example.org")),
            ..Greeting::default()
        };
        let s1 = catalogue::find("S1").unwrap();
        let mut t = TestFacts::skipped(s1.id, s1.kind, "");
        t.skipped = None;
        t.mail_reply = Some(Reply::new(code::OK, "2.1.0 Ok"));
        t.rcpt_reply = Some(Reply::new(code::OK, "2.1.5 Ok"));
        facts.tests.push(t);

        let r = record(facts.clone(), Some(Cut::Interrupted));
        assert_eq!(r.verdict.verdict, Status::OpenRelay);
        assert_eq!(r.error().as_deref(), Some("interrupted"));
        assert!(r.verdict.notes.iter().any(|n| n.contains("did not run")));

        facts.tests[0].rcpt_reply = Some(Reply::new(
            code::TRANSACTION_FAILED,
            "5.7.1 Relay access denied",
        ));
        let r = record(facts.clone(), Some(Cut::Interrupted));
        assert_eq!(
            r.verdict.verdict,
            Status::Error,
            "a partial 'closed' is not a verdict"
        );
        assert_eq!(r.verdict.reply, None);
        let r = record(facts.clone(), Some(Cut::Overran));
        assert_eq!(r.verdict.verdict, Status::Timeout);
        assert_eq!(r.error().as_deref(), Some("host-deadline"));
        assert_eq!(record(facts, None).verdict.verdict, Status::Closed);
    }
}
