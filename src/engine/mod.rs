//! The engine: walks the plan, runs up to `concurrency` probes at once, and
//! hands every record to the writer through a bounded channel.
//!
//! Backpressure comes from two places: the semaphore (no more than N probes
//! in flight) and the channel (a slow writer blocks new records). Memory is
//! therefore bounded by the concurrency, not by the size of the plan.
//! Shutdown follows mini-redis: the first Ctrl-C (or SIGTERM) stops new
//! connections and lets the probes in flight finish within their deadline; a
//! second one aborts them, and they are recorded as interrupted.

pub mod checkpoint;
pub mod pacer;
pub mod resume;

use crate::dns::{Dns, Unresolved};
use crate::output::{Event, Record};
use crate::relay::{classify, probe, Connect, Facts, ProbeConfig, Status, Target, Verdict};
use crate::targets::{Job, Schedule};
use pacer::Pacer;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{Id, JoinSet};

/// Settings for one run of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub concurrency: usize,
    /// How long a name may take to resolve (a domain: its MX records and
    /// every exchanger's addresses).
    pub resolve_timeout: Duration,
    /// Connection starts per second (`--rate`), if limited.
    pub rate: Option<f64>,
    /// The DNS handle: names, MX, PTR and blocklists (see `crate::dns`).
    pub dns: Dns,
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
/// interrupted twice.
pub async fn run(
    schedule: Arc<Schedule>,
    start: u128,
    skip: Skip,
    probe_cfg: Arc<ProbeConfig>,
    cfg: EngineConfig,
    tx: mpsc::Sender<Event>,
    interrupted: Arc<AtomicBool>,
) {
    let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<Id, (u128, Job)> = HashMap::new();
    let mut signal = Box::pin(shutdown_signal());
    let mut pacer = cfg.rate.map(Pacer::new);

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
            _ = &mut signal => {
                interrupted.store(true, Ordering::SeqCst);
                break;
            }
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        if let Some(p) = pacer.as_mut() {
            tokio::select! {
                biased;
                _ = &mut signal => {
                    interrupted.store(true, Ordering::SeqCst);
                    break;
                }
                _ = p.wait() => {}
            }
        }
        while let Some(done) = tasks.try_join_next_with_id() {
            reap(done, &mut running, &tx).await;
        }
        if tx.is_closed() {
            break;
        }
        let (probe_cfg, tx2, job2) = (probe_cfg.clone(), tx.clone(), job.clone());
        let (resolve_timeout, dns) = (cfg.resolve_timeout, cfg.dns.clone());
        let handle = tasks.spawn(async move {
            let _permit = permit;
            run_job(position, job2, &probe_cfg, &dns, resolve_timeout, &tx2).await;
        });
        running.insert(handle.id(), (position, job));
    }

    // Drain: let the probes in flight finish; a (further) signal aborts them.
    let mut aborted = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut signal, if !aborted => {
                interrupted.store(true, Ordering::SeqCst);
                aborted = true;
                tasks.abort_all();
                signal = Box::pin(shutdown_signal());
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
        Err(e) if e.is_panic() => (e.id(), "internal error: the probe panicked".to_string()),
        Err(e) => (e.id(), "interrupted".to_string()),
    };
    if let Some((position, job)) = running.remove(&id) {
        let (addr, name) = match job {
            Job::Addr(a) => (a, None),
            Job::Name { host, port } | Job::Mx { domain: host, port } => {
                (unresolved(port), Some(host))
            }
        };
        let record = Box::new(failed(addr, name, why));
        let _ = tx
            .send(Event::Record {
                record,
                position,
                last: true,
            })
            .await;
    }
}

fn unresolved(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// A record for a target that could not be probed at all.
fn failed(addr: SocketAddr, name: Option<String>, why: String) -> Record {
    let mut facts = Facts::new(addr, name);
    facts.connect = Connect::Error {
        message: why.clone(),
    };
    let mut verdict = classify(&facts);
    verdict.verdict = Status::Error;
    verdict.reason = why;
    Record::new(facts, verdict)
}

/// A record for a name that led to no address.
fn unresolved_record(u: Unresolved) -> Record {
    let mut facts = Facts::new(unresolved(u.port), Some(u.name));
    facts.connect = Connect::Unresolved { message: u.message };
    facts.mx = u.mx;
    let verdict = classify(&facts);
    Record::new(facts, verdict)
}

async fn run_job(
    position: u128,
    job: Job,
    cfg: &ProbeConfig,
    dns: &Dns,
    resolve_timeout: Duration,
    tx: &mpsc::Sender<Event>,
) {
    let send = |record: Record, last: bool| {
        tx.send(Event::Record {
            record: Box::new(record),
            position,
            last,
        })
    };
    let targets = match tokio::time::timeout(resolve_timeout, dns.targets(&job)).await {
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
        let record = match target {
            Ok(target) => probe_one(target, cfg, dns).await,
            Err(u) => unresolved_record(u),
        };
        if send(record, i + 1 == count).await.is_err() {
            return;
        }
    }
}

/// Probe one target. Its PTR name is looked up first (it may stand for
/// `{H}`); its blocklist check runs alongside the probe, in DNS only.
async fn probe_one(mut target: Target, cfg: &ProbeConfig, dns: &Dns) -> Record {
    target.ptr = dns.ptr_for(&target).await;
    let (mut facts, dnsbl) = tokio::join!(probe(&target, cfg), dns.blocklists_for(&target));
    facts.ptr = target.ptr;
    facts.mx = target.mx;
    facts.dnsbl = dnsbl;
    let verdict: Verdict = classify(&facts);
    Record::new(facts, verdict)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
